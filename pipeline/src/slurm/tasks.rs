//! Cutting a plan into Slurm tasks: the nodes one array element runs, in order.
//!
//! Nodes are grouped by (seed, first configuration they serve): every (configuration, seed)
//! chain of per-seed stages is one task, the seedless stages of a configuration another, and
//! a node shared by several configurations runs in the task of the first. A producer serves
//! every configuration its consumers serve, so dependencies only point to earlier groups
//! and the task graph has no cycles. A shardable node given `shards > 1` leaves its group:
//! its shards run as separate tasks, then the node itself (finding its units cached), and the
//! group's nodes downstream of it form a task of their own.

use std::collections::{BTreeMap, BTreeSet};

use crate::context::Shard;
use crate::executor::SlurmConfig;
use crate::hash::sha256_hex;
use crate::plan::Plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Task {
    /// Content hash of what the task computes: stable across driver restarts.
    pub id: String,
    /// Plan node indices, in plan (dependency) order.
    pub nodes: Vec<usize>,
    /// Set for a shard task (its one node is run for a shard of its units).
    pub shard: Option<Shard>,
    /// Tasks that must be done first.
    pub deps: BTreeSet<usize>,
    /// The stage kind whose job options the task's job takes.
    pub kind: String,
}

pub(crate) fn partition(plan: &Plan, config: &SlurmConfig) -> Vec<Task> {
    let mut groups: BTreeMap<(Option<u64>, usize, u8), Vec<usize>> = BTreeMap::new();
    let mut shard_nodes = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let first = node.configs[0];
        let shards = config.options_for(&node.id.kind).shards.unwrap_or(1);
        if shards > 1 && node.stage.shardable() {
            shard_nodes.push((i, shards));
            groups.entry((node.id.seed, first, 1)).or_default().push(i);
        } else {
            let after = shard_nodes.iter().any(|&(s, _)| depends_on(plan, i, s));
            groups
                .entry((node.id.seed, first, if after { 2 } else { 0 }))
                .or_default()
                .push(i);
        }
    }
    let mut tasks: Vec<Task> = Vec::new();
    for &(node, count) in &shard_nodes {
        for index in 0..count {
            tasks.push(new_task(plan, vec![node], Some(Shard { index, count })));
        }
    }
    for (_, mut nodes) in groups {
        // A group holding several shardable nodes keeps each one alone.
        let sharded: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|n| shard_nodes.iter().any(|&(s, _)| s == *n))
            .collect();
        if sharded.len() > 1 {
            nodes.retain(|n| !sharded.contains(n));
            tasks.extend(sharded.into_iter().map(|n| new_task(plan, vec![n], None)));
        }
        if !nodes.is_empty() {
            tasks.push(new_task(plan, nodes, None));
        }
    }
    let task_of_node = |node: usize| {
        tasks
            .iter()
            .position(|t| t.shard.is_none() && t.nodes.contains(&node))
            .expect("every node is in a task")
    };
    let mut deps: Vec<BTreeSet<usize>> = Vec::new();
    for task in &tasks {
        let mut d = BTreeSet::new();
        for &n in &task.nodes {
            for input in &plan.nodes[n].inputs {
                d.insert(task_of_node(input.node));
            }
            if task.shard.is_none() {
                d.extend(
                    (0..tasks.len()).filter(|&t| tasks[t].shard.is_some() && tasks[t].nodes == [n]),
                );
            }
        }
        d.retain(|&t| tasks[t].id != task.id);
        deps.push(d);
    }
    for (task, d) in tasks.iter_mut().zip(deps) {
        task.deps = d;
        // A job takes the options of the first of its stage kinds that has a table.
        if let Some(kind) = task
            .nodes
            .iter()
            .map(|&n| &plan.nodes[n].id.kind)
            .find(|k| config.per_kind.contains_key(*k))
        {
            task.kind = kind.clone();
        }
    }
    tasks
}

fn new_task(plan: &Plan, nodes: Vec<usize>, shard: Option<Shard>) -> Task {
    let mut text: String = nodes
        .iter()
        .map(|&n| format!("{}\n", plan.nodes[n].id.key))
        .collect();
    if let Some(shard) = shard {
        text.push_str(&format!("shard {} of {}\n", shard.index, shard.count));
    }
    let kind = plan.nodes[nodes[0]].id.kind.clone();
    Task {
        id: sha256_hex(text.as_bytes())[..16].to_string(),
        nodes,
        shard,
        deps: BTreeSet::new(),
        kind,
    }
}

