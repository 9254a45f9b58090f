//! Bad experiment files: located errors (file:line and key), and an untouched store.

mod common;

use common::error_of;

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
