//! Running a plan: a worker pool over the DAG, cached artifacts, a run record kept current.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Instant, SystemTime};

use crate::context::{InputArtifact, StageContext};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::plan::{Node, Plan};
use crate::progress::Reporter;
use crate::record::{NodeRecord, RunRecord, RunStatus, UnitCounts};
use crate::settings::Settings;
use crate::store::{Area, Outcome, Produced, Store};
use crate::util::{run_id, utc_timestamp};

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
        params: plan.params.clone(),
        nodes: Vec::new(),
        units: UnitCounts::default(),
        results: None,
    };
    record.save(store)?;
    let env = Env {
        plan,
        store,
        settings,
        reporter: &reporter,
        jobs,
        journal: RunRecord::unit_journal(store, &record.experiment, &record.run_id),
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
    let mut record = schedule.record;
    // Plan order, not completion order, so records of equal runs diff cleanly.
    let position = |n: &NodeRecord| {
        plan.nodes
            .iter()
            .position(|p| p.name == n.name && p.seed == n.seed)
    };
    record.nodes.sort_by_key(position);
    if let Some(error) = schedule.error.take() {
        record.status = RunStatus::Failed;
        record.error = Some(error.to_string());
        record.finished = Some(utc_timestamp(SystemTime::now()));
        record.save(store)?;
        return Err(error);
    }
    let finished: Vec<(&Node, PathBuf)> = plan
        .nodes
        .iter()
        .zip(schedule.artifacts)
        .map(|(node, artifact)| (node, artifact.expect("every node finished").0))
        .collect();
    let results_root = store.results_dir().join(&plan.experiment);
    let results = crate::results::collect(&results_root, &record.run_id, &finished)?;
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

/// What every worker of one run shares.
struct Env<'a> {
    plan: &'a Plan,
    store: &'a Store,
    settings: &'a Settings,
    reporter: &'a Reporter,
    jobs: usize,
    /// Append-only list of the run's unit keys, so gc keeps an interrupted run's units.
    journal: PathBuf,
}

fn worker(env: &Env<'_>, schedule: &Mutex<Schedule>, wake: &Condvar) {
    let (plan, store) = (env.plan, env.store);
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
                    name: upstream.name.clone(),
                    kind: upstream.kind.clone(),
                    dir,
                    manifest,
                }
            })
            .collect();
        drop(s);

        let result = run_node(env, node, inputs);
        let mut s = schedule.lock().expect("schedule lock");
        match result {
            Ok((node_record, dir, manifest)) => {
                s.states[index] = State::Done;
                s.artifacts[index] = Some((dir, manifest));
                s.record.units.hit += node_record.units.hit;
                s.record.units.computed += node_record.units.computed;
                s.record.nodes.push(node_record);
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

fn run_node(
    env: &Env<'_>,
    node: &Node,
    inputs: Vec<InputArtifact>,
) -> Result<(NodeRecord, PathBuf, Manifest)> {
    let Env {
        plan,
        store,
        settings,
        reporter,
        jobs,
        ..
    } = *env;
    let label = node.label();
    let progress = reporter.stage(label.clone());
    let clock = Instant::now();
    let units_hit = AtomicU64::new(0);
    let units_computed = AtomicU64::new(0);
    let components = serde_json::to_value(&node.components)?;
    let artifact = store.get_or_compute(
        Area::Objects,
        &node.key,
        &components,
        &settings.tool_version,
        &|line| progress.warn(&line),
        |out| {
            reporter.info(&format!("{label}: running"));
            let ctx = StageContext {
                node,
                settings,
                experiment: &plan.experiment,
                store,
                inputs,
                out_dir: out.to_path_buf(),
                progress: &progress,
                jobs,
                journal: &env.journal,
                unit_keys: Mutex::new(Vec::new()),
                units_hit: AtomicU64::new(0),
                units_computed: AtomicU64::new(0),
            };
            let result = node.stage.run(&ctx).map_err(|e| e.in_stage(&label));
            units_hit.store(ctx.units_hit.into_inner(), Ordering::Relaxed);
            units_computed.store(ctx.units_computed.into_inner(), Ordering::Relaxed);
            result?;
            let mut units = ctx.unit_keys.into_inner().expect("unit keys lock");
            units.sort();
            units.dedup();
            Ok(Produced { units })
        },
    );
    progress.finish();
    let artifact = artifact?;
    let wall_seconds = clock.elapsed().as_secs_f64();
    let units = UnitCounts {
        hit: units_hit.into_inner(),
        computed: units_computed.into_inner(),
    };
    reporter.info(&match artifact.outcome {
        Outcome::Hit => format!("{label}: cached"),
        _ => format!(
            "{label}: done in {wall_seconds:.1}s (units: {} computed, {} cached)",
            units.computed, units.hit
        ),
    });
    let record = NodeRecord {
        name: node.name.clone(),
        kind: node.kind.clone(),
        seed: node.seed,
        key: node.key.clone(),
        components: node.components.clone(),
        outcome: artifact.outcome,
        wall_seconds,
        units,
    };
    Ok((record, artifact.dir, artifact.manifest))
}
