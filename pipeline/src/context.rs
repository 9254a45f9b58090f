//! What a running stage sees: params, inputs, its output dir, cached sub-units, progress.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::hash::key_of;
use crate::identity::NodeIdentity;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::settings::Settings;
use crate::store::{Area, Produced, Store};

/// What `StageContext::units` gives back.
#[must_use]
#[derive(Debug)]
pub enum Units {
    /// Every unit's dir, in descriptor order.
    Done(Vec<PathBuf>),
    /// A shard job computed its part of the units: the stage returns `Ok(())` at once, and the
    /// engine stores no artifact (the node runs once every shard is done).
    ShardFinished,
}

impl Units {
    /// The dirs, for a stage that is not `Stage::shardable` and so is never run as a shard.
    pub fn expect_done(self) -> Result<Vec<PathBuf>> {
        match self {
            Units::Done(dirs) => Ok(dirs),
            Units::ShardFinished => Err(Error::NotShardable),
        }
    }
}

/// One of `count` disjoint parts of a node's units, computed by its own job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

pub(crate) struct InputArtifact {
    pub reference: String,
    pub name: String,
    pub kind: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// What a running stage's context knows of its node: a plain view, so that the context
/// depends on neither the plan nor the stage trait.
pub(crate) struct NodeView<'a> {
    pub id: &'a NodeIdentity,
    /// The resolved params the stage runs with.
    pub params: &'a Value,
    /// `Stage::version`, part of every unit key.
    pub version: u32,
}

pub struct StageContext<'a> {
    pub(crate) node: NodeView<'a>,
    pub(crate) settings: &'a Settings,
    pub(crate) experiment: &'a str,
    pub(crate) store: &'a Store,
    pub(crate) inputs: Vec<InputArtifact>,
    pub(crate) out_dir: PathBuf,
    pub(crate) progress: &'a Progress<'a>,
    /// Unit workers at most; they also need permits from the process's budget.
    pub(crate) jobs: usize,
    pub(crate) budget: &'a Budget,
    pub(crate) journal: &'a Path,
    /// Set when this run computes only a shard of the node's units.
    pub(crate) shard: Option<Shard>,
    /// Set once the shard's units are done, so the runner can tell that the stage got there.
    pub(crate) shard_done: AtomicBool,
    pub(crate) unit_keys: Mutex<Vec<String>>,
    pub(crate) units_hit: AtomicU64,
    pub(crate) units_computed: AtomicU64,
}

/// What a unit's key is made of. Params are left out on purpose: the stage puts the
/// params that matter to one unit in its descriptor, so growing a sample reuses units.
#[derive(Serialize)]
struct UnitComponents<'a> {
    stage_kind: &'a str,
    stage_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<&'a Value>,
    inputs: &'a std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    unit: &'a str,
    descriptor: &'a Value,
}

