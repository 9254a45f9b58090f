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

/// The NAS-Bench-201 accuracy table: `TENAS_NB201`, else the one under the data root.
pub fn nb201_table() -> PathBuf {
    std::env::var_os("TENAS_NB201")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_root().join("nb201/nb201_accuracy.csv"))
}

pub fn tenas(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenas"));
    cmd.current_dir(repo())
        .env("TENAS_STORE", store)
        .env("TENAS_DATA", data_root())
        .env_remove("TENAS_NB201");
    cmd
}

/// One row of the NAS-Bench-201 table, read here without the crate's reader.
pub struct Nb201Row {
    pub index: u64,
    pub arch: String,
    /// CIFAR-10, CIFAR-100, ImageNet16-120 test accuracy (%).
    pub accuracy: [f64; 3],
}

/// Every row of the CSV table (`arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test`).
pub fn nb201_rows() -> Vec<Nb201Row> {
    let path = nb201_table();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test")
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| -> f64 { f[i].parse().unwrap_or_else(|_| panic!("{line}")) };
            Nb201Row {
                index: f[0].parse().unwrap(),
                arch: f[1].to_string(),
                accuracy: [num(2), num(3), num(4)],
            }
        })
        .collect()
}

/// Row `row` of the f64 column `name`.
pub fn f64_at(df: &polars::prelude::DataFrame, name: &str, row: usize) -> f64 {
    df.column(name).unwrap().f64().unwrap().get(row).unwrap()
}

/// Row `row` of the u64 column `name`.
pub fn u64_at(df: &polars::prelude::DataFrame, name: &str, row: usize) -> u64 {
    df.column(name).unwrap().u64().unwrap().get(row).unwrap()
}

/// Row `row` of the string column `name`.
pub fn str_at(df: &polars::prelude::DataFrame, name: &str, row: usize) -> String {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .get(row)
        .unwrap()
        .to_string()
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

/// A table without its wall-time columns (`*_seconds`): what must agree between two runs.
pub fn without_wall_times(df: polars::prelude::DataFrame) -> polars::prelude::DataFrame {
    let timed: Vec<String> = df
        .get_column_names()
        .iter()
        .filter(|c| c.ends_with("_seconds"))
        .map(|c| c.to_string())
        .collect();
    df.drop_many(timed)
}
