//! Inside a job: run one task of an array's spec against the shared store.

use std::path::Path;

use crate::budget::Budget;
use crate::context::InputArtifact;
use crate::error::{Error, Result};
use crate::manifest::Validity;
use crate::progress::Reporter;
use crate::runner::NodeRunner;
use crate::settings::{Settings, Verbosity};
use crate::stage::Registry;
use crate::store::{Area, Store};

use super::spec::{done_marker, InputSpec, JobDir, JobSpec};

/// Runs element `index` of the array whose spec is at `spec_path`: its nodes in order (or
/// its shard), leaving a record per node and, when all succeeded, the element's done marker.
/// Parallel units follow the job's CPUs (`SLURM_CPUS_PER_TASK`, else `SLURM_CPUS_ON_NODE`, else 1).
pub fn run_task(
    spec_path: &Path,
    spec: &JobSpec,
    index: usize,
    registry: &Registry,
    verbosity: Verbosity,
) -> Result<()> {
    let jobdir = JobDir::of_spec(spec_path)?;
    let task = spec.tasks.get(index).ok_or_else(|| {
        Error::Slurm(format!(
            "{}: no task {index} (the array has {})",
            spec_path.display(),
            spec.tasks.len()
        ))
    })?;
    let jobs = ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(1);
    let store = Store::open(&spec.store)?;
    let settings = Settings {
        device: spec.device.clone(),
        jobs,
        verbosity,
        tool_version: spec.tool_version.clone(),
    };
    let reporter = Reporter::new(verbosity);
    let journal = jobdir.journal_path(index);
    let budget = Budget::new(jobs);
    let _permit = budget.acquire();
    let runner = NodeRunner {
        experiment: &spec.experiment,
        store: &store,
        settings: &settings,
        reporter: &reporter,
        jobs,
        budget: &budget,
        journal: &journal,
    };
    for node_spec in &task.nodes {
        let node = node_spec.to_node(registry)?;
        let inputs = node_spec
            .inputs
            .iter()
            .map(|input| stored_input(&store, input))
            .collect::<Result<Vec<_>>>()?;
        match task.shard {
            Some(shard) => {
                runner.run_shard(&node, inputs, shard)?;
            }
            None => {
                let output = runner.run(&node, inputs, node_spec.configs.clone())?;
                jobdir.write_record(&output.record)?;
            }
        }
    }
    let done = done_marker(&store, &task.id);
    crate::util::write_atomic(&done, b"")
}

fn stored_input(store: &Store, input: &InputSpec) -> Result<InputArtifact> {
    match store.validate(Area::Objects, &input.key) {
        Validity::Valid(manifest) => Ok(InputArtifact {
            reference: input.reference.clone(),
            name: input.name.clone(),
            kind: input.kind.clone(),
            dir: store.artifact_dir(Area::Objects, &input.key),
            manifest: *manifest,
        }),
        _ => Err(Error::Slurm(format!(
            "input `{}` ({}) is not in the store {}: the job that computes it must finish first",
            input.reference,
            &input.key[..12],
            store.root().display()
        ))),
    }
}