/// Whether node `a` depends, directly or not, on node `b`.
fn depends_on(plan: &Plan, a: usize, b: usize) -> bool {
    let mut stack = vec![a];
    let mut seen = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if n == b {
            return true;
        }
        if seen.insert(n) {
            stack.extend(plan.nodes[n].inputs.iter().map(|i| i.node));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;
    use crate::settings::Settings;
    use crate::stage::{resolve_params_as, ParamError, Registry, Stage};
    use crate::StageContext;

    /// A stage that only declares its shape.
    struct Shape {
        kind: &'static str,
        inputs: Vec<&'static str>,
        seeded: bool,
        shardable: bool,
    }

    #[derive(serde::Serialize, serde::Deserialize, Default)]
    struct AnyParams {
        #[serde(default)]
        x: i64,
    }

    impl Stage for Shape {
        fn kind(&self) -> &'static str {
            self.kind
        }
        fn version(&self) -> u32 {
            1
        }
        fn default_inputs(&self) -> Vec<&'static str> {
            self.inputs.clone()
        }
        fn uses_seed(&self) -> bool {
            self.seeded
        }
        fn resolve_params(&self, p: &toml::Table) -> Result<serde_json::Value, ParamError> {
            resolve_params_as::<AnyParams>(p)
        }
        fn run(&self, _: &StageContext<'_>) -> crate::Result<()> {
            unreachable!("only planned")
        }
        fn shardable(&self) -> bool {
            self.shardable
        }
    }

    fn plan(text: &str) -> (Plan, SlurmConfig) {
        let mut registry = Registry::new();
        let shape = |kind, inputs, seeded, shardable| Shape {
            kind,
            inputs,
            seeded,
            shardable,
        };
        registry
            .register(Box::new(shape("data", vec![], false, false)) as Box<dyn Stage>)
            .register(Box::new(shape("search", vec!["data"], true, false)) as Box<dyn Stage>)
            .register(Box::new(shape("report", vec!["search"], false, false)) as Box<dyn Stage>)
            .register(Box::new(shape("study", vec!["data"], true, true)) as Box<dyn Stage>);
        let exp = Experiment::parse(text, "x.toml", "x", &[]).unwrap();
        let config = crate::ExecutorConfig::from_experiment(&exp, None, &registry).unwrap();
        let settings = Settings {
            device: serde_json::json!("cpu"),
            jobs: 1,
            verbosity: crate::Verbosity::Quiet,
            tool_version: "test".into(),
        };
        (
            Plan::compile(&exp, &registry, None, &settings).unwrap(),
            config.slurm,
        )
    }

    #[test]
    fn one_task_per_configuration_and_seed_chain_and_shards_of_a_study() {
        let (plan, config) = plan(
            "seeds = [0, 1]\n[data]\n[search]\n[report]\n[study]\n[matrix]\n\"search.x\" = [1, 2]\n[executor.slurm.study]\nshards = 3\n",
        );
        let tasks = partition(&plan, &config);
        let label = |t: &Task| {
            let nodes: Vec<String> = t.nodes.iter().map(|&n| plan.nodes[n].label()).collect();
            match t.shard {
                Some(s) => format!("{} {}/{}", nodes.join("+"), s.index, s.count),
                None => nodes.join("+"),
            }
        };
        let labels: Vec<String> = tasks.iter().map(label).collect();
        // data; search and report per configuration and seed; the study per seed, shared by
        // both configurations, in three shards and a merge.
        assert_eq!(tasks.len(), 1 + 2 * 2 + 2 * (3 + 1), "{labels:#?}");
        assert!(labels.contains(&"data".to_string()), "{labels:#?}");
        assert!(
            labels.contains(&"search[x=2,seed=1]+report[x=2,seed=1]".to_string()),
            "{labels:#?}"
        );
        assert!(
            labels.contains(&"study[seed=0] 2/3".to_string()),
            "{labels:#?}"
        );
        let merge = tasks
            .iter()
            .position(|t| label(t) == "study[seed=1]")
            .unwrap();
        let shards: BTreeSet<usize> = (0..tasks.len())
            .filter(|&t| label(&tasks[t]).starts_with("study[seed=1] "))
            .collect();
        let data = tasks.iter().position(|t| label(t) == "data").unwrap();
        assert_eq!(
            tasks[merge].deps,
            shards.iter().copied().chain([data]).collect()
        );
        for &s in &shards {
            assert_eq!(tasks[s].deps, BTreeSet::from([data]));
        }
        // Ids are content hashes: the same plan gives the same ids.
        let again = partition(&plan, &config);
        assert_eq!(
            tasks.iter().map(|t| &t.id).collect::<Vec<_>>(),
            again.iter().map(|t| &t.id).collect::<Vec<_>>()
        );
    }
}
