//! End-to-end: the correlation study on a few cells, grown without rescoring.
mod common;

use std::collections::BTreeMap;

use common::*;
use tenas_core::stats;

const STUDY: &str = "experiments/nb201-correlation-tiny.toml";

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
    let first = unit_manifests(store.path());
    assert_eq!(first.len(), 8, "one unit per cell");

    // Twelve cells: the first eight are the same sample, so only four are scored.
    let out = run_ok(tenas(store.path()).args(["run", STUDY, "--set", "correlation.cells=12"]));
    let grown = unit_manifests(store.path());
    assert_eq!(grown.len(), 12);
    assert!(
        first.iter().all(|u| grown.contains(u)),
        "earlier cells kept as they were"
    );
    let stderr = text(&out.stderr);
    let units = stderr
        .lines()
        .find(|l| l.starts_with("correlation[seed=0]: done in "))
        .and_then(|l| l.split_once(" (units: "))
        .map(|(_, units)| units);
    assert_eq!(
        units,
        Some("4 computed, 8 cached)"),
        "four new cells:\n{stderr}"
    );
    let latest = store.path().join("results/nb201-correlation-tiny/latest");
    let cells = std::fs::read_dir(latest.join("cells/seed=0"))
        .expect("cells table")
        .count();
    assert_eq!(cells, 1);
    assert_correlations_follow_from_the_cells(store.path(), 12);
}

/// One cell's rows of the `cells` table: κ and regions per repeat, and its accuracies.
struct CellRows {
    kappa: Vec<f64>,
    regions: Vec<f64>,
    accuracies: [f64; 3],
}

/// Every τ and ρ of the `correlation` table lies in [−1, 1] and is what `stats` computes from
/// the `cells` table: per-cell means over the repeats of −κ, regions and −(κ rank + regions
/// rank), against each dataset's accuracy.
fn assert_correlations_follow_from_the_cells(store: &std::path::Path, n: usize) {
    let experiment = "nb201-correlation-tiny";
    let cells = latest_table(store, experiment, "cells");
    let mut order: Vec<String> = Vec::new();
    let mut by_arch: BTreeMap<String, CellRows> = BTreeMap::new();
    for i in 0..cells.height() {
        let arch = str_at(&cells, "arch", i);
        let accuracies =
            ["cifar10_test", "cifar100_test", "imagenet16_120_test"].map(|c| f64_at(&cells, c, i));
        let entry = by_arch.entry(arch.clone()).or_insert_with(|| {
            order.push(arch);
            CellRows {
                kappa: Vec::new(),
                regions: Vec::new(),
                accuracies,
            }
        });
        entry.kappa.push(f64_at(&cells, "kappa", i));
        entry.regions.push(u64_at(&cells, "regions", i) as f64);
    }
    assert_eq!(order.len(), n);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let kappa: Vec<f64> = order.iter().map(|a| mean(&by_arch[a].kappa)).collect();
    let regions: Vec<f64> = order.iter().map(|a| mean(&by_arch[a].regions)).collect();
    let kappa_rank = stats::average_ranks(&kappa);
    let regions_rank = stats::average_ranks(&regions.iter().map(|r| -r).collect::<Vec<_>>());
    let predictors = [
        ("-kappa", kappa.iter().map(|k| -k).collect::<Vec<_>>()),
        ("regions", regions.clone()),
        (
            "-rank_sum",
            kappa_rank
                .iter()
                .zip(&regions_rank)
                .map(|(a, b)| -(a + b))
                .collect(),
        ),
    ];
    let datasets = ["cifar10", "cifar100", "imagenet16-120"];

    let table = latest_table(store, experiment, "correlation");
    assert_eq!(table.height(), 9);
    for i in 0..table.height() {
        let (predictor, dataset) = (str_at(&table, "predictor", i), str_at(&table, "dataset", i));
        let x = &predictors
            .iter()
            .find(|(name, _)| *name == predictor)
            .expect("a known predictor")
            .1;
        let d = datasets
            .iter()
            .position(|name| *name == dataset)
            .expect("a known dataset");
        let y: Vec<f64> = order.iter().map(|a| by_arch[a].accuracies[d]).collect();
        assert_eq!(u64_at(&table, "cells", i), n as u64);
        for (column, statistic) in [
            (
                "kendall_tau",
                stats::kendall_tau_b as fn(&[f64], &[f64]) -> _,
            ),
            ("spearman_rho", stats::spearman_rho),
        ] {
            let expected = statistic(x, &y).expect("defined on these cells");
            for bound in ["", "_lower", "_upper"] {
                let v = f64_at(&table, &format!("{column}{bound}"), i);
                assert!(
                    v.is_finite() && (-1.0..=1.0).contains(&v),
                    "{column}{bound} of {predictor} on {dataset}: {v}"
                );
            }
            assert_eq!(
                f64_at(&table, column, i),
                expected,
                "{column} of {predictor} on {dataset}"
            );
        }
    }
}

