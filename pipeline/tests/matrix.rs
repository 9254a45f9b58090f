//! Sweeps: `[matrix]` expands into configurations that share what their keys share, carry
//! labels into records and results, and refuse bad axes with located errors.

mod common;

use common::{compile, run, stages, write_experiment};
use tenas_pipeline::{Area, Experiment, Outcome, Store};

const SWEEP: &str = r#"
name = "sweep"
seeds = [0, 1]

[source]
n = 3

[square]

[sum]

[matrix]
"sum.scale" = [1, 2]
"square.units" = [2, 4]
"#;

#[test]
fn shared_stages_are_planned_once_and_labelled_by_the_values_they_depend_on() {
    let plan = compile(SWEEP, &[], &stages::registry(1)).unwrap();
    let labels: Vec<String> = plan
        .configurations
        .iter()
        .map(|c| c.config.label.clone())
        .collect();
    assert_eq!(
        labels,
        [
            "scale=1,units=2",
            "scale=1,units=4",
            "scale=2,units=2",
            "scale=2,units=4"
        ]
    );
    let count = |name: &str| plan.nodes.iter().filter(|n| n.id.name == name).count();
    // source: shared by all; square: per units and seed; sum: per config and seed.
    assert_eq!(count("source"), 1);
    assert_eq!(count("square"), 4);
    assert_eq!(count("sum"), 8);
    let node_labels: Vec<String> = plan.nodes.iter().map(|n| n.label()).collect();
    assert!(
        node_labels.contains(&"source".to_string()),
        "{node_labels:?}"
    );
    assert!(
        node_labels.contains(&"square[units=2,seed=1]".to_string()),
        "{node_labels:?}"
    );
    assert!(
        node_labels.contains(&"sum[scale=2,units=4,seed=0]".to_string()),
        "{node_labels:?}"
    );
    let square = plan
        .nodes
        .iter()
        .find(|n| n.label() == "square[units=4,seed=0]")
        .unwrap();
    assert_eq!(square.configs, [1, 3], "square serves both scales");
}

#[test]
fn a_sweep_runs_each_shared_node_once_and_partitions_results_by_axis() {
    let dir = tempfile::tempdir().unwrap();
    let record = run(dir.path(), SWEEP, &[]);
    assert_eq!(record.nodes.len(), 13);
    assert!(record.nodes.iter().all(|n| n.outcome == Outcome::Miss));
    assert_eq!(record.configurations.len(), 4);
    assert_eq!(record.configurations[3].config.label, "scale=2,units=4");
    let square = record
        .nodes
        .iter()
        .find(|n| n.label == "square[units=4,seed=1]")
        .unwrap();
    assert_eq!(square.configs, ["scale=1,units=4", "scale=2,units=4"]);

    let results = dir.path().join(record.results.as_ref().unwrap());
    let sum = |scale: i64, units: usize, seed: u64| -> i64 {
        let path = results.join(format!(
            "sum/scale={scale}/units={units}/seed={seed}/part-sum.parquet"
        ));
        assert!(path.is_file(), "{}", path.display());
        let label = format!("sum[scale={scale},units={units},seed={seed}]");
        let key = &record
            .nodes
            .iter()
            .find(|n| n.label == label)
            .unwrap()
            .id
            .key;
        let artifact = Store::open(dir.path())
            .unwrap()
            .artifact_dir(Area::Objects, key);
        common::read(&artifact.join("sum.txt"))
            .trim()
            .parse()
            .unwrap()
    };
    // numbers 0,1,2 (+ seed); squares of the first `units` numbers cycling; scaled.
    assert_eq!(sum(1, 2, 0), 1);
    assert_eq!(sum(2, 2, 0), 2);
    assert_eq!(sum(1, 4, 1), 1 + 4 + 9 + 1);
    assert_eq!(sum(2, 4, 1), 2 * (1 + 4 + 9 + 1));
    // The shared source's table appears under every configuration.
    for label in ["scale=1/units=2", "scale=2/units=4"] {
        assert!(results
            .join(format!("numbers/{label}/part-source.parquet"))
            .is_file());
    }
    // A rerun computes nothing.
    let again = run(dir.path(), SWEEP, &[]);
    assert!(again.nodes.iter().all(|n| n.outcome == Outcome::Hit));
}

