//! End-to-end: the correlation study on a few cells, grown without rescoring.
mod common;

use common::*;

const STUDY: &str = "experiments/nb201-correlation-tiny.toml";

fn cell_units(store: &std::path::Path) -> Vec<(String, String)> {
    unit_manifests(store)
}

#[test]
fn a_study_reports_tau_and_grows_without_rescoring() {
    let store = tempfile::tempdir().expect("temp dir");
    let out = run_ok(tenas(store.path()).args(["run", STUDY]));
    let stdout = text(&out.stdout);
    for needle in [
        "-kappa",
        "regions",
        "-rank_sum",
        "cifar10",
        "imagenet16-120",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    let first = cell_units(store.path());
    assert_eq!(first.len(), 8, "one unit per cell");

    // Twelve cells: the first eight are the same sample, so only four are scored.
    let out = run_ok(tenas(store.path()).args(["run", STUDY, "--set", "correlation.cells=12"]));
    let grown = cell_units(store.path());
    assert_eq!(grown.len(), 12);
    assert!(
        first.iter().all(|u| grown.contains(u)),
        "earlier cells kept as they were"
    );
    assert!(
        text(&out.stderr).contains("4 computed") || text(&out.stdout).contains("4 computed"),
        "four new cells:\n{}",
        text(&out.stderr)
    );
    let latest = store.path().join("results/nb201-correlation-tiny/latest");
    let cells = std::fs::read_dir(latest.join("cells/seed=0"))
        .expect("cells table")
        .count();
    assert_eq!(cells, 1);
}
