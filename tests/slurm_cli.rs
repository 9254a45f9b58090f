//! End to end on a real Slurm cluster (`tools/slurm-local.sh start`; CI starts one): a
//! sweep run by the Slurm executor gives the tables of a local run, a cancelled job is
//! retried, a driver killed with `kill -9` and started again submits nothing twice, and two
//! jobs racing for the same keys compute each of them once.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SWEEP: &str = "experiments/sweep-tiny.toml";
/// Tasks of the sweep: dataset+supernet; (prune, bench) for 2 configurations x 2 seeds; the
/// study per seed in 3 shards plus its merge.
const SWEEP_TASKS: u64 = 1 + 4 + 2 * (3 + 1);

/// The tests count the controller's submissions, so they take turns.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn slurm_ready() -> bool {
    if tenas_pipeline::slurm::available() {
        return true;
    }
    assert!(
        std::env::var_os("TENAS_REQUIRE_SLURM").is_none(),
        "TENAS_REQUIRE_SLURM is set but no Slurm cluster answers (tools/slurm-local.sh start)"
    );
    eprintln!("SKIPPED: no Slurm cluster answers; start one with `tools/slurm-local.sh start`");
    false
}

/// Array elements the controller has accepted since it started (`sdiag`).
fn submitted() -> u64 {
    let out = Command::new("sdiag").output().expect("sdiag runs");
    text(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Jobs submitted:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("sdiag counts submitted jobs")
}

/// `(job id, job name, state)` of this user's tenas jobs.
fn tenas_jobs() -> Vec<(String, String, String)> {
    let out = Command::new("squeue")
        .args(["--me", "-h", "-r", "-o", "%i|%j|%T"])
        .output()
        .expect("squeue runs");
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split('|').collect();
            (f.len() == 3 && f[1].starts_with("tenas-"))
                .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// A running job of the driver whose store is `store`.
fn running_job_of(store: &Path) -> Option<String> {
    tenas_jobs()
        .into_iter()
        .find(|(_, name, state)| {
            state == "RUNNING"
                && store
                    .join("slurm/jobs")
                    .join(&name["tenas-".len()..])
                    .is_dir()
        })
        .map(|(id, _, _)| id)
}

/// The state Slurm remembers for a job.
fn job_state(id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .expect("scontrol runs");
    text(&out.stdout)
        .split_whitespace()
        .find_map(|t| t.strip_prefix("JobState="))
        .unwrap_or("UNKNOWN")
        .to_string()
}

fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_no_jobs() {
    wait_for("the queue to drain", Duration::from_secs(300), || {
        tenas_jobs().is_empty().then_some(())
    });
}

/// The tables of two runs agree, wall-time columns aside.
fn assert_same_tables(a: &Path, b: &Path, experiment: &str) {
    for table in ["candidates", "rounds", "result", "cells", "correlation"] {
        let (x, y) = (
            without_wall_times(sorted_table(a, experiment, table)),
            without_wall_times(sorted_table(b, experiment, table)),
        );
        assert!(x.equals_missing(&y), "{table} differs:\n{x}\n{y}");
    }
}

/// A table of the latest run with its partition path as a column, in a stable row order.
fn sorted_table(store: &Path, experiment: &str, table: &str) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let dir = store
        .join("results")
        .join(experiment)
        .join("latest")
        .join(table);
    let mut files: Vec<_> = walkdir(dir.clone())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {table} table in {}", dir.display());
    let mut all: Option<DataFrame> = None;
    for file in files {
        let mut df = ParquetReader::new(std::fs::File::open(&file).unwrap())
            .finish()
            .unwrap();
        let partition = file.strip_prefix(&dir).unwrap().display().to_string();
        df.with_column(Column::new(
            "partition".into(),
            vec![partition; df.height()],
        ))
        .unwrap();
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut(&df).unwrap();
            }
        }
    }
    all.unwrap()
}