#[test]
fn set_pins_an_axis_and_keeps_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let pinned = run(dir.path(), SWEEP, &["square.units=4"]);
    let labels: Vec<&str> = pinned
        .configurations
        .iter()
        .map(|c| c.config.label.as_str())
        .collect();
    assert_eq!(labels, ["scale=1,units=4", "scale=2,units=4"]);
    // The full sweep then reuses the pinned run's nodes.
    let full = run(dir.path(), SWEEP, &[]);
    let hits = full
        .nodes
        .iter()
        .filter(|n| n.outcome == Outcome::Hit)
        .count();
    assert_eq!(
        hits,
        1 + 2 + 4,
        "source, square[units=4] x2 seeds, sum[units=4] x4"
    );
}

#[test]
fn single_configuration_experiments_are_unchanged() {
    let plan = compile(common::DEMO, &[], &stages::registry(1)).unwrap();
    assert!(!plan.is_sweep());
    assert_eq!(plan.configurations.len(), 1);
    assert!(plan.nodes.iter().all(|n| n.axes.is_empty()));
}

/// The error of the three test stages followed by `text`.
fn error_of(text: &str, overrides: &[&str]) -> String {
    common::error_of(&format!("[source]\n[square]\n[sum]\n{text}"), overrides)
}

#[test]
fn bad_axes_are_located() {
    assert_eq!(
        error_of("[matrix]\n\"train.batch\" = [1, 2]\n", &[]),
        ":6: [matrix] train.batch: no stage named `train` (stages: source, square, sum)"
    );
    assert_eq!(
        error_of("[matrix]\n\"square.unit\" = [1, 2]\n", &[]),
        ":6: [matrix] square.unit: unknown param `unit`"
    );
    assert_eq!(
        error_of("[matrix]\n\"square.units\" = []\n", &[]),
        ":6: [matrix] square.units: empty list: give at least one value"
    );
    assert_eq!(
        error_of("[matrix]\n\"square.units\" = [2, 3, 2]\n", &[]),
        ":6: [matrix] square.units: duplicate value `2`"
    );
    let wrong = error_of("[matrix]\n\"square.units\" = [2, \"many\"]\n", &[]);
    assert!(
        wrong.starts_with(":6: [matrix] square.units: invalid type: string \"many\""),
        "{wrong}"
    );
    assert_eq!(
        error_of("[matrix]\nsquare = [1]\n", &[]),
        ":6: [matrix] square: expected a key of the form \"stage.param\""
    );
    assert_eq!(
        error_of("[matrix]\n\"square.units\" = 3\n", &[]),
        ":6: [matrix] square.units: expected a list of values, found integer"
    );
    assert_eq!(
        error_of("[matrix]\n\"sum.kind\" = [\"square\"]\n", &[]),
        ":6: [matrix] sum.kind: `kind` cannot vary; a matrix varies params"
    );
}

#[test]
fn dotted_keys_work_like_quoted_ones() {
    let plan = compile(
        "[source]\n[square]\n[sum]\n[matrix]\nsquare.units = [1, 2]\nsum.scale = [3]\n",
        &[],
        &stages::registry(1),
    )
    .unwrap();
    let labels: Vec<&str> = plan
        .configurations
        .iter()
        .map(|c| c.config.label.as_str())
        .collect();
    assert_eq!(labels, ["units=1,scale=3", "units=2,scale=3"]);
}

#[test]
fn a_pinned_value_of_the_wrong_type_names_the_override() {
    let e = error_of(
        "[matrix]\n\"square.units\" = [2, 3]\n",
        &["square.units=abc"],
    );
    assert!(e.starts_with("--set square.units=abc: invalid type"), "{e}");
}

#[test]
fn a_param_set_in_its_stage_and_in_the_matrix_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_experiment(
        dir.path(),
        "[source]\n[square]\nunits = 3\n[sum]\n[matrix]\n\"square.units\" = [2]\n",
    );
    let e = Experiment::load(&path, &[]).unwrap_err().to_string();
    assert!(
        e.ends_with(":6: [matrix] square.units: `units` is also set in [square] (line 3); give its values in one place"),
        "{e}"
    );
}
