//! Helpers for the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

#[path = "stages.rs"]
pub mod stages;

use std::path::{Path, PathBuf};

use tenas_pipeline::{Experiment, Plan, Registry, Result, RunRecord, Settings, Store, Verbosity};

pub const DEMO: &str = r#"
name = "demo"
seeds = [0, 1]

[source]
n = 5

[square]
units = 6

[sum]
"#;

pub fn settings() -> Settings {
    Settings {
        device: serde_json::json!({ "device": "cpu", "dtype": "f32" }),
        jobs: 2,
        verbosity: Verbosity::Quiet,
        tool_version: "test".into(),
    }
}

pub fn write_experiment(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("demo.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn compile(text: &str, overrides: &[&str], registry: &Registry) -> Result<Plan> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let exp = Experiment::parse(text, "demo.toml", "demo", &overrides)?;
    Plan::compile(&exp, registry, None, &settings())
}

pub fn run(store: &Path, text: &str, overrides: &[&str]) -> RunRecord {
    let plan = compile(text, overrides, &stages::registry(1)).unwrap();
    tenas_pipeline::run(&plan, &Store::open(store).unwrap(), &settings()).unwrap()
}

/// The node record for `name` (and `seed`).
pub fn node<'r>(
    record: &'r RunRecord,
    name: &str,
    seed: Option<u64>,
) -> &'r tenas_pipeline::NodeRecord {
    record
        .nodes
        .iter()
        .find(|n| n.id.name == name && n.id.seed == seed)
        .unwrap_or_else(|| panic!("no node {name} {seed:?}"))
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Overwrites a file of a complete (read-only) artifact, as a user forcing it would.
pub fn damage(path: &Path, contents: &str) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Loads `text` (after a `store` line pointing into a temp dir) as an experiment file and
/// compiles it; returns the error text without the file's path. The store must not be created.
pub fn error_of(text: &str, overrides: &[&str]) -> String {
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
