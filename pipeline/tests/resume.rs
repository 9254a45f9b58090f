//! A real process killed mid-run resumes without redoing finished units, and ends with
//! the same results as an uninterrupted run. The process is this test binary itself, started
//! again with `TESTBED_EXPERIMENT` set so that only `testbed` runs, in the foreground.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read, stages::UNIT_LOG_ENV};
use tenas_pipeline::{run, Experiment, Plan, Settings, Store, Verbosity};

/// The experiment the testbed process runs, in its working directory, with two unit workers.
const TESTBED_ENV: &str = "TESTBED_EXPERIMENT";
/// Where the testbed process writes the id of the run it finished.
const RUN_ID_FILE: &str = "run-id.txt";

const EXPERIMENT: &str = r#"
name = "resume"
seeds = [0]
store = "store"

[source]
n = 7

[square]
units = 40
round = 10
sleep_ms = 50

[sum]
"#;

/// Not a test of its own: the body of the process that the tests start and kill.
#[test]
fn testbed() {
    let Some(experiment) = std::env::var_os(TESTBED_ENV) else {
        return;
    };
    let run_id = || -> tenas_pipeline::Result<String> {
        let exp = Experiment::load(&PathBuf::from(experiment), &[])?;
        let settings = Settings {
            device: serde_json::json!({ "device": "cpu" }),
            jobs: 2,
            verbosity: Verbosity::Quiet,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let plan = Plan::compile(&exp, &common::stages::registry(1), None, &settings)?;
        Ok(run(&plan, &Store::open(&exp.store)?, &settings)?.run_id)
    };
    match run_id() {
        Ok(id) => std::fs::write(RUN_ID_FILE, id).unwrap(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn testbed_process(dir: &Path) -> Command {
    std::fs::write(dir.join("exp.toml"), EXPERIMENT).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "testbed", "--nocapture", "--test-threads", "1"])
        .current_dir(dir)
        .env(TESTBED_ENV, "exp.toml")
        .env(UNIT_LOG_ENV, dir.join("units.log"));
    command
}

fn run_to_end(dir: &Path) -> std::process::Output {
    let output = testbed_process(dir).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn logged_units(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("units.log")).map_or(0, |s| s.lines().count())
}

/// Units are renamed into place whole, so an existing dir is a finished unit.
fn stored_units(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir.join("store/units"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().path().join("manifest.json").is_file())
        .count()
}

fn results(dir: &Path, table: &str, stage: &str) -> String {
    let run_dir = dir.join("store/results/resume/latest");
    read(&tenas_pipeline::table_part_path(
        &run_dir,
        table,
        Path::new(""),
        Some(0),
        stage,
    ))
}

#[test]
fn killed_run_resumes_without_recomputing_finished_units() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = testbed_process(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_units(dir.path()) < 8 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "testbed made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let store = tenas_pipeline::Store::open(dir.path().join("store")).unwrap();
    let state = |store: &tenas_pipeline::Store| {
        let listing = store.ls().unwrap();
        let run = &listing.experiments[0].1[0];
        (run.status, run.running, listing.to_string())
    };
    let (status, running, text) = state(&store);
    assert_eq!(
        (status, running),
        (tenas_pipeline::RunStatus::Interrupted, true)
    );
    assert!(text.contains(" running "), "{text}");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let (status, running, text) = state(&store);
    assert_eq!(
        (status, running),
        (tenas_pipeline::RunStatus::Interrupted, false)
    );
    assert!(text.contains(" interrupted "), "{text}");

    let finished = stored_units(dir.path());
    assert!((1..40).contains(&finished), "{finished} units stored");
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("store/runs/resume"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(read(&runs[0]).contains("\"status\": \"interrupted\""));

    // A gc between the kill and the rerun keeps what the rerun resumes from.
    tenas_pipeline::Store::open(dir.path().join("store"))
        .unwrap()
        .gc(false)
        .unwrap();
    assert_eq!(stored_units(dir.path()), finished);

    let logged_before = logged_units(dir.path());
    run_to_end(dir.path());
    assert_eq!(
        logged_units(dir.path()) - logged_before,
        40 - finished,
        "only unfinished units are computed again"
    );
    assert_eq!(stored_units(dir.path()), 40);

    let fresh = tempfile::tempdir().unwrap();
    run_to_end(fresh.path());
    assert_eq!(logged_units(fresh.path()), 40);
    for (table, stage) in [("squares", "square"), ("sum", "sum")] {
        assert_eq!(
            results(dir.path(), table, stage),
            results(fresh.path(), table, stage)
        );
    }
}

#[test]
fn invalid_artifacts_are_reported_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    run_to_end(dir.path());
    let run_id = read(&dir.path().join(RUN_ID_FILE));
    let record = read(&dir.path().join(format!("store/runs/resume/{run_id}.json")));
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let sum = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "sum")
        .unwrap();
    let key = sum["key"].as_str().unwrap();
    let artifact = dir
        .path()
        .join(format!("store/objects/{}/{key}", &key[..2]));
    common::damage(&artifact.join("sum.txt"), "999\n");

    let second = run_to_end(dir.path());
    let stderr = String::from_utf8(second.stderr).unwrap();
    assert!(
        stderr.contains(&format!("warning: artifact {}", artifact.display()))
            && stderr.contains("(sum.txt: sha256 mismatch); recomputing"),
        "{stderr}"
    );
    assert_ne!(read(&artifact.join("sum.txt")), "999\n");
}
