//! Run records (`runs/<experiment>/<run-id>.json`): what a run used and produced.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, IoContext, Result};
use crate::identity::NodeIdentity;
use crate::matrix::Configuration;
use crate::store::{Outcome, Store};
use crate::util::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Complete,
    Failed,
    /// Written while a run is in flight, so a killed run leaves this behind.
    Interrupted,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Complete => "complete",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCounts {
    pub hit: u64,
    pub computed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `Node::label`: the name with the node's matrix values and seed.
    #[serde(default)]
    pub label: String,
    #[serde(flatten)]
    pub id: NodeIdentity,
    pub outcome: Outcome,
    pub wall_seconds: f64,
    pub units: UnitCounts,
    /// Labels of the configurations the node served (a sweep's nodes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment: String,
    pub experiment_sha256: String,
    pub tool_version: String,
    pub started: String,
    pub finished: Option<String>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seeds: Vec<u64>,
    pub device: Value,
    /// Resolved params per stage name (of the first configuration of a sweep).
    pub params: BTreeMap<String, Value>,
    /// A sweep's configurations, each with its label and matrix values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<ConfigurationRecord>,
    /// Finished nodes: in completion order while running, in plan order at the end.
    pub nodes: Vec<NodeRecord>,
    pub units: UnitCounts,
    /// `results/<experiment>/<run-id>`, relative to the store root, once collected.
    pub results: Option<String>,
}

/// One configuration of a sweep as the run record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationRecord {
    #[serde(flatten)]
    pub config: Configuration,
    /// Resolved params per stage name.
    pub params: BTreeMap<String, Value>,
}

impl RunRecord {
    pub fn path(store: &Store, experiment: &str, run_id: &str) -> std::path::PathBuf {
        store
            .runs_dir()
            .join(experiment)
            .join(format!("{run_id}.json"))
    }

    /// Locked while the run's process lives (see `lifecycle::RunLock`).
    pub fn lock_path(store: &Store, experiment: &str, run_id: &str) -> std::path::PathBuf {
        Self::path(store, experiment, run_id).with_extension("lock")
    }

    /// The run's unit journal: one unit key per line, appended as units finish.
    pub fn unit_journal(store: &Store, experiment: &str, run_id: &str) -> std::path::PathBuf {
        Self::path(store, experiment, run_id).with_extension("units")
    }

    pub(crate) fn save(&self, store: &Store) -> Result<()> {
        let path = Self::path(store, &self.experiment, &self.run_id);
        write_atomic(&path, &serde_json::to_vec_pretty(self)?)
    }

    fn read(path: &Path) -> Result<RunRecord> {
        let bytes = std::fs::read(path).at(path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptArtifact {
            path: path.to_path_buf(),
            reason: format!("malformed run record: {e}"),
        })
    }

    /// The record of run `run_id`, whichever experiment it belongs to.
    pub fn find(store: &Store, run_id: &str) -> Result<Option<RunRecord>> {
        for experiment in Self::experiments(store)? {
            let path = Self::path(store, &experiment, run_id);
            if path.is_file() {
                return Self::read(&path).map(Some);
            }
        }
        Ok(None)
    }

    /// The store and record behind a results folder (`<store>/results/<experiment>/<run-id>`,
    /// or its `latest` link).
    pub fn of_results_folder(dir: &Path) -> Result<(Store, RunRecord)> {
        let dir = dir.canonicalize().at(dir)?;
        let not_results = || Error::NotAResultsFolder { path: dir.clone() };
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let run_id = name(&dir).ok_or_else(not_results)?;
        let experiment_dir = dir.parent().ok_or_else(not_results)?;
        let experiment = name(experiment_dir).ok_or_else(not_results)?;
        let root = experiment_dir
            .parent()
            .and_then(Path::parent)
            .ok_or_else(not_results)?;
        let store = Store::open(root)?;
        let path = Self::path(&store, &experiment, &run_id);
        if !path.is_file() {
            return Err(not_results());
        }
        let record = Self::read(&path)?;
        Ok((store, record))
    }

    /// `<store>/results/<experiment>/<run-id>`, once the run collected its results.
    pub fn results_dir(&self, store: &Store) -> Option<std::path::PathBuf> {
        self.results.as_ref().map(|r| store.root().join(r))
    }

    /// All records of an experiment, oldest first (run ids sort by time).
    pub fn load_all(store: &Store, experiment: &str) -> Result<Vec<RunRecord>> {
        let dir = store.runs_dir().join(experiment);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::read(p)).collect()
    }

    pub fn latest(store: &Store, experiment: &str) -> Result<Option<RunRecord>> {
        Ok(Self::load_all(store, experiment)?.pop())
    }

    /// Names of experiments with records in the store.
    pub fn experiments(store: &Store) -> Result<Vec<String>> {
        let dir = store.runs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
}
