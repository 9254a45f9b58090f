//! `status` (what is cached, what would run) and `explain` (why it would run).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::error::Result;
use crate::identity::KeyComponents;
use crate::manifest::Validity;
use crate::plan::Plan;
use crate::record::RunRecord;
use crate::store::{Area, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    Cached,
    WouldRun,
    /// Stored but damaged: would be recomputed.
    Invalid {
        file: String,
        reason: String,
    },
    /// Not stored yet, but a live Slurm job is computing it.
    InJob {
        job: String,
        state: String,
    },
}

#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub label: String,
    pub key: String,
    pub state: NodeState,
}

#[derive(Debug, Clone)]
pub struct StatusReport {
    pub experiment: String,
    pub nodes: Vec<NodeStatus>,
}

pub fn status(plan: &Plan, store: &Store) -> Result<StatusReport> {
    let jobs = crate::slurm::live_jobs(store)?;
    let nodes = plan
        .nodes
        .iter()
        .map(|node| NodeStatus {
            label: node.label(),
            key: node.id.key.clone(),
            state: match store.validate(Area::Objects, &node.id.key) {
                Validity::Valid(_) => NodeState::Cached,
                _ if jobs.contains_key(&node.id.key) => {
                    let (job, state) = jobs[&node.id.key].clone();
                    NodeState::InJob { job, state }
                }
                Validity::Missing => NodeState::WouldRun,
                Validity::Invalid { file, reason } => NodeState::Invalid { file, reason },
            },
        })
        .collect();
    Ok(StatusReport {
        experiment: plan.experiment.clone(),
        nodes,
    })
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.nodes.iter().map(|n| n.label.len()).max().unwrap_or(0);
        writeln!(f, "experiment `{}`:", self.experiment)?;
        for node in &self.nodes {
            let state = match &node.state {
                NodeState::Cached => "cached".to_string(),
                NodeState::WouldRun => "would run".to_string(),
                NodeState::Invalid { file, reason } => {
                    format!("invalid ({file}: {reason}), would rerun")
                }
                NodeState::InJob { job, state } => {
                    format!("{} in Slurm job {job}", state.to_lowercase())
                }
            };
            writeln!(f, "  {:width$}  {}  {state}", node.label, &node.key[..12])?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Explanation {
    pub label: String,
    /// Human-readable changes against the latest run, e.g. "param `x`: 3 -> 4".
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ExplainReport {
    pub experiment: String,
    /// The run compared against.
    pub latest_run: Option<String>,
    /// Only nodes that would run.
    pub nodes: Vec<Explanation>,
}

/// For each node that would run, what changed since the latest run of the experiment.
pub fn explain(plan: &Plan, store: &Store) -> Result<ExplainReport> {
    let latest = RunRecord::latest(store, &plan.experiment)?;
    let status = status(plan, store)?;
    let mut nodes = Vec::new();
    for (node, node_status) in plan.nodes.iter().zip(&status.nodes) {
        let reasons = match &node_status.state {
            NodeState::Cached => continue,
            NodeState::InJob { job, state } => {
                vec![format!(
                    "being computed: {} in Slurm job {job}",
                    state.to_lowercase()
                )]
            }
            NodeState::Invalid { file, reason } => {
                vec![format!("stored artifact is invalid ({file}: {reason})")]
            }
            NodeState::WouldRun => {
                let label = node.label();
                let previous = latest.as_ref().and_then(|run| {
                    run.nodes.iter().find(|n| match n.label.is_empty() {
                        // Records written before nodes carried labels.
                        true => n.id.name == node.id.name && n.id.seed == node.id.seed,
                        false => n.label == label,
                    })
                });
                match previous {
                    None => vec!["never ran".to_string()],
                    Some(prev) => {
                        let changes = diff_components(&prev.id.components, &node.id.components);
                        if changes.is_empty() {
                            vec!["same key as the latest run, but the artifact is gone".into()]
                        } else {
                            changes
                        }
                    }
                }
            }
        };
        nodes.push(Explanation {
            label: node.label(),
            reasons,
        });
    }
    Ok(ExplainReport {
        experiment: plan.experiment.clone(),
        latest_run: latest.map(|r| r.run_id),
        nodes,
    })
}

pub fn diff_components(old: &KeyComponents, new: &KeyComponents) -> Vec<String> {
    let mut changes = Vec::new();
    if old.kind != new.kind {
        changes.push(format!("kind {} -> {}", old.kind, new.kind));
    }
    if old.version != new.version {
        changes.push(format!("version {} -> {}", old.version, new.version));
    }
    diff_params(&old.params, &new.params, &mut changes);
    let names: BTreeSet<&String> = old.inputs.keys().chain(new.inputs.keys()).collect();
    for name in names {
        match (old.inputs.get(name), new.inputs.get(name)) {
            (Some(a), Some(b)) if a != b => changes.push(format!("input `{name}` key changed")),
            (None, Some(_)) => changes.push(format!("input `{name}` added")),
            (Some(_), None) => changes.push(format!("input `{name}` removed")),
            _ => {}
        }
    }
    if old.seed != new.seed {
        changes.push(format!("seed {:?} -> {:?}", old.seed, new.seed));
    }
    if old.settings != new.settings {
        let show = |v: &Option<Value>| v.as_ref().map_or("none".into(), |v| v.to_string());
        changes.push(format!(
            "settings changed: {} -> {}",
            show(&old.settings),
            show(&new.settings)
        ));
    }
    changes
}

fn diff_params(old: &Value, new: &Value, changes: &mut Vec<String>) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        if old != new {
            changes.push(format!("params {old} -> {new}"));
        }
        return;
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (Some(a), Some(b)) if a != b => changes.push(format!("param `{key}` {a} -> {b}")),
            (None, Some(b)) => changes.push(format!("param `{key}` added: {b}")),
            (Some(a), None) => changes.push(format!("param `{key}` removed (was {a})")),
            _ => {}
        }
    }
}

impl fmt::Display for ExplainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.latest_run {
            Some(run) => writeln!(
                f,
                "experiment `{}`, compared with run {run}:",
                self.experiment
            )?,
            None => writeln!(f, "experiment `{}`, no earlier run:", self.experiment)?,
        }
        if self.nodes.is_empty() {
            return writeln!(f, "  everything is cached");
        }
        for node in &self.nodes {
            writeln!(f, "  {}: {}", node.label, node.reasons.join("; "))?;
        }
        Ok(())
    }
}