impl StageContext<'_> {
    pub fn params(&self) -> &Value {
        self.node.params
    }

    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params().clone()).map_err(|e| Error::InvalidParam {
            stage: self.node.id.name.clone(),
            key: None,
            reason: e.to_string(),
        })
    }

    /// The seed of this node, if the stage (or an upstream stage) uses one.
    pub fn seed(&self) -> Option<u64> {
        self.node.id.seed
    }

    pub fn settings(&self) -> &Settings {
        self.settings
    }

    pub fn experiment_name(&self) -> &str {
        self.experiment
    }

    pub fn stage_name(&self) -> &str {
        &self.node.id.name
    }

    /// Artifact dir of an input, by the reference used in `inputs`, the stage name, or its kind.
    pub fn input(&self, name: &str) -> Result<&Path> {
        Ok(&self.find_input(name)?.dir)
    }

    pub fn input_manifest(&self, name: &str) -> Result<&Manifest> {
        Ok(&self.find_input(name)?.manifest)
    }

    fn find_input(&self, name: &str) -> Result<&InputArtifact> {
        let by = |f: &dyn Fn(&InputArtifact) -> bool| self.inputs.iter().find(|i| f(i));
        by(&|i| i.reference == name)
            .or_else(|| by(&|i| i.name == name))
            .or_else(|| by(&|i| i.kind == name))
            .ok_or_else(|| Error::MissingInput {
                stage: self.node.id.name.clone(),
                input: name.to_string(),
                known: self.inputs.iter().map(|i| i.reference.clone()).collect(),
            })
    }

    /// Temporary dir that becomes the artifact when `run` returns Ok.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// `out_dir/tables/<table>.parquet` (folder created); the engine collects these
    /// into `results/`.
    pub fn table_path(&self, table: &str) -> PathBuf {
        self.path_in("tables", &format!("{table}.parquet"))
    }

    /// `out_dir/reports/<file>` (folder created); the engine copies these into `results/`.
    pub fn report_path(&self, file: &str) -> PathBuf {
        self.path_in("reports", file)
    }

    fn path_in(&self, folder: &str, file: &str) -> PathBuf {
        let path = self.out_dir.join(folder).join(file);
        // A failure here resurfaces, with the path, when the stage writes the file.
        let _ = std::fs::create_dir_all(path.parent().expect("joined path has a parent"));
        path
    }

    pub fn progress(&self) -> &Progress<'_> {
        self.progress
    }

    /// A cached sub-unit: returns its artifact dir, computing it into a fresh dir
    /// with `compute` only when no valid one is stored. Does not tick progress.
    pub fn unit<F: FnOnce(&Path) -> Result<()>>(
        &self,
        name: &str,
        descriptor: &Value,
        compute: F,
    ) -> Result<PathBuf> {
        let components = serde_json::to_value(UnitComponents {
            stage_kind: &self.node.id.kind,
            stage_version: self.node.version,
            settings: self.node.id.components.settings.as_ref(),
            inputs: &self.node.id.components.inputs,
            seed: self.node.id.components.seed,
            unit: name,
            descriptor,
        })?;
        let key = key_of(&components);
        // Journaled before it is computed, so no stored unit is ever missing from it.
        self.record_unit(&key)?;
        let artifact = self.store.get_or_compute(
            Area::Units,
            &key,
            &components,
            &self.settings.tool_version,
            &|line| self.progress.warn(&line),
            |out| {
                compute(out)?;
                Ok(Produced { units: Vec::new() })
            },
        )?;
        let counter = match artifact.outcome {
            crate::store::Outcome::Hit => &self.units_hit,
            _ => &self.units_computed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.unit_keys.lock().expect("unit keys lock").push(key);
        Ok(artifact.dir)
    }

    /// Appends a unit key to the run's journal (one short line per write, so concurrent
    /// appends stay whole).
    fn record_unit(&self, key: &str) -> Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.journal)
            .map_err(|e| Error::Io {
                context: format!("appending to {}", self.journal.display()),
                cause: e,
            })?;
        file.write_all(format!("{key}\n").as_bytes())
            .map_err(|e| Error::Io {
                context: format!("appending to {}", self.journal.display()),
                cause: e,
            })
    }

    /// Many units in parallel (up to `jobs`), ticking progress per finished unit.
    /// `compute(i, out)` computes unit `i`. Returns the dirs in descriptor order.
    ///
    /// In a shard job (a stage whose `Stage::shardable` is true, split by an executor) only
    /// the units whose index falls in the shard are computed, and the call then returns
    /// `Units::ShardFinished`: the stage then returns without using them.
    pub fn units<F: Fn(usize, &Path) -> Result<()> + Sync>(
        &self,
        name: &str,
        descriptors: &[Value],
        compute: F,
    ) -> Result<Units> {
        let indices: Vec<usize> = match self.shard {
            Some(shard) => (shard.index..descriptors.len())
                .step_by(shard.count)
                .collect(),
            None => (0..descriptors.len()).collect(),
        };
        let dirs = self.units_at(name, descriptors, &indices, compute)?;
        if self.shard.is_some() {
            self.shard_done.store(true, Ordering::Relaxed);
            return Ok(Units::ShardFinished);
        }
        Ok(Units::Done(dirs))
    }

    /// Computes (or finds) the units at `indices`; returns their dirs in that order.
    fn units_at<F: Fn(usize, &Path) -> Result<()> + Sync>(
        &self,
        name: &str,
        descriptors: &[Value],
        indices: &[usize],
        compute: F,
    ) -> Result<Vec<PathBuf>> {
        self.progress.expect_more(indices.len() as u64);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<PathBuf>>>> =
            Mutex::new((0..indices.len()).map(|_| None).collect());
        let workers = self.jobs.clamp(1, indices.len().max(1));
        let exhausted =
            || next.load(Ordering::Relaxed) >= indices.len() || failed.load(Ordering::Relaxed);
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let (next, failed, results, exhausted) = (&next, &failed, &results, &exhausted);
                let compute = &compute;
                scope.spawn(move || loop {
                    // Worker 0 computes on the permit its node holds; the others borrow spare
                    // permits one unit at a time.
                    let _permit = match worker {
                        0 => None,
                        _ => match self.budget.acquire_unless(exhausted) {
                            Some(permit) => Some(permit),
                            None => break,
                        },
                    };
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    if slot >= indices.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = indices[slot];
                    let result = self.unit(name, &descriptors[i], |out| compute(i, out));
                    match &result {
                        Ok(_) => self.progress.inc(1),
                        Err(_) => failed.store(true, Ordering::Relaxed),
                    }
                    results.lock().expect("results lock")[slot] = Some(result);
                });
            }
        });
        // Units skipped after a failure are `None`; the first error in order is returned.
        let mut dirs = Vec::with_capacity(indices.len());
        for result in results
            .into_inner()
            .expect("results lock")
            .into_iter()
            .flatten()
        {
            dirs.push(result?);
        }
        Ok(dirs)
    }
}
