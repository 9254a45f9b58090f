//! A run's life, whatever executes it: its record opened, then failed or completed with
//! the results collected.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::error::{Error, Result};
use crate::plan::{Node, Plan};
use crate::progress::Reporter;
use crate::record::{ConfigurationRecord, NodeRecord, RunRecord, RunStatus, UnitCounts};
use crate::settings::Settings;
use crate::store::{Outcome, Store};
use crate::util::{run_id, utc_timestamp};

/// Held by the process that runs a run: `runs/<experiment>/<run-id>.lock`, flocked. The OS
/// drops the lock of a killed process, which is how `ls` tells running from interrupted.
pub(crate) struct RunLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl RunLock {
    fn take(path: PathBuf) -> Result<RunLock> {
        let file = std::fs::File::create(&path).map_err(|e| Error::io(path.display(), e))?;
        fs4::FileExt::lock(&file).map_err(|e| Error::io(path.display(), e))?;
        Ok(RunLock { path, _file: file })
    }

    /// Whether a live process holds the lock at `path`.
    pub(crate) fn is_held(path: &std::path::Path) -> bool {
        std::fs::File::open(path).is_ok_and(|f| fs4::FileExt::try_lock(&f).is_err())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A new run record, saved as interrupted so that a killed run leaves it behind, and the
/// lock that says it is running.
pub(crate) fn open(
    plan: &Plan,
    store: &Store,
    settings: &Settings,
) -> Result<(RunRecord, RunLock)> {
    let record = RunRecord {
        run_id: run_id(SystemTime::now()),
        experiment: plan.experiment.clone(),
        experiment_sha256: plan.experiment_sha256.clone(),
        tool_version: settings.tool_version.clone(),
        started: utc_timestamp(SystemTime::now()),
        finished: None,
        status: RunStatus::Interrupted,
        error: None,
        seeds: plan.seeds.clone(),
        device: settings.device.clone(),
        params: plan.configurations[0].params.clone(),
        configurations: configuration_records(plan),
        nodes: Vec::new(),
        units: UnitCounts::default(),
        results: None,
    };
    record.save(store)?;
    let lock = RunLock::take(RunRecord::lock_path(
        store,
        &record.experiment,
        &record.run_id,
    ))?;
    Ok((record, lock))
}

/// Saves the record as failed and hands back the error.
pub(crate) fn fail(plan: &Plan, store: &Store, mut record: RunRecord, error: Error) -> Error {
    sort_nodes(plan, &mut record);
    record.status = RunStatus::Failed;
    record.error = Some(error.to_string());
    record.finished = Some(utc_timestamp(SystemTime::now()));
    match record.save(store) {
        Ok(()) => error,
        Err(save_error) => Error::RecordNotSaved {
            error: Box::new(error),
            save_error: Box::new(save_error),
        },
    }
}

/// Collects the results of a run whose every node finished (`artifacts` in plan order),
/// saves the record as complete and prints the summary line.
pub(crate) fn complete(
    plan: &Plan,
    store: &Store,
    mut record: RunRecord,
    artifacts: &[PathBuf],
    started: Instant,
    reporter: &Reporter,
) -> Result<RunRecord> {
    sort_nodes(plan, &mut record);
    let finished: Vec<(&Node, PathBuf)> =
        plan.nodes.iter().zip(artifacts.iter().cloned()).collect();
    let results_root = store.results_dir().join(&plan.experiment);
    let results = crate::results::collect(plan, &results_root, &record.run_id, &finished)?;
    record.results = Some(
        results
            .strip_prefix(store.root())
            .unwrap_or(&results)
            .to_string_lossy()
            .into_owned(),
    );
    record.status = RunStatus::Complete;
    record.finished = Some(utc_timestamp(SystemTime::now()));
    record.save(store)?;
    let computed = record
        .nodes
        .iter()
        .filter(|n| n.outcome != Outcome::Hit)
        .count();
    reporter.info(&format!(
        "run {} of `{}`: {} stages ({} cached, {computed} computed), units {} cached / {} computed, {:.1}s; results in {}",
        record.run_id,
        record.experiment,
        record.nodes.len(),
        record.nodes.len() - computed,
        record.units.hit,
        record.units.computed,
        started.elapsed().as_secs_f64(),
        results.display()
    ));
    Ok(record)
}

/// Plan order, not completion order, so records of equal runs diff cleanly.
fn sort_nodes(plan: &Plan, record: &mut RunRecord) {
    let position = |n: &NodeRecord| plan.nodes.iter().position(|p| p.id.key == n.id.key);
    record.nodes.sort_by_key(position);
}

/// A sweep's configurations for the run record; none for a single configuration.
fn configuration_records(plan: &Plan) -> Vec<ConfigurationRecord> {
    if !plan.is_sweep() {
        return Vec::new();
    }
    plan.configurations
        .iter()
        .map(|c| ConfigurationRecord {
            config: c.config.clone(),
            params: c.params.clone(),
        })
        .collect()
}

/// The labels of the configurations a node serves (none outside a sweep).
pub(crate) fn config_labels(plan: &Plan, node: &Node) -> Vec<String> {
    if !plan.is_sweep() {
        return Vec::new();
    }
    node.configs
        .iter()
        .map(|&c| plan.configurations[c].config.label.clone())
        .collect()
}
