//! Gathering tables and reports of a run into `results/<experiment>/<run-id>/`.

use std::fs;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::error::{IoContext, Result};
use crate::plan::{Node, Plan};
use crate::util::random_hex;

/// Links every node's `tables/<t>.parquet` into a hive-partitioned tree and copies its
/// `reports/`; returns the run's results dir. In a sweep every matrix axis is a partition
/// level (`<table>/optimizer=sgd/init=normal/seed=0/part-train.parquet`), and a node
/// shared by several configurations appears under each.
pub(crate) fn collect(
    plan: &Plan,
    results_root: &Path,
    run_id: &str,
    nodes: &[(&Node, PathBuf)],
) -> Result<PathBuf> {
    let run_dir = results_root.join(run_id);
    for (node, artifact) in nodes {
        for &config in &node.configs {
            let partition = plan.configurations[config].config.partition();
            collect_node(node, artifact, &run_dir, &partition)?;
        }
    }
    fs::create_dir_all(&run_dir).at(&run_dir)?;
    point_latest(results_root, run_id)?;
    Ok(run_dir)
}

/// Where a node's table lies in a run's results:
/// `<run>/<table>/<partition>/seed=<seed>/part-<stage>.parquet` (no `seed=` level for a
/// seedless node). The one place that spells the layout.
pub fn table_part_path(
    run_dir: &Path,
    table: &str,
    partition: &Path,
    seed: Option<u64>,
    stage: &str,
) -> PathBuf {
    let mut path = run_dir.join(table).join(partition);
    if let Some(seed) = seed {
        path.push(format!("seed={seed}"));
    }
    path.join(format!("part-{stage}.parquet"))
}

/// The folder of a node's reports in a run's results: `<partition>/<stage>[-seed<seed>]`.
fn reports_folder(partition: &Path, seed: Option<u64>, stage: &str) -> PathBuf {
    partition.join(match seed {
        Some(seed) => format!("{stage}-seed{seed}"),
        None => stage.to_string(),
    })
}

/// One node's tables and reports under one configuration's partition.
fn collect_node(node: &Node, artifact: &Path, run_dir: &Path, partition: &Path) -> Result<()> {
    let tables = artifact.join("tables");
    if tables.is_dir() {
        for entry in fs::read_dir(&tables).at(&tables)? {
            let path = entry.at(&tables)?.path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let table = path.file_stem().expect("has a name").to_string_lossy();
            let dest = table_part_path(run_dir, &table, partition, node.id.seed, &node.id.name);
            link_or_copy(&path, &dest)?;
        }
    }
    let reports = artifact.join("reports");
    if reports.is_dir() {
        let folder = reports_folder(partition, node.id.seed, &node.id.name);
        for entry in WalkDir::new(&reports).min_depth(1) {
            let entry = entry?;
            if entry.file_type().is_file() {
                let relative = entry.path().strip_prefix(&reports).expect("under reports");
                let dest = run_dir.join(&folder).join(relative);
                create_parent(&dest)?;
                fs::copy(entry.path(), &dest).at(&dest)?;
            }
        }
    }
    Ok(())
}

/// Hard links are free and safe (artifacts are never modified in place); copies
/// cover stores spanning filesystems.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    create_parent(to)?;
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).at(to)?;
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    let parent = path.parent().expect("has a parent");
    fs::create_dir_all(parent).at(parent)
}

/// Replaces `latest` atomically: a new symlink under a temporary name, renamed over.
pub(crate) fn point_latest(results_root: &Path, run_id: &str) -> Result<()> {
    let tmp = results_root.join(format!(".latest-{}", random_hex()));
    #[cfg(unix)]
    std::os::unix::fs::symlink(run_id, &tmp).at(&tmp)?;
    #[cfg(not(unix))]
    fs::write(&tmp, run_id).at(&tmp)?;
    let latest = results_root.join("latest");
    fs::rename(&tmp, &latest).at(&latest)
}
