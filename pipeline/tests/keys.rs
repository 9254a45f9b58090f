//! Key stability (formatting and order never matter) and sensitivity (content always does).

mod common;

use common::{compile, settings, stages};
use proptest::prelude::*;
use tenas_pipeline::{Experiment, Plan, Registry};

fn keys(text: &str, overrides: &[&str], registry: &Registry) -> Vec<(String, String)> {
    compile(text, overrides, registry)
        .unwrap()
        .nodes
        .iter()
        .map(|n| (n.label(), n.id.key.clone()))
        .collect()
}

fn key_of(text: &str, overrides: &[&str], label: &str) -> String {
    keys(text, overrides, &stages::registry(1))
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap()
        .1
}

const BASE: &str = "seeds = [0, 1]\n[source]\nn = 4\noffset = 1\n[square]\nunits = 3\nround = 2\n[sum]\nscale = 2\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any order of stages and keys, any whitespace and comments: the same keys.
    #[test]
    fn formatting_and_order_do_not_change_keys(
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        swap in any::<bool>(),
        pad in "[ \t]{0,3}",
        comment in any::<bool>(),
    ) {
        let source = if swap { "offset = 1\nn = 4" } else { "n = 4\noffset = 1" };
        let tables = [
            format!("[source]\n{source}\n"),
            "[square]\nround = 2\nunits = 3\n".to_string(),
            format!("[sum]\nscale{pad}={pad}2{}\n", if comment { " # note" } else { "" }),
        ];
        let mut text = String::from("seeds = [0, 1]\n");
        for i in order {
            text.push_str(&tables[i]);
            text.push('\n');
        }
        let mut expected = keys(BASE, &[], &stages::registry(1));
        let mut actual = keys(&text, &[], &stages::registry(1));
        expected.sort();
        actual.sort();
        prop_assert_eq!(actual, expected);
    }

    /// Changing any param value changes that stage's key and every downstream key.
    #[test]
    fn any_param_change_changes_keys(offset in -1000i64..1000, units in 1usize..50, scale in -5i64..5) {
        let set = [format!("source.offset={offset}"), format!("square.units={units}"), format!("sum.scale={scale}")];
        let changed = [offset != 1, units != 3, scale != 2];
        let base = keys(BASE, &[], &stages::registry(1));
        for (i, arg) in set.iter().enumerate() {
            let new = keys(BASE, &[arg.as_str()], &stages::registry(1));
            for ((label, old_key), (_, new_key)) in base.iter().zip(&new) {
                let stage_index = ["source", "square", "sum"].iter().position(|s| label.starts_with(s)).unwrap();
                let affected = changed[i] && stage_index >= i;
                prop_assert_eq!(old_key != new_key, affected, "{} after {}", label, arg);
            }
        }
    }
}

#[test]
fn same_value_written_differently_is_the_same_key() {
    let hex = BASE.replace("n = 4", "n = 0x4");
    assert_eq!(
        keys(BASE, &[], &stages::registry(1)),
        keys(&hex, &[], &stages::registry(1))
    );
    // Defaults filled in: writing the default equals omitting it.
    let with_default = BASE.replace("units = 3", "units = 3\nsleep_ms = 0");
    assert_eq!(
        keys(BASE, &[], &stages::registry(1)),
        keys(&with_default, &[], &stages::registry(1))
    );
}

#[test]
fn seed_changes_only_seeded_keys() {
    let one = key_of(BASE, &[], "square[seed=1]");
    assert_ne!(key_of(BASE, &[], "square[seed=0]"), one);
    assert_ne!(
        key_of(BASE, &[], "sum[seed=0]"),
        key_of(BASE, &[], "sum[seed=1]")
    );
    // The seedless source is shared by both seeds.
    let labels: Vec<_> = keys(BASE, &[], &stages::registry(1))
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(labels.iter().filter(|l| l.starts_with("source")).count(), 1);
    // Seeds override: the same seed gives the same key.
    let exp = Experiment::parse(BASE, "x.toml", "x", &[]).unwrap();
    let plan = Plan::compile(&exp, &stages::registry(1), Some(vec![1]), &settings()).unwrap();
    assert_eq!(
        plan.nodes
            .iter()
            .find(|n| n.id.name == "square")
            .unwrap()
            .id
            .key,
        one
    );
}

#[test]
fn version_change_changes_the_stage_and_downstream() {
    let v1 = keys(BASE, &[], &stages::registry(1));
    let v2 = keys(BASE, &[], &stages::registry(2));
    for ((label, a), (_, b)) in v1.iter().zip(&v2) {
        assert_eq!(a != b, !label.starts_with("source"), "{label}");
    }
}

#[test]
fn input_key_change_propagates() {
    assert_ne!(
        key_of(BASE, &[], "sum[seed=0]"),
        key_of(BASE, &["source.n=5"], "sum[seed=0]")
    );
}

#[test]
fn settings_matter_only_for_device_stages() {
    let exp = Experiment::parse(BASE, "x.toml", "x", &[]).unwrap();
    let mut gpu = settings();
    gpu.device = serde_json::json!({ "device": "cuda", "dtype": "f32" });
    // Jobs, verbosity and tool version never enter keys.
    gpu.jobs = 7;
    gpu.tool_version = "other".into();
    let a = Plan::compile(&exp, &stages::registry(1), None, &settings()).unwrap();
    let b = Plan::compile(&exp, &stages::registry(1), None, &gpu).unwrap();
    for (x, y) in a.nodes.iter().zip(&b.nodes) {
        // square uses the device; sum depends on square; source does neither.
        assert_eq!(x.id.key != y.id.key, x.id.name != "source", "{}", x.label());
    }
    let mut same = settings();
    same.jobs = 9;
    let c = Plan::compile(&exp, &stages::registry(1), None, &same).unwrap();
    assert!(a
        .nodes
        .iter()
        .zip(&c.nodes)
        .all(|(x, y)| x.id.key == y.id.key));
}
