//! The driver: submits ready tasks as array jobs, follows them with `squeue`, resubmits
//! failed ones, and completes the run when every node's artifact is in the store. It
//! computes nothing itself, and after a `kill -9` a new driver adopts the jobs still queued
//! or running (jobs are named by the content of what they run) instead of submitting again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, IoContext, Result};
use crate::executor::{JobOptions, SlurmConfig};
use crate::hash::sha256_hex;
use crate::lifecycle::{self, config_labels};
use crate::manifest::Validity;
use crate::plan::Plan;
use crate::progress::Reporter;
use crate::record::{NodeRecord, RunRecord, UnitCounts};
use crate::settings::Settings;
use crate::store::{Area, Outcome, Store};

use super::commands::{self, QueuedJob};
use super::spec::{done_marker, JobDir, JobSpec, TaskSpec};
use super::tasks::{self, Task};

/// Every job tenas submits is named `tenas-<array id>`.
pub(crate) const JOB_PREFIX: &str = "tenas-";

#[derive(Debug, Clone)]
enum TaskState {
    Pending,
    InFlight(Element),
    Done,
}

/// One element of a submitted array.
#[derive(Debug, Clone)]
struct Element {
    array_job: String,
    index: usize,
    jobdir: JobDir,
}

impl Element {
    fn id(&self) -> String {
        format!("{}_{}", self.array_job, self.index)
    }
}

struct Driver<'a> {
    plan: &'a Plan,
    store: &'a Store,
    settings: &'a Settings,
    config: &'a SlurmConfig,
    reporter: Reporter,
    binary: PathBuf,
    tasks: Vec<Task>,
    states: Vec<TaskState>,
    attempts: Vec<u32>,
    record: RunRecord,
    /// Nodes already in the run record.
    recorded: Vec<bool>,
    /// `squeue` failures in a row.
    queue_failures: u32,
}

/// `squeue` failures in a row after which the driver gives up.
const QUEUE_FAILURES: u32 = 10;

/// Runs the plan as Slurm jobs against `store`, which every node must see at the same path.
pub fn run(
    plan: &Plan,
    store: &Store,
    settings: &Settings,
    config: &SlurmConfig,
) -> Result<RunRecord> {
    let root = std::fs::create_dir_all(store.root())
        .and_then(|()| store.root().canonicalize())
        .at(store.root())?;
    let store = &Store::open(root)?;
    let started = Instant::now();
    let (record, _lock) = lifecycle::open(plan, store, settings)?;
    let binary = match &config.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()
            .map_err(|e| Error::Slurm(format!("cannot find the tenas binary for jobs: {e}")))?,
    };
    let tasks = tasks::partition(plan, config);
    let mut driver = Driver {
        plan,
        store,
        settings,
        config,
        reporter: Reporter::new(settings.verbosity),
        binary,
        states: vec![TaskState::Pending; tasks.len()],
        attempts: vec![0; tasks.len()],
        tasks,
        record,
        recorded: vec![false; plan.nodes.len()],
        queue_failures: 0,
    };
    match driver.drive() {
        Ok(()) => {
            let artifacts = driver.artifacts()?;
            let Driver {
                record, reporter, ..
            } = driver;
            lifecycle::complete(plan, store, record, &artifacts, started, &reporter)
        }
        Err(error) => {
            let running = driver.in_flight();
            if !running.is_empty() {
                driver.reporter.warn(&format!(
                    "slurm: left running: {} (their results land in the store; run again to pick them up)",
                    running.join(", ")
                ));
            }
            Err(lifecycle::fail(plan, store, driver.record, error))
        }
    }
}

