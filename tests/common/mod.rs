//! Helpers for the end-to-end tests: the `tenas` binary on the tiny NB201 experiment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared data root: `TENAS_DATA`, else `../shared/data` beside the checkout.
pub fn data_root() -> PathBuf {
    std::env::var_os("TENAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"))
}

pub fn tenas(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenas"));
    cmd.current_dir(repo())
        .env("TENAS_STORE", store)
        .env("TENAS_DATA", data_root())
        .env_remove("TENAS_NB201");
    cmd
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("tenas starts");
    assert!(
        out.status.success(),
        "tenas failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub const TINY: &str = "experiments/nb201-tiny.toml";

/// Every unit artifact's manifest in the store, by key.
pub fn unit_manifests(store: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = walkdir(store.join("units"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
        .map(|p| {
            (
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every file below `dir`.
pub fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A table of the latest run, all seeds, sorted for comparison.
pub fn latest_table(store: &Path, experiment: &str, table: &str) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let dir = store
        .join("results")
        .join(experiment)
        .join("latest")
        .join(table);
    let mut frames: Vec<DataFrame> = walkdir(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            ParquetReader::new(std::fs::File::open(p).unwrap())
                .finish()
                .unwrap()
        })
        .collect();
    assert!(!frames.is_empty(), "no {table} table in the latest run");
    let mut df = frames.remove(0);
    for f in frames {
        df.vstack_mut(&f).unwrap();
    }
    df
}
