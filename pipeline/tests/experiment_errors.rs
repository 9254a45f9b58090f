//! Bad experiment files: located errors (file:line and key), and an untouched store.

mod common;

use common::{settings, stages, write_experiment};
use tenas_pipeline::{Experiment, Plan};

/// Loads and compiles; returns the error text. The store must not be created.
fn error_of(text: &str, overrides: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_experiment(
        dir.path(),
        &format!("store = \"{}/store\"\n{text}", dir.path().display()),
    );
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let result = Experiment::load(&path, &overrides)
        .and_then(|exp| Plan::compile(&exp, &stages::registry(1), None, &settings()));
    assert!(!dir.path().join("store").exists(), "store was touched");
    let message = result.err().expect("should fail").to_string();
    let file = path.display().to_string();
    message
        .strip_prefix(&file)
        .map(str::to_string)
        .unwrap_or(message)
}

#[test]
fn syntax_error() {
    let e = error_of("[source]\nn = = 3\n", &[]);
    assert!(e.starts_with(":3: TOML syntax: "), "{e}");
}

#[test]
fn unknown_top_level_key() {
    let e = error_of("name = \"x\"\nsedes = [1]\n", &[]);
    assert!(e.starts_with(":3: sedes: unknown top-level key"), "{e}");
}

#[test]
fn unknown_param() {
    let e = error_of("[source]\nn = 3\nofset = 2\n", &[]);
    assert_eq!(e, ":4: [source] ofset: unknown param `ofset`");
}

#[test]
fn wrong_param_type() {
    let e = error_of("[source]\n\nn = \"a\"\n", &[]);
    assert!(
        e.starts_with(":4: [source] n: invalid type: string \"a\", expected u64"),
        "{e}"
    );
}

#[test]
fn wrong_type_from_override_names_the_override() {
    let e = error_of("[source]\n", &["source.n=abc"]);
    assert!(
        e.starts_with("--set source.n=abc: invalid type: string \"abc\""),
        "{e}"
    );
}

#[test]
fn unknown_stage_kind() {
    let e = error_of("[source]\n\n[squash]\nunits = 3\n", &[]);
    assert_eq!(
        e,
        ":4: [squash]: unknown stage kind `squash` (known: source, square, sum)"
    );
    let e = error_of("[a]\nkind = \"nope\"\n", &[]);
    assert!(
        e.starts_with(":3: [a] kind: unknown stage kind `nope`"),
        "{e}"
    );
}

#[test]
fn input_naming_no_stage() {
    let e = error_of("[sum]\ninputs = [\"squares\"]\n", &[]);
    assert_eq!(e, ":3: [sum] inputs: input `squares` names no stage");
    // The default input (kind `square`) is missing too.
    let e = error_of("[sum]\n", &[]);
    assert_eq!(e, ":2: [sum] inputs: input `square` names no stage");
}

#[test]
fn cycle_via_inputs() {
    let e = error_of(
        "[source]\n[a]\nkind = \"square\"\ninputs = [\"b\"]\n[b]\nkind = \"square\"\ninputs = [\"a\"]\n",
        &[],
    );
    assert!(e.starts_with(":5: [a] inputs: cycle: a -> b -> a"), "{e}");
}
