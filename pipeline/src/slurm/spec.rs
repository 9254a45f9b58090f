//! What a job runs, written into the store before submission: `slurm/jobs/<array>/spec.json`
//! holds the array's tasks with their nodes in full, so that a job needs neither the
//! experiment file nor a plan. The folder also takes the job script, the logs, the unit
//! journals and the per-node records the jobs leave for the driver.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::Shard;
use crate::error::{Error, IoContext, Result};
use crate::identity::NodeIdentity;
use crate::plan::{Node, Plan};
use crate::record::NodeRecord;
use crate::stage::Registry;
use crate::store::Store;
use crate::util::write_atomic;

use super::tasks::Task;

/// One array job: its elements are `tasks`, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub experiment: String,
    /// Absolute path of the store (the same on every node).
    pub store: PathBuf,
    /// `Settings::device` of the plan: a job must compute on the same kind of device.
    pub device: Value,
    pub tool_version: String,
    pub tasks: Vec<TaskSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub nodes: Vec<NodeSpec>,
}

/// A plan node, self-contained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSpec {
    pub label: String,
    #[serde(flatten)]
    pub id: NodeIdentity,
    pub params: Value,
    pub inputs: Vec<InputSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub reference: String,
    pub name: String,
    pub kind: String,
    pub key: String,
}

impl NodeSpec {
    pub(crate) fn of(plan: &Plan, node: &Node) -> NodeSpec {
        NodeSpec {
            label: node.label(),
            id: node.id.clone(),
            params: node.params.clone(),
            inputs: node
                .inputs
                .iter()
                .map(|input| {
                    let upstream = &plan.nodes[input.node];
                    InputSpec {
                        reference: input.reference.clone(),
                        name: upstream.id.name.clone(),
                        kind: upstream.id.kind.clone(),
                        key: upstream.id.key.clone(),
                    }
                })
                .collect(),
            configs: crate::lifecycle::config_labels(plan, node),
        }
    }

    /// The node again, with its stage from `registry`. Fails when this binary's stage would
    /// compute something else (another version), which would break the key.
    pub(crate) fn to_node(&self, registry: &Registry) -> Result<Node> {
        let stage = registry.get(&self.id.kind).ok_or_else(|| {
            Error::Slurm(format!(
                "this tenas binary has no stage kind `{}`; jobs must run the driver's binary",
                self.id.kind
            ))
        })?;
        if stage.version() != self.id.components.version || self.id.components.key() != self.id.key
        {
            return Err(Error::Slurm(format!(
                "node {}: this tenas binary computes stage `{}` version {}, the driver planned version {}; jobs must run the driver's binary",
                self.label,
                self.id.kind,
                stage.version(),
                self.id.components.version
            )));
        }
        Ok(Node {
            id: self.id.clone(),
            params: self.params.clone(),
            // The job reads its inputs from the store by key (see `InputSpec`).
            inputs: Vec::new(),
            configs: Vec::new(),
            axes: Vec::new(),
            stage: Arc::clone(stage),
        })
    }
}

impl TaskSpec {
    pub(crate) fn of(plan: &Plan, task: &Task) -> TaskSpec {
        TaskSpec {
            id: task.id.clone(),
            shard: task.shard,
            nodes: task
                .nodes
                .iter()
                .map(|&n| NodeSpec::of(plan, &plan.nodes[n]))
                .collect(),
        }
    }
}

/// `<store>/slurm/jobs/<array id>/`: everything about one array job.
#[derive(Debug, Clone)]
pub struct JobDir {
    pub dir: PathBuf,
}

impl JobDir {
    pub fn new(store: &Store, array_id: &str) -> JobDir {
        JobDir {
            dir: jobs_root(store).join(array_id),
        }
    }

    /// The job dir holding a spec file.
    pub fn of_spec(spec: &Path) -> Result<JobDir> {
        let dir = spec
            .parent()
            .ok_or_else(|| Error::Slurm(format!("{}: not a job spec path", spec.display())))?;
        Ok(JobDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn spec_path(&self) -> PathBuf {
        self.dir.join("spec.json")
    }

    pub fn script_path(&self) -> PathBuf {
        self.dir.join("job.sh")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Log of element `index` of array job `array_job` (`sbatch --output=logs/%A_%a.log`).
    pub fn log_path(&self, array_job: &str, index: usize) -> PathBuf {
        self.logs().join(format!("{array_job}_{index}.log"))
    }

    /// Unit journal of element `index`, kept by gc while the task may resume.
    pub fn journal_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("units-{index}.txt"))
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join("records").join(format!("{key}.json"))
    }

    pub fn write_spec(&self, spec: &JobSpec) -> Result<()> {
        write_atomic(&self.spec_path(), &serde_json::to_vec_pretty(spec)?)
    }

    pub fn read_spec(&self) -> Result<JobSpec> {
        let path = self.spec_path();
        let bytes = std::fs::read(&path).at(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptArtifact {
            path: path.clone(),
            reason: e.to_string(),
        })
    }

    pub(crate) fn write_record(&self, record: &NodeRecord) -> Result<()> {
        write_atomic(
            &self.record_path(&record.id.key),
            &serde_json::to_vec_pretty(record)?,
        )
    }

    /// The record a job left for node `key`, if it ran it.
    pub(crate) fn read_record(&self, key: &str) -> Option<NodeRecord> {
        let bytes = std::fs::read(self.record_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `<store>/slurm/jobs`.
pub(crate) fn jobs_root(store: &Store) -> PathBuf {
    store.root().join("slurm").join("jobs")
}

/// `<store>/slurm/done/<task id>`: written when a job finished its task. It is what tells a
/// finished shard (which leaves only units) from one that failed; it stays valid whatever
/// happens later, since a node run after its shards computes any unit that is missing.
pub(crate) fn done_marker(store: &Store, task_id: &str) -> PathBuf {
    store.root().join("slurm").join("done").join(task_id)
}
