//! Store housekeeping: listing runs and removing what no run record references.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use walkdir::WalkDir;

use crate::error::{IoContext, Result};
use crate::manifest::Manifest;
use crate::record::{RunRecord, RunStatus};
use crate::store::{Area, Store};

/// Staging dirs without a lock file are only removed once this old (they may be
/// in the instant between creation and locking).
const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub status: RunStatus,
    /// An interrupted record whose process still holds the run's lock.
    pub running: bool,
    pub started: String,
    pub finished: Option<String>,
    pub nodes: usize,
    pub nodes_computed: usize,
    pub units_computed: u64,
}

#[derive(Debug, Clone)]
pub struct Listing {
    /// (experiment, runs oldest first)
    pub experiments: Vec<(String, Vec<RunSummary>)>,
}

#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub dry_run: bool,
    /// Artifact, unit and staging dirs removed (or that would be, on a dry run).
    pub removed: Vec<PathBuf>,
    pub bytes: u64,
    pub kept: usize,
}

impl Store {
    pub fn ls(&self) -> Result<Listing> {
        let mut experiments = Vec::new();
        for name in RunRecord::experiments(self)? {
            let runs = RunRecord::load_all(self, &name)?
                .into_iter()
                .map(|r| RunSummary {
                    running: r.status == RunStatus::Interrupted
                        && crate::lifecycle::RunLock::is_held(&RunRecord::lock_path(
                            self,
                            &r.experiment,
                            &r.run_id,
                        )),
                    nodes: r.nodes.len(),
                    nodes_computed: r
                        .nodes
                        .iter()
                        .filter(|n| n.outcome != crate::store::Outcome::Hit)
                        .count(),
                    units_computed: r.units.computed,
                    run_id: r.run_id,
                    status: r.status,
                    started: r.started,
                    finished: r.finished,
                })
                .collect();
            experiments.push((name, runs));
        }
        Ok(Listing { experiments })
    }

    /// Removes artifacts no run record references (and units no kept artifact used),
    /// plus stale staging dirs. Do not run it while a run is in progress.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let mut objects = HashSet::new();
        for name in RunRecord::experiments(self)? {
            for run in RunRecord::load_all(self, &name)? {
                objects.extend(run.nodes.into_iter().map(|n| n.id.key));
            }
        }
        let mut units = HashSet::new();
        // Units of runs that never finished (killed, failed) are what a rerun resumes from.
        for name in RunRecord::experiments(self)? {
            for run in RunRecord::load_all(self, &name)? {
                let journal = RunRecord::unit_journal(self, &name, &run.run_id);
                if let Ok(text) = fs::read_to_string(&journal) {
                    units.extend(text.lines().map(str::to_string));
                }
            }
        }
        for journal in crate::slurm::unit_journals(self) {
            if let Ok(text) = fs::read_to_string(&journal) {
                units.extend(text.lines().map(str::to_string));
            }
        }
        for key in &objects {
            if let Ok(manifest) = Manifest::read(&self.artifact_dir(Area::Objects, key)) {
                units.extend(manifest.units);
            }
        }
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        for (area, keep) in [(Area::Objects, &objects), (Area::Units, &units)] {
            for dir in artifact_dirs(&self.root().join(area.dir_name()))? {
                let key = dir.file_name().expect("named").to_string_lossy();
                if keep.contains(key.as_ref()) {
                    report.kept += 1;
                } else {
                    self.remove(dir, dry_run, &mut report)?;
                }
            }
        }
        let tmp = self.tmp_dir();
        if tmp.is_dir() {
            for entry in fs::read_dir(&tmp).at(&tmp)? {
                let dir = entry.at(&tmp)?.path();
                // Holding the lock while deleting keeps a staging owner from racing us.
                if let Some(_lock) = stale_staging(&dir) {
                    self.remove(dir, dry_run, &mut report)?;
                }
            }
        }
        Ok(report)
    }

    fn remove(&self, dir: PathBuf, dry_run: bool, report: &mut GcReport) -> Result<()> {
        report.bytes += WalkDir::new(&dir)
            .into_iter()
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum::<u64>();
        if !dry_run {
            if dir.is_dir() {
                fs::remove_dir_all(&dir).at(&dir)?;
            } else {
                fs::remove_file(&dir).at(&dir)?;
            }
        }
        report.removed.push(dir);
        Ok(())
    }
}

/// `<area>/<shard>/<key>` dirs.
fn artifact_dirs(area: &Path) -> Result<Vec<PathBuf>> {
    if !area.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    for shard in fs::read_dir(area).at(area)? {
        let shard = shard.at(area)?.path();
        if shard.is_dir() {
            for entry in fs::read_dir(&shard).at(&shard)? {
                dirs.push(entry.at(&shard)?.path());
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// A staging dir nobody holds: returns a guard (its lock, or none needed) if stale.
fn stale_staging(dir: &Path) -> Option<Option<File>> {
    match File::open(dir.join("lock")) {
        Ok(file) => fs4::FileExt::try_lock(&file).is_ok().then_some(Some(file)),
        Err(_) => {
            let modified = fs::symlink_metadata(dir).and_then(|m| m.modified()).ok()?;
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            (age > STALE_TMP_AGE).then_some(None)
        }
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.experiments.is_empty() {
            return writeln!(f, "no runs");
        }
        for (name, runs) in &self.experiments {
            writeln!(f, "{name}:")?;
            for run in runs {
                writeln!(
                    f,
                    "  {}  {:<11}  {}  {} stages ({} computed), {} units computed",
                    run.run_id,
                    match run.running {
                        true => "running".to_string(),
                        false => run.status.to_string(),
                    },
                    run.started,
                    run.nodes,
                    run.nodes_computed,
                    run.units_computed
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for path in &self.removed {
            writeln!(f, "{verb} {}", path.display())?;
        }
        let freed = if self.dry_run {
            "would be freed"
        } else {
            "freed"
        };
        writeln!(
            f,
            "{verb} {} entries, {} {freed}; kept {}",
            self.removed.len(),
            human_bytes(self.bytes),
            self.kept
        )
    }
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}
