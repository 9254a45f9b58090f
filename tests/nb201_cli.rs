//! End-to-end: the tiny NB201 experiment through the `tenas` binary.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn search_finds_a_cell_reruns_nothing_and_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let out = run_ok(tenas(a.path()).args(["run", TINY]));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("|+|"),
        "the found cell is printed:\n{stdout}"
    );
    let result = latest_table(a.path(), "nb201-tiny", "result");
    assert_eq!(result.height(), 1);
    let arch = str_at(&result, "arch", 0);
    assert!(stdout.contains(&arch));
    // The cell the tiny search finds on the test data: a changed draw, score or decision shows.
    assert_eq!(
        arch,
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    );
    let supernet = a.path().join("results/nb201-tiny/latest/supernet");
    for file in ["supernet.json", "supernet.safetensors", "thin.safetensors"] {
        assert!(supernet.join(file).is_file(), "the results have {file}");
    }
    assert_matches_the_benchmark(&result, &arch);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("prune[seed=0]: found {arch}"))
            && stderr
                .lines()
                .any(|l| l.starts_with("supernet: ") && l.contains(", 10 classes,")),
        "{stderr}"
    );
    for doubled in ["supernet: supernet:", "prune[seed=0]: seed 0:"] {
        assert!(
            !stderr.contains(doubled),
            "a log line repeats the engine's prefix:\n{stderr}"
        );
    }
    let candidates = latest_table(a.path(), "nb201-tiny", "candidates");
    // 24 + 18 + 12 candidates, two repeats each.
    assert_eq!(candidates.height(), (24 + 18 + 12) * 2);

    // A second run computes nothing.
    let units_before = unit_manifests(a.path());
    let again = run_ok(tenas(a.path()).args(["run", TINY]));
    assert_eq!(
        units_before,
        unit_manifests(a.path()),
        "no unit was rewritten"
    );
    let status = text(&run_ok(tenas(a.path()).args(["status", TINY])).stdout);
    assert!(!status.contains("would run"), "{status}");
    let _ = again;

    // Same seed, same device, fresh store: identical tables.
    let b = tempfile::tempdir().unwrap();
    run_ok(tenas(b.path()).args(["run", TINY, "-q"]));
    for table in ["candidates", "rounds", "result"] {
        let (x, y) = (
            latest_table(a.path(), "nb201-tiny", table),
            latest_table(b.path(), "nb201-tiny", table),
        );
        // Wall times differ between runs; nothing else may.
        let (x, y) = (without_wall_times(x), without_wall_times(y));
        assert!(
            x.equals_missing(&y),
            "{table} differs between identical runs:\n{x}\n{y}"
        );
    }
    // `tenas parity` agrees, and catches a run that decided differently.
    let latest = |store: &std::path::Path| {
        store
            .join("results/nb201-tiny/latest")
            .to_string_lossy()
            .into_owned()
    };
    let parity = run_ok(tenas(a.path()).args(["parity", &latest(a.path()), &latest(b.path())]));
    assert!(
        text(&parity.stdout).contains("108/108"),
        "{}",
        text(&parity.stdout)
    );
    let c = tempfile::tempdir().unwrap();
    run_ok(tenas(c.path()).args(["run", TINY, "-q", "--set", "prune.batch=5"]));
    let differ = tenas(a.path())
        .args(["parity", &latest(a.path()), &latest(c.path())])
        .output()
        .unwrap();
    assert!(!differ.status.success(), "{}", text(&differ.stdout));
    assert!(text(&differ.stdout).contains("DIFFER"));
}

/// The found cell's row is its NAS-Bench-201 row: index and accuracies as the table has them,
/// and each rank one more than the number of cells with a higher accuracy.
fn assert_matches_the_benchmark(result: &polars::prelude::DataFrame, arch: &str) {
    let rows = nb201_rows();
    let row = rows
        .iter()
        .find(|r| r.arch == arch)
        .unwrap_or_else(|| panic!("{arch} is not in the table"));
    assert_eq!(u64_at(result, "nb201_index", 0), row.index);
    assert_eq!(u64_at(result, "cells_in_table", 0), rows.len() as u64);
    for (d, name) in ["cifar10", "cifar100", "imagenet16_120"].iter().enumerate() {
        let accuracy = f64_at(result, &format!("{name}_test"), 0);
        assert_eq!(accuracy, row.accuracy[d], "{name} accuracy of {arch}");
        let better = rows.iter().filter(|r| r.accuracy[d] > accuracy).count() as u64;
        assert_eq!(
            u64_at(result, &format!("rank_{name}"), 0),
            better + 1,
            "{name} rank of {arch}"
        );
    }
}

#[test]
fn a_param_change_reruns_only_the_search_and_explain_says_why() {
    let store = tempfile::tempdir().unwrap();
    run_ok(tenas(store.path()).args(["run", TINY, "-q"]));
    let explain = text(
        &run_ok(tenas(store.path()).args(["explain", TINY, "--set", "prune.repeat=1"])).stdout,
    );
    assert!(explain.contains("repeat"), "{explain}");
    assert!(
        !explain.contains("dataset"),
        "the dataset is unaffected:\n{explain}"
    );
}

