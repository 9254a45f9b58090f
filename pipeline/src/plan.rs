//! Compiling an experiment into a DAG of stage nodes, one per seed where the seed matters.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::experiment::{Experiment, StageDecl};
use crate::hash::key_of;
use crate::settings::Settings;
use crate::stage::{Registry, Stage};

/// Everything that determines a stage node's output; its hash is the node's key.
/// Stored readable in manifests and run records so `explain` can diff them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyComponents {
    pub kind: String,
    pub version: u32,
    pub params: Value,
    /// Input reference (as the experiment names it) -> the input's key.
    pub inputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `Settings::device`, only for stages that use the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
}

impl KeyComponents {
    pub fn key(&self) -> String {
        key_of(&serde_json::to_value(self).expect("components serialize"))
    }
}

pub struct Node {
    pub name: String,
    pub kind: String,
    pub seed: Option<u64>,
    pub key: String,
    pub components: KeyComponents,
    /// The resolved params the stage runs with (components hold the keyed view).
    pub params: Value,
    pub inputs: Vec<NodeInput>,
    pub(crate) stage: Arc<dyn Stage>,
}

impl Node {
    /// `name` or `name[seed=3]`, for messages.
    pub fn label(&self) -> String {
        match self.seed {
            Some(seed) => format!("{}[seed={seed}]", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeInput {
    /// The name the experiment (or the kind's defaults) used for this input.
    pub reference: String,
    /// Index into `Plan::nodes`.
    pub node: usize,
}

pub struct Plan {
    pub experiment: String,
    pub experiment_sha256: String,
    pub store: PathBuf,
    pub jobs: Option<usize>,
    pub seeds: Vec<u64>,
    /// Resolved params per stage name.
    pub params: BTreeMap<String, Value>,
    /// In dependency order: every node comes after its inputs.
    pub nodes: Vec<Node>,
}

struct Resolved<'a> {
    decl: &'a StageDecl,
    stage: Arc<dyn Stage>,
    params: Value,
    keyed_params: Value,
    inputs: Vec<(String, usize)>,
}

impl Plan {
    pub fn compile(
        exp: &Experiment,
        registry: &Registry,
        seeds_override: Option<Vec<u64>>,
        settings: &Settings,
    ) -> Result<Plan> {
        let resolved = resolve_stages(exp, registry)?;
        let order = topological_order(exp, &resolved)?;
        let seeds = seeds_override.unwrap_or_else(|| exp.seeds.clone());
        if seeds.is_empty() {
            return Err(Error::custom("no seeds to run"));
        }

        let mut seeded = vec![false; resolved.len()];
        let mut node_of: HashMap<(usize, Option<u64>), usize> = HashMap::new();
        let mut nodes: Vec<Node> = Vec::new();
        for &i in &order {
            let r = &resolved[i];
            seeded[i] = r.stage.uses_seed() || r.inputs.iter().any(|(_, j)| seeded[*j]);
            let node_seeds: Vec<Option<u64>> = if seeded[i] {
                seeds.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for seed in node_seeds {
                let inputs: Vec<NodeInput> = r
                    .inputs
                    .iter()
                    .map(|(reference, j)| NodeInput {
                        reference: reference.clone(),
                        node: node_of[&(*j, if seeded[*j] { seed } else { None })],
                    })
                    .collect();
                let components = KeyComponents {
                    kind: r.decl.kind.clone(),
                    version: r.stage.version(),
                    params: r.keyed_params.clone(),
                    inputs: inputs
                        .iter()
                        .map(|input| (input.reference.clone(), nodes[input.node].key.clone()))
                        .collect(),
                    seed: seed.filter(|_| r.stage.uses_seed()),
                    settings: r.stage.uses_device().then(|| settings.device.clone()),
                };
                node_of.insert((i, seed), nodes.len());
                nodes.push(Node {
                    name: r.decl.name.clone(),
                    kind: r.decl.kind.clone(),
                    seed,
                    key: components.key(),
                    components,
                    params: r.params.clone(),
                    inputs,
                    stage: r.stage.clone(),
                });
            }
        }
        Ok(Plan {
            experiment: exp.name.clone(),
            experiment_sha256: exp.source_sha256.clone(),
            store: exp.store.clone(),
            jobs: exp.jobs,
            seeds,
            params: resolved
                .iter()
                .map(|r| (r.decl.name.clone(), r.params.clone()))
                .collect(),
            nodes,
        })
    }
}

fn resolve_stages<'a>(exp: &'a Experiment, registry: &Registry) -> Result<Vec<Resolved<'a>>> {
    let mut resolved = Vec::new();
    for decl in &exp.stages {
        let stage = registry.get(&decl.kind).ok_or_else(|| {
            let known: Vec<_> = registry.kinds().collect();
            let key = if decl.key_lines.contains_key("kind") {
                "kind"
            } else {
                ""
            };
            exp.stage_error(
                decl,
                key,
                format!(
                    "unknown stage kind `{}` (known: {})",
                    decl.kind,
                    known.join(", ")
                ),
            )
        })?;
        let params = stage
            .resolve_params(&decl.params)
            .map_err(|e| exp.stage_error(decl, &e.key, e.message))?;
        let keyed_params = stage
            .keyed_params(&params)
            .map_err(|e| exp.stage_error(decl, &e.key, e.message))?;
        let references: Vec<String> = match &decl.inputs {
            Some(inputs) => inputs.clone(),
            None => stage
                .default_inputs()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let inputs = references
            .into_iter()
            .map(|reference| {
                let index = find_input(exp, &reference)
                    .map_err(|message| exp.stage_error(decl, "inputs", message))?;
                Ok((reference, index))
            })
            .collect::<Result<_>>()?;
        resolved.push(Resolved {
            decl,
            stage: stage.clone(),
            params,
            keyed_params,
            inputs,
        });
    }
    Ok(resolved)
}

/// A reference is a stage name, or else a kind with exactly one stage.
fn find_input(exp: &Experiment, reference: &str) -> std::result::Result<usize, String> {
    if let Some(i) = exp.stages.iter().position(|s| s.name == reference) {
        return Ok(i);
    }
    let of_kind: Vec<usize> = (0..exp.stages.len())
        .filter(|&i| exp.stages[i].kind == reference)
        .collect();
    match of_kind[..] {
        [i] => Ok(i),
        [] => Err(format!("input `{reference}` names no stage")),
        _ => Err(format!(
            "input `{reference}` is ambiguous: several stages have that kind; name one in `inputs`"
        )),
    }
}

/// Depth-first order; a back edge is a cycle, reported with its path.
fn topological_order(exp: &Experiment, resolved: &[Resolved<'_>]) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        resolved: &[Resolved<'_>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> std::result::Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = path
                    .iter()
                    .position(|&p| p == i)
                    .expect("active is on path");
                let mut cycle = path[start..].to_vec();
                cycle.push(i);
                return Err(cycle);
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        path.push(i);
        for &(_, j) in &resolved[i].inputs {
            visit(j, resolved, marks, path, order)?;
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }

    let mut marks = vec![Mark::New; resolved.len()];
    let mut order = Vec::new();
    for i in 0..resolved.len() {
        visit(i, resolved, &mut marks, &mut Vec::new(), &mut order).map_err(|cycle| {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&c| resolved[c].decl.name.as_str())
                .collect();
            // Inputs point upstream, so reverse to read in data-flow order.
            let text: Vec<&str> = names.iter().rev().copied().collect();
            exp.stage_error(
                resolved[cycle[0]].decl,
                "inputs",
                format!("cycle: {}", text.join(" -> ")),
            )
        })?;
    }
    Ok(order)
}
