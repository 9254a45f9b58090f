//! The local executor: a worker pool over the plan's DAG in this process.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::budget::Budget;
use crate::context::InputArtifact;
use crate::error::{Error, Result};
use crate::lifecycle::{self, config_labels};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::progress::Reporter;
use crate::record::RunRecord;
use crate::runner::NodeRunner;
use crate::settings::Settings;
use crate::store::Store;

#[derive(Clone, Copy, PartialEq)]
enum State {
    Pending,
    Running,
    Done,
}

struct Schedule {
    states: Vec<State>,
    artifacts: Vec<Option<(PathBuf, Manifest)>>,
    error: Option<Error>,
    record: RunRecord,
}

/// Runs every node of the plan (reusing valid artifacts), collects results, and
/// returns the run record. On failure the record is saved as failed and the first
/// error is returned.
pub fn run(plan: &Plan, store: &Store, settings: &Settings) -> Result<RunRecord> {
    let reporter = Reporter::new(settings.verbosity);
    let jobs = settings.effective_jobs(plan.jobs);
    let started = Instant::now();
    let (record, _lock) = lifecycle::open(plan, store, settings)?;
    let journal = RunRecord::unit_journal(store, &record.experiment, &record.run_id);
    let budget = Budget::new(jobs);
    let env = Env {
        plan,
        runner: NodeRunner {
            experiment: &plan.experiment,
            store,
            settings,
            reporter: &reporter,
            jobs,
            budget: &budget,
            journal: &journal,
        },
    };
    let schedule = Mutex::new(Schedule {
        states: vec![State::Pending; plan.nodes.len()],
        artifacts: vec![None; plan.nodes.len()],
        error: None,
        record,
    });
    let wake = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, plan.nodes.len().max(1)) {
            scope.spawn(|| worker(&env, &schedule, &wake));
        }
    });

    let mut schedule = schedule.into_inner().expect("schedule lock");
    let record = schedule.record;
    if let Some(error) = schedule.error.take() {
        return Err(lifecycle::fail(plan, store, record, error));
    }
    let artifacts: Vec<PathBuf> = schedule
        .artifacts
        .into_iter()
        .map(|artifact| artifact.expect("every node finished").0)
        .collect();
    lifecycle::complete(plan, store, record, &artifacts, started, &reporter)
}

/// What every worker of one run shares.
struct Env<'a> {
    plan: &'a Plan,
    runner: NodeRunner<'a>,
}

fn worker(env: &Env<'_>, schedule: &Mutex<Schedule>, wake: &Condvar) {
    let (plan, store) = (env.plan, env.runner.store);
    loop {
        let mut s = schedule.lock().expect("schedule lock");
        let index = loop {
            if s.error.is_some() || s.states.iter().all(|st| *st == State::Done) {
                wake.notify_all();
                return;
            }
            let ready = (0..plan.nodes.len()).find(|&i| {
                s.states[i] == State::Pending
                    && plan.nodes[i]
                        .inputs
                        .iter()
                        .all(|input| s.states[input.node] == State::Done)
            });
            match ready {
                Some(i) => break i,
                None => s = wake.wait(s).expect("schedule lock"),
            }
        };
        s.states[index] = State::Running;
        let node = &plan.nodes[index];
        let inputs: Vec<InputArtifact> = node
            .inputs
            .iter()
            .map(|input| {
                let upstream = &plan.nodes[input.node];
                let (dir, manifest) = s.artifacts[input.node].clone().expect("input is done");
                InputArtifact {
                    reference: input.reference.clone(),
                    name: upstream.id.name.clone(),
                    kind: upstream.id.kind.clone(),
                    dir,
                    manifest,
                }
            })
            .collect();
        drop(s);

        // The node's permit, which it lends to its first unit worker.
        let permit = env.runner.budget.acquire();
        let result = env.runner.run(node, inputs, config_labels(plan, node));
        drop(permit);
        let mut s = schedule.lock().expect("schedule lock");
        match result {
            Ok(output) => {
                s.states[index] = State::Done;
                s.artifacts[index] = Some((output.dir, output.manifest));
                s.record.units.hit += output.record.units.hit;
                s.record.units.computed += output.record.units.computed;
                s.record.nodes.push(output.record);
                // Kept current so a killed run leaves a partial record.
                if let Err(e) = s.record.save(store) {
                    s.error.get_or_insert(e);
                }
            }
            Err(e) => {
                s.error.get_or_insert(e);
            }
        }
        wake.notify_all();
    }
}