/// The study scores NAS-Bench-201 cells; on a DARTS supernet it stops with a clear error
/// rather than scoring NB201 cells under the wrong space.
#[test]
fn a_study_on_the_darts_space_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("darts-study.toml");
    std::fs::write(
        &file,
        "name = \"darts-study\"\nseeds = [0]\ndevice = \"cpu\"\n\
         [dataset]\nname = \"cifar10\"\nlimit = 64\n\
         [supernet]\nspace = \"darts\"\nchannels = 1\n\
         [correlation]\ncells = 2\nbatch = 2\nrepeat = 1\nlr_samples = 8\nlr_batches = 1\nresamples = 10\n",
    )
    .expect("write the experiment");
    let out = tenas(&dir.path().join("store"))
        .args(["run", file.to_str().expect("UTF-8 path"), "-q"])
        .output()
        .expect("tenas starts");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("NAS-Bench-201") && err.contains("space = \"nb201\""),
        "{err}"
    );
}

const PROXY_STUDY: &str = "experiments/nb201-proxies-tiny.toml";

/// Every cell proxy's components: the columns the proxy study adds to the `cells` table.
const COMPONENTS: [&str; 15] = [
    "expressivity",
    "progressivity",
    "trainability",
    "complexity",
    "zico",
    "naswot",
    "synflow",
    "snip",
    "grasp",
    "grad_norm",
    "zen",
    "jacov",
    "fisher",
    "params",
    "flops",
];

