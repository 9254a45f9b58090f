//! The Slurm executor: the same plan, run as `sbatch` array jobs that each run the `tenas`
//! binary against a store every node sees. Slurm does the scheduling; tenas only decides
//! what is ready, submits it, and follows it.

mod commands;
mod driver;
mod spec;
mod tasks;
mod worker;

use std::collections::BTreeMap;

use crate::error::Result;
use crate::store::Store;

pub use commands::available;
pub use driver::run;
pub use spec::{JobDir, JobSpec};
pub use worker::run_task;

/// A live job holding a node: `(job id, Slurm state)` by node key, for `tenas status`.
/// Empty when Slurm does not answer.
pub fn live_jobs(store: &Store) -> Result<BTreeMap<String, (String, String)>> {
    let mut jobs = BTreeMap::new();
    if !available() {
        return Ok(jobs);
    }
    for job in commands::queue(driver::JOB_PREFIX)? {
        let jobdir = JobDir::new(store, &job.name[driver::JOB_PREFIX.len()..]);
        let Ok(spec) = jobdir.read_spec() else {
            continue;
        };
        for node in spec.tasks.get(job.index).into_iter().flat_map(|t| &t.nodes) {
            jobs.insert(node.id.key.clone(), (job.id(), job.state.clone()));
        }
    }
    Ok(jobs)
}

/// Unit journals of every job folder: gc keeps those units so retried jobs resume.
pub(crate) fn unit_journals(store: &Store) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(spec::jobs_root(store)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|job| {
            std::fs::read_dir(job.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("units-"))
        })
        .collect()
}