#[test]
fn sweeps_run_on_slurm_as_they_run_here() {
    if !slurm_ready() {
        return;
    }
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    wait_for_no_jobs();
    let local = tempfile::tempdir().unwrap();
    run_ok(tenas(local.path()).args(["run", SWEEP, "--executor", "local", "-q"]));

    // Through Slurm, with one running job cancelled: it is retried and the run completes.
    let remote = tempfile::tempdir().unwrap();
    let before = submitted();
    let driver = tenas(remote.path())
        .args(["run", SWEEP, "--executor", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A job may finish between squeue and scancel; then cancel the next one.
    let victim = wait_for("a cancelled tenas job", Duration::from_secs(120), || {
        let id = running_job_of(remote.path())?;
        let cancel = Command::new("scancel").arg(&id).status().unwrap();
        assert!(cancel.success());
        let state = wait_for("the cancel to land", Duration::from_secs(60), || {
            let state = job_state(&id);
            let live = ["RUNNING", "COMPLETING", "CONFIGURING", "PENDING"];
            (!live.contains(&state.as_str())).then_some(state)
        });
        (state == "CANCELLED").then_some(id)
    });
    let out = driver.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "driver failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("job {victim}")) && stderr.contains("ended CANCELLED"),
        "the cancelled job is reported with its id and state:\n{stderr}"
    );
    assert!(stderr.contains("resubmitting (retry 1 of 2)"), "{stderr}");
    assert_eq!(
        submitted() - before,
        SWEEP_TASKS + 1,
        "every task once, plus the retry"
    );
    assert_same_tables(local.path(), remote.path(), "sweep-tiny");
    let status = text(&run_ok(tenas(remote.path()).args(["status", SWEEP])).stdout);
    assert!(!status.contains("would run"), "{status}");

    // A driver killed with kill -9 and started again submits nothing twice.
    let resumed = tempfile::tempdir().unwrap();
    let before = submitted();
    let mut driver = tenas(resumed.path())
        .args(["run", SWEEP, "--executor", "slurm", "-q"])
        .spawn()
        .unwrap();
    wait_for("a running prune job", Duration::from_secs(120), || {
        (running_job_of(resumed.path()).is_some() && submitted() - before > 1).then_some(())
    });
    driver.kill().unwrap(); // SIGKILL
    driver.wait().unwrap();
    let status = text(&run_ok(tenas(resumed.path()).args(["status", SWEEP])).stdout);
    let live = tenas_jobs();
    if !live.is_empty() {
        assert!(
            status.contains("in Slurm job"),
            "status shows live jobs:\n{status}"
        );
    }
    run_ok(tenas(resumed.path()).args(["run", SWEEP, "--executor", "slurm", "-q"]));
    assert_eq!(submitted() - before, SWEEP_TASKS, "no task submitted twice");
    assert_same_tables(local.path(), resumed.path(), "sweep-tiny");
    wait_for_no_jobs();
}

#[test]
fn two_jobs_racing_for_the_same_keys_compute_each_once() {
    if !slurm_ready() {
        return;
    }
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let store = tempfile::tempdir().unwrap();
    let job = format!(
        "{} -q run {TINY} --executor local --jobs 1",
        env!("CARGO_BIN_EXE_tenas")
    );
    let submit = || {
        let out = Command::new("sbatch")
            .args([
                "--parsable",
                "-c",
                "1",
                "--job-name=tenas-race-test",
                "--output=/dev/null",
                "--wrap",
                &job,
            ])
            .current_dir(repo())
            .env("TENAS_STORE", store.path())
            .env("TENAS_DATA", data_root())
            .env("TENAS_NB201", data_root().join("nb201/nb201_accuracy.csv"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    submit();
    submit();
    let records = wait_for("both runs to finish", Duration::from_secs(600), || {
        let dir = store.path().join("runs/nb201-tiny");
        let records: Vec<serde_json::Value> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
            .collect();
        (records.len() == 2 && records.iter().all(|r| r["status"] != "interrupted"))
            .then_some(records)
    });
    assert!(
        records.iter().all(|r| r["status"] == "complete"),
        "{records:?}"
    );
    let computed: u64 = records
        .iter()
        .map(|r| r["units"]["computed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        computed as usize,
        unit_manifests(store.path()).len(),
        "each unit computed once"
    );
    for node in records[0]["nodes"].as_array().unwrap() {
        let key = &node["key"];
        let misses = records
            .iter()
            .flat_map(|r| r["nodes"].as_array().unwrap())
            .filter(|n| &n["key"] == key && n["outcome"] == "miss")
            .count();
        assert_eq!(misses, 1, "node {} computed once", node["label"]);
    }
}