/// A study with every proxy: one column per component in `cells` (on each cell's repeat-0
/// row), τ for every component and combination that follows from those columns, and a rerun
/// that drops the declared combination without scoring anything again.
#[test]
fn a_study_of_every_proxy_reports_each_component_and_combination() {
    let store = tempfile::tempdir().expect("temp dir");
    run_ok(tenas(store.path()).args(["run", PROXY_STUDY]));
    let experiment = "nb201-proxies-tiny";
    let cells = latest_table(store.path(), experiment, "cells");
    assert_eq!(cells.height(), 12, "six cells, two TE-NAS repeats each");
    let first_rows: Vec<usize> = (0..cells.height())
        .filter(|&i| u64_at(&cells, "repeat", i) == 0)
        .collect();
    let column = |name: &str| -> Vec<f64> {
        let c = cells.column(name).expect(name).f64().expect("f64");
        for i in 0..cells.height() {
            let first = u64_at(&cells, "repeat", i) == 0;
            assert_eq!(
                c.get(i).is_some(),
                first,
                "{name} row {i}: set on repeat 0 only"
            );
        }
        first_rows.iter().map(|&i| c.get(i).unwrap()).collect()
    };
    let mut predictors: Vec<(String, Vec<f64>)> = COMPONENTS
        .iter()
        .map(|c| (c.to_string(), column(c)))
        .collect();
    for (_, values) in &predictors {
        assert!(
            values.iter().all(|v| !v.is_nan()),
            "no NaN enters a ranking"
        );
    }
    let n = first_rows.len() as f64;
    let ranks = |name: &str| {
        let values = &predictors.iter().find(|(p, _)| p == name).expect(name).1;
        stats::average_ranks(values)
    };
    let az_nas: Vec<f64> = (0..first_rows.len())
        .map(|i| {
            [
                "expressivity",
                "progressivity",
                "trainability",
                "complexity",
            ]
            .iter()
            .map(|c| (ranks(c)[i] / n).ln())
            .sum()
        })
        .collect();
    // −κ's rank is the rank of −(mean κ over the cell's repeats).
    let kappa: Vec<f64> = first_rows
        .iter()
        .map(|&i| -(f64_at(&cells, "kappa", i) + f64_at(&cells, "kappa", i + 1)) / 2.0)
        .collect();
    let kappa_rank = stats::average_ranks(&kappa);
    let mine: Vec<f64> = (0..first_rows.len())
        .map(|i| kappa_rank[i] + ranks("zico")[i] + ranks("params")[i])
        .collect();
    // The combinations' columns hold what their rules give.
    assert_eq!(column("az_nas"), az_nas);
    assert_eq!(column("kappa_zico_params"), mine);
    predictors.push(("az_nas".into(), az_nas));
    predictors.push(("kappa_zico_params".into(), mine));

    let table = latest_table(store.path(), experiment, "correlation");
    assert_eq!(
        table.height(),
        3 * (3 + 15 + 2),
        "20 predictors × 3 datasets"
    );
    let accuracy: Vec<f64> = first_rows
        .iter()
        .map(|&i| f64_at(&cells, "cifar10_test", i))
        .collect();
    for (name, x) in &predictors {
        let row = (0..table.height())
            .find(|&i| {
                str_at(&table, "predictor", i) == *name && str_at(&table, "dataset", i) == "cifar10"
            })
            .unwrap_or_else(|| panic!("no cifar10 row for {name}"));
        let expected = stats::kendall_tau_b(x, &accuracy).expect("defined");
        assert_eq!(f64_at(&table, "kendall_tau", row), expected, "τ of {name}");
    }

    // The comparison sets each τ beside the published one and plots them.
    let out_dir = store.path().join("compare");
    let out = run_ok(tenas(store.path()).args([
        "compare",
        PROXY_STUDY,
        "--plot",
        "--out",
        out_dir.to_str().expect("UTF-8 path"),
    ]));
    let report = text(&out.stdout);
    for needle in ["zico ", "(0.589)", "VKDNW_agg", "kappa_zico_params"] {
        assert!(report.contains(needle), "{needle} missing:\n{report}");
    }
    for plot in ["tau_0.png", "scatter_best_0.svg", "scatter_kappa_0.png"] {
        assert!(out_dir.join(plot).is_file(), "{plot} not drawn");
    }

    // Without the declared combination: a new correlation node, no unit scored again.
    let out =
        run_ok(tenas(store.path()).args(["run", PROXY_STUDY, "--set", "correlation.combine=[]"]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("correlation[seed=0]: done in ")
            && stderr.contains("(units: 0 computed, 12 cached)"),
        "{stderr}"
    );
    let table = latest_table(store.path(), experiment, "correlation");
    assert_eq!(table.height(), 3 * 19);

    // Sample and pick by AZ-NAS's combination: the found cell is its best of the six, from
    // the cached cells.
    let out = run_ok(tenas(store.path()).args([
        "run",
        PROXY_STUDY,
        "--set",
        "correlation.pick=\"az_nas\"",
    ]));
    assert!(text(&out.stderr).contains("(units: 0 computed, 12 cached)"));
    let az_nas = &predictors
        .iter()
        .find(|(p, _)| p == "az_nas")
        .expect("az_nas")
        .1;
    let best = (0..az_nas.len()).fold(0, |b, i| if az_nas[i] > az_nas[b] { i } else { b });
    let result = latest_table(store.path(), experiment, "result");
    assert_eq!(result.height(), 1);
    assert_eq!(
        str_at(&result, "arch", 0),
        str_at(&cells, "arch", first_rows[best])
    );
    assert_eq!(u64_at(&result, "candidates_scored", 0), 6);
    assert!(text(&out.stdout).contains(&str_at(&cells, "arch", first_rows[best])));
}

/// The cell proxies on NAS-Bench-201's own network (C=16, N=5): `params` is that network's
/// size; TE-NAS's pair, which runs on the supernet's networks, is refused there unless the
/// supernet has that size.
#[test]
fn a_study_on_the_benchmark_network_scores_its_size() {
    use tenas_core::space::nb201_arch::Arch;
    use tenas_core::space::nb201_benchmark::BenchmarkNet;
    let store = tempfile::tempdir().expect("temp dir");
    let benchmark = [
        "--set",
        "correlation.network=\"benchmark\"",
        "--set",
        "correlation.cells=2",
        "--set",
        "correlation.proxy_batch=4",
        "--set",
        "correlation.combine=[]",
    ];
    let out = tenas(store.path())
        .args(["run", PROXY_STUDY, "-q"])
        .args(benchmark)
        .output()
        .expect("tenas starts");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("C=3, N=1") && err.contains("channels = 16") && err.contains("layers = 5"),
        "{err}"
    );

    run_ok(
        tenas(store.path())
            .args(["run", PROXY_STUDY])
            .args(benchmark)
            .args([
                "--set",
                "correlation.proxies=[\"naswot\", \"synflow\", \"params\", \"flops\"]",
            ]),
    );
    let cells = latest_table(store.path(), "nb201-proxies-tiny", "cells");
    assert_eq!(cells.height(), 2);
    for i in 0..2 {
        let arch = Arch::parse(&str_at(&cells, "arch", i)).expect("an arch");
        let size = BenchmarkNet::default().size(&arch);
        assert_eq!(f64_at(&cells, "params", i), size.params as f64 / 1e6);
        for proxy in ["naswot", "synflow"] {
            assert!(!f64_at(&cells, proxy, i).is_nan(), "{proxy}");
        }
    }
}
