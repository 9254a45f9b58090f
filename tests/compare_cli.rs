//! End-to-end: `tenas compare` over seeds, two configurations and a correlation study.
mod common;

use std::path::Path;

use common::*;
use polars::prelude::*;

/// The benchmark's best CIFAR-10 accuracy in `nb201_accuracy.csv` (cell 6111).
const BEST_CIFAR10: f64 = 94.3733;

#[test]
fn compare_summarises_seeds_configs_and_studies_with_plots() {
    let store = tempfile::tempdir().expect("temp dir");
    run_ok(tenas(store.path()).args(["run", TINY, "--seeds", "0..2", "-q"]));
    run_ok(tenas(store.path()).args([
        "run",
        TINY,
        "--seeds",
        "0..2",
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
        "CIFAR-10: best cell 94.37, paper 93.90 ± 0.47",
        "ImageNet16-120: best cell 47.31",
        "mean regret",
        "Paired effects vs #1 nb201-tiny (prune.ntk=summed)",
        "prune.ntk: summed → full; seeds 0,1",
        "Seeds agreeing on each edge",
        "Score noise",
        "round 0:",
        "Correlation study nb201-correlation-tiny",
    ] {
        assert!(stdout.contains(needle), "`{needle}` missing:\n{stdout}");
    }
    for table in [
        "configs",
        "seeds",
        "paired",
        "edges",
        "score_noise",
        "rank_stability",
    ] {
        assert!(
            out.join(format!("{table}.parquet")).is_file(),
            "{table} table"
        );
    }
    let files: Vec<String> = std::fs::read_dir(&out)
        .expect("output folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for stem in [
        "accuracy_cifar10",
        "accuracy_cifar100",
        "accuracy_imagenet16_120",
        "scatter_kappa_0",
        "scatter_regions_0",
    ] {
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

    check_tables(&out);

    let against_full = store.path().join("cmp-full");
    let done = run_ok(
        tenas(store.path())
            .args(["compare", TINY, "--baseline", "2", "--out"])
            .arg(&against_full),
    );
    let stdout = text(&done.stdout);
    assert!(
        stdout.contains("Paired effects vs #2 nb201-tiny (prune.ntk=full)")
            && stdout.contains("prune.ntk: full → summed"),
        "{stdout}"
    );
    let unknown = tenas(store.path())
        .args(["compare", TINY, "--baseline", "no-such-config"])
        .output()
        .expect("tenas starts");
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("names no configuration"),
        "{}",
        text(&unknown.stderr)
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

fn read(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().expect("a Parquet table")
}

fn f64s(frame: &DataFrame, name: &str) -> Vec<f64> {
    let column = frame
        .column(name)
        .unwrap_or_else(|_| panic!("column {name}"));
    column.f64().expect("f64").into_no_null_iter().collect()
}

fn strs(frame: &DataFrame, name: &str) -> Vec<String> {
    let column = frame
        .column(name)
        .unwrap_or_else(|_| panic!("column {name}"));
    let values = column.str().expect("str");
    values
        .iter()
        .map(|v| v.expect("no empty value").to_string())
        .collect()
}

fn u64s(frame: &DataFrame, name: &str) -> Vec<u64> {
    let column = frame
        .column(name)
        .unwrap_or_else(|_| panic!("column {name}"));
    column.u64().expect("u64").into_no_null_iter().collect()
}

/// The new columns exist, regret is the gap to the best cell, and the paired table's
/// differences are those of the same seeds in `seeds`.
fn check_tables(out: &Path) {
    let configs = read(&out.join("configs.parquet"));
    assert_eq!(configs.height(), 2);
    assert_eq!(u64s(&configs, "index"), [1, 2]);
    for dataset in ["cifar10", "cifar100", "imagenet16_120"] {
        let (lower, upper) = (
            f64s(&configs, &format!("{dataset}_ci_lower")),
            f64s(&configs, &format!("{dataset}_ci_upper")),
        );
        let mean = f64s(&configs, &format!("{dataset}_mean"));
        for i in 0..2 {
            assert!(
                lower[i] <= mean[i] && mean[i] <= upper[i],
                "{dataset} row {i}"
            );
        }
        assert!(f64s(&configs, &format!("{dataset}_rank_mean"))
            .iter()
            .all(|&r| r >= 1.0));
        assert!(f64s(&configs, &format!("{dataset}_regret_mean"))
            .iter()
            .all(|&r| r >= 0.0));
    }

    let seeds = read(&out.join("seeds.parquet"));
    assert_eq!(seeds.height(), 4, "two configurations × two seeds");
    let accuracy = f64s(&seeds, "cifar10_test");
    let regret = f64s(&seeds, "regret_cifar10");
    for (a, r) in accuracy.iter().zip(&regret) {
        assert!((a + r - BEST_CIFAR10).abs() < 1e-3, "{a} + {r}");
    }
    assert!(u64s(&seeds, "rank_imagenet16_120").iter().all(|&r| r >= 1));

    let paired = read(&out.join("paired.parquet"));
    assert_eq!(paired.height(), 3, "one pair × three datasets");
    let config_names = strs(&configs, "config");
    assert!(strs(&paired, "baseline_config")
        .iter()
        .all(|c| *c == config_names[0]));
    assert!(strs(&paired, "config")
        .iter()
        .all(|c| *c == config_names[1]));
    assert!(strs(&paired, "seed_list").iter().all(|s| s == "0,1"));
    assert_eq!(u64s(&paired, "seeds"), [2, 2, 2]);
    let datasets = strs(&paired, "dataset");
    let differences = f64s(&paired, "mean_difference");
    let seed_config = strs(&seeds, "config");
    let seed_of = u64s(&seeds, "seed");
    for (dataset, difference) in datasets.iter().zip(&differences) {
        let accuracy = f64s(&seeds, &format!("{dataset}_test"));
        let of = |config: &str, seed: u64| {
            (0..seeds.height())
                .find(|&i| seed_config[i] == config && seed_of[i] == seed)
                .map(|i| accuracy[i])
                .expect("a seed row")
        };
        let expected = [0, 1]
            .iter()
            .map(|&s| of(&config_names[1], s) - of(&config_names[0], s))
            .sum::<f64>()
            / 2.0;
        assert!((difference - expected).abs() < 1e-9, "{dataset}");
    }
    let counted: Vec<u64> = (0..3)
        .map(|i| {
            u64s(&paired, "improved")[i] + u64s(&paired, "tied")[i] + u64s(&paired, "worsened")[i]
        })
        .collect();
    assert_eq!(counted, [2, 2, 2]);
}

#[test]
fn compare_labels_a_sweeps_configurations_by_their_matrix_values() {
    let store = tempfile::tempdir().expect("temp dir");
    let tiny = std::fs::read_to_string(repo().join(TINY)).expect("tiny experiment");
    let sweep = tiny
        .replace("name = \"nb201-tiny\"", "name = \"tiny-sweep\"")
        .replace("repeat = 2\n", "")
        .replace("prune_number = 1\n", "")
        + "\n[matrix]\n\"prune.repeat\" = [1]\n\"prune.prune_number\" = [1, 2]\n";
    let file = store.path().join("tiny-sweep.toml");
    std::fs::write(&file, sweep).expect("sweep file");
    let file = file.to_str().expect("utf-8 path");
    let ran = run_ok(tenas(store.path()).args(["run", file]));
    let stdout = text(&ran.stdout);
    assert!(
        stdout.contains("configuration repeat=1,prune_number=1:")
            && stdout.contains("configuration repeat=1,prune_number=2:"),
        "{stdout}"
    );
    let compared = text(&run_ok(tenas(store.path()).args(["compare", file])).stdout);
    for label in [
        "tiny-sweep (repeat=1,prune_number=1)",
        "tiny-sweep (repeat=1,prune_number=2)",
        "prune.prune_number: 1 → 2",
    ] {
        assert!(compared.contains(label), "`{label}` missing:\n{compared}");
    }
}