impl Driver<'_> {
    fn drive(&mut self) -> Result<()> {
        self.mark_cached()?;
        self.adopt(&commands::queue(JOB_PREFIX)?);
        loop {
            if self.states.iter().all(|s| matches!(s, TaskState::Done)) {
                return Ok(());
            }
            self.submit_ready()?;
            std::thread::sleep(self.config.poll);
            if let Some(queue) = self.poll_queue()? {
                self.collect_finished(&queue)?;
            }
        }
    }

    /// The queue, or none when `squeue` failed this time (a busy controller times out now
    /// and then); only `QUEUE_FAILURES` failures in a row end the run.
    fn poll_queue(&mut self) -> Result<Option<Vec<QueuedJob>>> {
        match commands::queue(JOB_PREFIX) {
            Ok(queue) => {
                self.queue_failures = 0;
                Ok(Some(queue))
            }
            Err(e) if self.queue_failures + 1 < QUEUE_FAILURES => {
                self.queue_failures += 1;
                self.reporter.warn(&format!(
                    "slurm: {e}; asking again in {:?}",
                    self.config.poll
                ));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Records the nodes that are already stored and marks tasks with nothing left as done.
    fn mark_cached(&mut self) -> Result<()> {
        for i in 0..self.plan.nodes.len() {
            if self.is_stored(i) {
                self.record_node(i, None)?;
            }
        }
        for t in 0..self.tasks.len() {
            let done = match self.tasks[t].shard {
                Some(_) => {
                    self.tasks[t].nodes.iter().all(|&n| self.recorded[n])
                        || done_marker(self.store, &self.tasks[t].id).exists()
                }
                None => self.tasks[t].nodes.iter().all(|&n| self.recorded[n]),
            };
            if done {
                self.states[t] = TaskState::Done;
            }
        }
        Ok(())
    }

    /// Takes over live jobs that run tasks of this plan (a driver started again).
    fn adopt(&mut self, queue: &[QueuedJob]) {
        let mut specs: BTreeMap<String, Option<JobSpec>> = BTreeMap::new();
        for job in queue {
            let array_id = &job.name[JOB_PREFIX.len()..];
            let jobdir = JobDir::new(self.store, array_id);
            let spec = specs
                .entry(array_id.to_string())
                .or_insert_with(|| jobdir.read_spec().ok());
            let Some(task_id) = spec
                .as_ref()
                .and_then(|s| s.tasks.get(job.index))
                .map(|t| &t.id)
            else {
                continue;
            };
            let Some(t) = self.tasks.iter().position(|task| &task.id == task_id) else {
                continue;
            };
            if matches!(self.states[t], TaskState::Pending) {
                let element = Element {
                    array_job: job.array_job.clone(),
                    index: job.index,
                    jobdir,
                };
                self.reporter.info(&format!(
                    "slurm: adopting job {} ({}), {}",
                    element.id(),
                    self.describe(t),
                    job.state.to_lowercase()
                ));
                self.states[t] = TaskState::InFlight(element);
            }
        }
    }

    /// Submits every ready task, up to `max_in_flight`, one array per set of job options.
    fn submit_ready(&mut self) -> Result<()> {
        let in_flight = self.in_flight().len();
        let room = self.config.max_in_flight.saturating_sub(in_flight);
        let ready: Vec<usize> = (0..self.tasks.len())
            .filter(|&t| matches!(self.states[t], TaskState::Pending))
            .filter(|&t| {
                self.tasks[t]
                    .deps
                    .iter()
                    .all(|&d| matches!(self.states[d], TaskState::Done))
            })
            .take(room)
            .collect();
        let mut arrays: BTreeMap<String, (JobOptions, Vec<usize>)> = BTreeMap::new();
        for t in ready {
            let options = self.config.options_for(&self.tasks[t].kind);
            arrays
                .entry(format!("{options:?}"))
                .or_insert_with(|| (options, Vec::new()))
                .1
                .push(t);
        }
        for (_, (options, members)) in arrays {
            self.submit_array(&options, &members)?;
        }
        Ok(())
    }

    fn submit_array(&mut self, options: &JobOptions, members: &[usize]) -> Result<()> {
        let mut identity: String = members
            .iter()
            .map(|&t| format!("{}\n", self.tasks[t].id))
            .collect();
        identity.push_str(&format!("{options:?}"));
        let array_id = sha256_hex(identity.as_bytes())[..16].to_string();
        let jobdir = JobDir::new(self.store, &array_id);
        let spec = JobSpec {
            experiment: self.plan.experiment.clone(),
            store: self.store.root().to_path_buf(),
            device: self.settings.device.clone(),
            tool_version: self.settings.tool_version.clone(),
            tasks: members
                .iter()
                .map(|&t| TaskSpec::of(self.plan, &self.tasks[t]))
                .collect(),
        };
        std::fs::create_dir_all(jobdir.logs()).at(&jobdir.logs())?;
        jobdir.write_spec(&spec)?;
        write_script(&jobdir, &self.binary)?;
        let name = format!("{JOB_PREFIX}{array_id}");
        let array_job = commands::submit(&jobdir, &name, members.len(), options)?;
        let mut described: Vec<String> =
            members.iter().take(4).map(|&t| self.describe(t)).collect();
        if members.len() > described.len() {
            described.push(format!("{} more", members.len() - described.len()));
        }
        self.reporter.info(&format!(
            "slurm: submitted array job {array_job} ({} task{}: {})",
            members.len(),
            if members.len() == 1 { "" } else { "s" },
            described.join("; ")
        ));
        for (index, &t) in members.iter().enumerate() {
            self.states[t] = TaskState::InFlight(Element {
                array_job: array_job.clone(),
                index,
                jobdir: jobdir.clone(),
            });
        }
        Ok(())
    }

    /// Settles the in-flight tasks whose jobs left the queue: done, or failed and pending
    /// again until `retries` runs out.
    fn collect_finished(&mut self, queue: &[QueuedJob]) -> Result<()> {
        let live: BTreeSet<String> = queue.iter().map(QueuedJob::id).collect();
        for t in 0..self.tasks.len() {
            let TaskState::InFlight(element) = &self.states[t] else {
                continue;
            };
            if live.contains(&element.id()) {
                continue;
            }
            let element = element.clone();
            if self.succeeded(t) {
                for n in self.tasks[t].nodes.clone() {
                    self.record_node(n, Some(&element.jobdir))?;
                }
                self.reporter.info(&format!(
                    "slurm: job {} done ({})",
                    element.id(),
                    self.describe(t)
                ));
                self.states[t] = TaskState::Done;
            } else {
                self.failed(t, &element)?;
            }
        }
        Ok(())
    }

    fn succeeded(&self, t: usize) -> bool {
        match self.tasks[t].shard {
            Some(_) => done_marker(self.store, &self.tasks[t].id).exists(),
            None => self.tasks[t].nodes.iter().all(|&n| self.is_stored(n)),
        }
    }

    fn failed(&mut self, t: usize, element: &Element) -> Result<()> {
        let ending = commands::ending(&element.id());
        let log = element.jobdir.log_path(&element.array_job, element.index);
        let mut what = format!(
            "job {} ({}) ended {}",
            element.id(),
            self.describe(t),
            ending.state
        );
        if let Some(code) = &ending.exit_code {
            what.push_str(&format!(", exit code {code}"));
        }
        if let Some(reason) = &ending.reason {
            what.push_str(&format!(", reason {reason}"));
        }
        let tail = commands::log_tail(&log, 15);
        self.attempts[t] += 1;
        if self.attempts[t] > self.config.retries {
            return Err(Error::Slurm(format!(
                "{what}; no retries left ({} allowed); log {}:\n{tail}",
                self.config.retries,
                log.display()
            )));
        }
        self.reporter.warn(&format!(
            "slurm: {what}; resubmitting (retry {} of {}); log {}:\n{tail}",
            self.attempts[t],
            self.config.retries,
            log.display()
        ));
        self.states[t] = TaskState::Pending;
        Ok(())
    }

    fn is_stored(&self, node: usize) -> bool {
        matches!(
            self.store
                .validate(Area::Objects, &self.plan.nodes[node].id.key),
            Validity::Valid(_)
        )
    }

    /// Adds a node to the run record: the job's own record when it left one, else a cache hit.
    fn record_node(&mut self, n: usize, jobdir: Option<&JobDir>) -> Result<()> {
        if self.recorded[n] {
            return Ok(());
        }
        let node = &self.plan.nodes[n];
        let record = jobdir
            .and_then(|j| j.read_record(&node.id.key))
            .unwrap_or_else(|| NodeRecord {
                label: node.label(),
                configs: config_labels(self.plan, node),
                id: node.id.clone(),
                outcome: Outcome::Hit,
                wall_seconds: 0.0,
                units: UnitCounts::default(),
            });
        self.record.units.hit += record.units.hit;
        self.record.units.computed += record.units.computed;
        self.record.nodes.push(record);
        self.recorded[n] = true;
        self.record.save(self.store)
    }

    fn artifacts(&self) -> Result<Vec<PathBuf>> {
        (0..self.plan.nodes.len())
            .map(|n| match self.is_stored(n) {
                true => Ok(self
                    .store
                    .artifact_dir(Area::Objects, &self.plan.nodes[n].id.key)),
                false => Err(Error::Slurm(format!(
                    "{} finished but its artifact is not valid in the store",
                    self.plan.nodes[n].label()
                ))),
            })
            .collect()
    }

    fn in_flight(&self) -> Vec<String> {
        self.states
            .iter()
            .filter_map(|s| match s {
                TaskState::InFlight(e) => Some(e.id()),
                _ => None,
            })
            .collect()
    }

    /// `train[seed=0], eval[seed=0]` or `score[seed=0] shard 2/3`.
    fn describe(&self, t: usize) -> String {
        let task = &self.tasks[t];
        let labels: Vec<String> = task
            .nodes
            .iter()
            .map(|&n| self.plan.nodes[n].label())
            .collect();
        match task.shard {
            Some(s) => format!("{} shard {}/{}", labels.join(", "), s.index + 1, s.count),
            None => labels.join(", "),
        }
    }
}

/// The job script: runs this array element's task with the driver's binary.
fn write_script(jobdir: &JobDir, binary: &std::path::Path) -> Result<()> {
    let quote =
        |p: &std::path::Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    // Without cgroups a job's threads are not confined to its CPUs: size the thread pools
    // (rayon's, used by the numeric kernels) to what Slurm allocated.
    let script = format!(
        "#!/bin/sh\n# Written by the tenas Slurm driver: runs element $SLURM_ARRAY_TASK_ID of {}.\nexport RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-1}}}}\"\nexec {} worker {}\n",
        jobdir.spec_path().display(),
        quote(binary),
        quote(&jobdir.spec_path())
    );
    crate::util::write_atomic(&jobdir.script_path(), script.as_bytes())
}
