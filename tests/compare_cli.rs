//! End-to-end: `tenas compare` over seeds, two configurations and a correlation study.
mod common;

use common::*;

#[test]
fn compare_summarises_seeds_configs_and_studies_with_plots() {
    let store = tempfile::tempdir().expect("temp dir");
    run_ok(tenas(store.path()).args(["run", TINY, "--seeds", "0..2", "-q"]));
    run_ok(tenas(store.path()).args([
        "run",
        TINY,
        "--seeds",
        "0",
        "--set",
        "prune.ntk=\"full\"",
        "-q",
    ]));
    run_ok(tenas(store.path()).args(["run", "experiments/nb201-correlation-tiny.toml", "-q"]));
    let out = store.path().join("cmp");
    let done = run_ok(
        tenas(store.path())
            .args([
                "compare",
                TINY,
                "experiments/nb201-correlation-tiny.toml",
                "--plot",
                "--out",
            ])
            .arg(&out),
    );
    let stdout = text(&done.stdout);
    for needle in [
        "Found cells per configuration",
        "prune.ntk=full",
        "Seeds agreeing on each edge",
        "Score noise",
        "round 0:",
        "Correlation study nb201-correlation-tiny",
    ] {
        assert!(stdout.contains(needle), "`{needle}` missing:\n{stdout}");
    }
    for table in ["configs", "seeds", "edges", "score_noise", "rank_stability"] {
        assert!(
            out.join(format!("{table}.parquet")).is_file(),
            "{table} table"
        );
    }
    let files: Vec<String> = std::fs::read_dir(&out)
        .expect("output folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for stem in ["accuracy", "scatter_kappa_0", "scatter_regions_0"] {
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).expect("svg");
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{stem}.svg has text"
        );
        let png = std::fs::read(out.join(format!("{stem}.png"))).expect("png");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{stem}.png"
        );
    }
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("kappa_spread_") && f.ends_with(".png"))
            .count(),
        2,
        "one κ-spread plot per search configuration: {files:?}"
    );

    let missing = tenas(store.path())
        .args(["compare", "no-such-run-id"])
        .output()
        .expect("tenas starts");
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no-such-run-id"),
        "{}",
        text(&missing.stderr)
    );
}
