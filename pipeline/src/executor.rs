//! Which executor runs a plan, and its settings: `[executor]` in the experiment file,
//! overridden by `--executor` / `TENAS_EXECUTOR`. Executor settings never enter keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::stage::{deserialize_params, ParamError, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// Threads in this process.
    #[default]
    Local,
    /// Jobs submitted with `sbatch`, followed with `squeue`, against a shared store.
    Slurm,
}

impl ExecutorKind {
    pub fn parse(name: &str) -> Option<ExecutorKind> {
        match name {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            _ => None,
        }
    }
}

/// `sbatch` options of a job. In `[executor.slurm]` they are the defaults; a sub-table named
/// after a stage kind (`[executor.slurm.train]`) overrides them for jobs of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Time limit, as `sbatch --time` takes it (`30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node, as `sbatch --mem` takes it (`4G`).
    pub mem: Option<String>,
    /// Generic resources, as `sbatch --gres` takes them (`gpu:1`).
    pub gres: Option<String>,
    /// Further `sbatch` arguments, passed as given.
    pub extra_args: Option<Vec<String>>,
    /// Shardable stages only: split the node's units over this many array jobs.
    pub shards: Option<usize>,
}

impl JobOptions {
    /// These options with `over`'s set fields taking precedence.
    pub fn merged(&self, over: &JobOptions) -> JobOptions {
        JobOptions {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            cpus_per_task: over.cpus_per_task.or(self.cpus_per_task),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            gres: over.gres.clone().or_else(|| self.gres.clone()),
            extra_args: over.extra_args.clone().or_else(|| self.extra_args.clone()),
            shards: over.shards.or(self.shards),
        }
    }
}

/// The driver's own settings, beside the default job options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SlurmTable {
    max_in_flight: usize,
    retries: u32,
    poll_seconds: f64,
    binary: Option<PathBuf>,
    partition: Option<String>,
    account: Option<String>,
    time: Option<String>,
    cpus_per_task: Option<u32>,
    mem: Option<String>,
    gres: Option<String>,
    extra_args: Option<Vec<String>>,
}

impl Default for SlurmTable {
    fn default() -> Self {
        SlurmTable {
            max_in_flight: 100,
            retries: 2,
            poll_seconds: 5.0,
            binary: None,
            partition: None,
            account: None,
            time: None,
            cpus_per_task: None,
            mem: None,
            gres: None,
            extra_args: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// Array tasks queued or running at once, at most.
    pub max_in_flight: usize,
    /// Resubmissions of a task whose job failed, was cancelled or timed out.
    pub retries: u32,
    /// How often the driver asks `squeue` about its jobs.
    pub poll: Duration,
    /// The `tenas` binary jobs run (default: the driver's own); it must be on a path every
    /// node sees.
    pub binary: Option<PathBuf>,
    pub defaults: JobOptions,
    /// Per stage kind.
    pub per_kind: BTreeMap<String, JobOptions>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig::from_table(SlurmTable::default(), BTreeMap::new())
    }
}

impl SlurmConfig {
    fn from_table(t: SlurmTable, per_kind: BTreeMap<String, JobOptions>) -> SlurmConfig {
        SlurmConfig {
            max_in_flight: t.max_in_flight,
            retries: t.retries,
            poll: Duration::from_secs_f64(t.poll_seconds),
            binary: t.binary,
            defaults: JobOptions {
                partition: t.partition,
                account: t.account,
                time: t.time,
                cpus_per_task: t.cpus_per_task,
                mem: t.mem,
                gres: t.gres,
                extra_args: t.extra_args,
                shards: None,
            },
            per_kind,
        }
    }

    /// The options of a job whose stage kind is `kind`.
    pub fn options_for(&self, kind: &str) -> JobOptions {
        match self.per_kind.get(kind) {
            Some(over) => self.defaults.merged(over),
            None => self.defaults.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExecutorConfig {
    pub kind: ExecutorKind,
    pub slurm: SlurmConfig,
}

impl ExecutorConfig {
    /// Reads `[executor]`; `choice` (from `--executor` or `TENAS_EXECUTOR`) overrides its
    /// `kind`. Stage kinds named in `[executor.slurm]` sub-tables must be known.
    pub fn from_experiment(
        exp: &Experiment,
        choice: Option<&str>,
        registry: &Registry,
    ) -> Result<ExecutorConfig> {
        let err = |key: &str, message: String| exp.executor_error(key, message);
        let mut kind = ExecutorKind::default();
        let mut slurm = SlurmConfig::default();
        for (key, value) in &exp.executor {
            match key.as_str() {
                "kind" => {
                    kind = value
                        .as_str()
                        .and_then(ExecutorKind::parse)
                        .ok_or_else(|| err("kind", "expected \"local\" or \"slurm\"".into()))?
                }
                "slurm" => {
                    let table = value
                        .as_table()
                        .ok_or_else(|| err("slurm", "expected a table".into()))?;
                    slurm = parse_slurm(table, registry, &err)?;
                }
                other => {
                    return Err(err(
                        other,
                        "unknown key (expected `kind` or a [executor.slurm] table)".into(),
                    ))
                }
            }
        }
        if let Some(choice) = choice {
            kind = ExecutorKind::parse(choice).ok_or_else(|| Error::UnknownExecutor {
                name: choice.to_string(),
            })?;
        }
        Ok(ExecutorConfig { kind, slurm })
    }
}

fn parse_slurm(
    table: &toml::Table,
    registry: &Registry,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<SlurmConfig> {
    let (tables, scalars): (toml::Table, toml::Table) =
        table.clone().into_iter().partition(|(_, v)| v.is_table());
    let base: SlurmTable = deserialize_params(&scalars)
        .map_err(|e: ParamError| err(&format!("slurm.{}", e.key), e.message))?;
    if base.max_in_flight == 0 {
        return Err(err("slurm.max_in_flight", "must be at least 1".into()));
    }
    if base.poll_seconds.is_nan() || base.poll_seconds <= 0.0 {
        return Err(err("slurm.poll_seconds", "must be more than 0".into()));
    }
    let mut per_kind = BTreeMap::new();
    for (kind, value) in tables {
        let stage = registry.get(&kind).ok_or_else(|| {
            let known: Vec<&str> = registry.kinds().collect();
            err(
                &format!("slurm.{kind}"),
                format!("no stage kind `{kind}` (known: {})", known.join(", ")),
            )
        })?;
        let options: JobOptions = deserialize_params(value.as_table().expect("partitioned"))
            .map_err(|e| err(&format!("slurm.{kind}.{}", e.key), e.message))?;
        match options.shards {
            Some(0) => {
                return Err(err(
                    &format!("slurm.{kind}.shards"),
                    "must be at least 1".into(),
                ))
            }
            Some(n) if n > 1 && !stage.shardable() => {
                return Err(err(
                    &format!("slurm.{kind}.shards"),
                    format!("stage kind `{kind}` cannot be split into shards"),
                ))
            }
            _ => {}
        }
        per_kind.insert(kind, options);
    }
    Ok(SlurmConfig::from_table(base, per_kind))
}