#[test]
fn killed_run_resumes_without_redoing_finished_candidates() {
    let store = tempfile::tempdir().unwrap();
    let mut child = tenas(store.path())
        .args(["run", TINY, "-q", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait until some candidate units are stored, then kill -9 mid-run.
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if unit_manifests(store.path()).len() >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "no units appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed; make the tiny experiment bigger"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished = unit_manifests(store.path());
    run_ok(tenas(store.path()).args(["run", TINY, "-q"]));
    let after = unit_manifests(store.path());
    for unit in &finished {
        assert!(after.contains(unit), "unit {} was recomputed", unit.0);
    }
    assert!(after.len() > finished.len());

    let fresh = tempfile::tempdir().unwrap();
    run_ok(tenas(fresh.path()).args(["run", TINY, "-q"]));
    for table in ["candidates", "rounds"] {
        let (x, y) = (
            latest_table(store.path(), "nb201-tiny", table),
            latest_table(fresh.path(), "nb201-tiny", table),
        );
        assert!(
            x.equals_missing(&y),
            "{table} after resume differs from an uninterrupted run"
        );
    }
}

#[test]
fn bad_experiment_files_name_file_line_and_key_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cases = [
        (
            "syntax.toml",
            "name = \"x\"\n[prune\nbatch = 8\n",
            "syntax.toml:2",
        ),
        (
            "unknown-op.toml",
            "name = \"x\"\n[prune]\nntk = \"summed\"\nbatch = 8\nsampling = \"everything\"\n",
            "sampling",
        ),
        (
            "wrong-type.toml",
            "name = \"x\"\n[prune]\nbatch = \"many\"\n",
            "wrong-type.toml:3",
        ),
        (
            "out-of-range.toml",
            "name = \"x\"\n[prune]\nbatch = 0\n",
            "`batch` must be at least 2, got 0",
        ),
        (
            "unknown-key.toml",
            "name = \"x\"\n[supernet]\nchanels = 3\n",
            "chanels",
        ),
    ];
    for (file, body, expect) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, body).unwrap();
        let out = tenas(&store)
            .args(["run", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{file}: {err}");
        assert!(!store.exists(), "{file} created the store");
    }
    let usage = tenas(&store).args(["run"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn missing_data_offline_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = tenas(&dir.path().join("store"))
        .env("TENAS_DATA", dir.path())
        .args(["run", TINY, "--set", "dataset.download=false"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("TENAS_DATA") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "wrote something"
    );
}

#[test]
fn a_missing_benchmark_table_fails_the_lookup_but_keeps_the_search() {
    let store = tempfile::tempdir().unwrap();
    let missing = store.path().join("no-such-table.csv");
    let out = tenas(store.path())
        .env("TENAS_NB201", &missing)
        .args(["run", TINY, "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no-such-table.csv") && err.contains("kept"),
        "{err}"
    );
    // With the table back, only the lookup runs: the search is reused.
    let units = unit_manifests(store.path());
    run_ok(tenas(store.path()).args(["run", TINY, "-q"]));
    assert_eq!(units, unit_manifests(store.path()));
    let status = text(&run_ok(tenas(store.path()).args(["status", TINY])).stdout);
    assert!(!status.contains("would run"), "{status}");
}

#[test]
fn paths_in_an_experiment_file_resolve_against_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_root().join("nb201/nb201_accuracy.csv"),
        dir.path().join("bench.csv"),
    )
    .unwrap();
    let tiny = std::fs::read_to_string(repo().join(TINY)).unwrap();
    let mut experiment = String::from("store = \"store\"\n");
    for line in tiny.lines() {
        if line.starts_with("root") || line.starts_with("table") {
            continue;
        }
        experiment.push_str(line);
        experiment.push('\n');
        if line == "[bench]" {
            experiment.push_str("table = \"bench.csv\"\n");
        }
    }
    std::fs::write(dir.path().join("tiny.toml"), experiment).unwrap();
    // Started elsewhere, with no store or table from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_tenas"))
        .args(["-q", "run", "tiny.toml"])
        .current_dir(dir.path())
        .env_remove("TENAS_STORE")
        .env_remove("TENAS_NB201")
        .env("TENAS_DATA", data_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_tenas"))
        .args(["status", dir.path().join("tiny.toml").to_str().unwrap()])
        .current_dir("/")
        .env_remove("TENAS_STORE")
        .env_remove("TENAS_NB201")
        .env("TENAS_DATA", data_root())
        .output()
        .unwrap();
    let status = text(&elsewhere.stdout);
    assert!(elsewhere.status.success(), "{}", text(&elsewhere.stderr));
    assert!(
        !status.contains("would run"),
        "the same store and table from /:\n{status}"
    );
    assert!(dir.path().join("store/results/nb201-tiny/latest").exists());
}

#[test]
fn each_error_cause_is_said_once() {
    let out = tenas(Path::new("/proc/nostore"))
        .args(["run", TINY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error line");
    assert!(line.contains("/proc/nostore"), "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    // A failure inside a unit names its stage once, and no empty stage.
    let store = tempfile::tempdir().unwrap();
    let out = tenas(store.path())
        .args(["run", TINY, "--set", "prune.batch=300"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "error: stage `prune[seed=0]`: asked for 300 distinct images from a pool of 256"
        ),
        "{err}"
    );
    assert_eq!(err.matches("stage `").count(), 1, "{err}");
}
