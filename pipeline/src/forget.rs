//! Forgetting runs: their records, journals and results folders go, so that `gc` can free
//! what only they kept. A running run is never forgotten.

use std::fmt;
use std::fs;

use crate::error::{Error, IoContext, Result};
use crate::lifecycle::RunLock;
use crate::record::{RunRecord, RunStatus};
use crate::store::Store;

/// Which runs to forget; the criteria add up.
#[derive(Debug, Clone, Default)]
pub struct Forget {
    /// Run ids.
    pub runs: Vec<String>,
    pub failed: bool,
    /// Interrupted runs whose process is gone.
    pub interrupted: bool,
    /// Per experiment, forget all but the newest N complete runs (and every older failed or
    /// interrupted one).
    pub keep_last: Option<usize>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ForgetReport {
    pub dry_run: bool,
    /// `(experiment, run id, status)`.
    pub forgotten: Vec<(String, String, RunStatus)>,
}

impl Store {
    pub fn forget(&self, what: &Forget) -> Result<ForgetReport> {
        let mut report = ForgetReport {
            dry_run: what.dry_run,
            ..ForgetReport::default()
        };
        let mut unmatched: Vec<&String> = what.runs.iter().collect();
        for experiment in RunRecord::experiments(self)? {
            let runs = RunRecord::load_all(self, &experiment)?;
            let newest_complete: Vec<&str> = runs
                .iter()
                .rev()
                .filter(|r| r.status == RunStatus::Complete)
                .take(what.keep_last.unwrap_or(usize::MAX))
                .map(|r| r.run_id.as_str())
                .collect();
            for run in &runs {
                let named = what.runs.contains(&run.run_id);
                unmatched.retain(|id| **id != run.run_id);
                let chosen = named
                    || (what.failed && run.status == RunStatus::Failed)
                    || (what.interrupted && run.status == RunStatus::Interrupted)
                    || (what.keep_last.is_some()
                        && !newest_complete.contains(&run.run_id.as_str()));
                if !chosen {
                    continue;
                }
                if RunLock::is_held(&RunRecord::lock_path(self, &experiment, &run.run_id)) {
                    if named {
                        return Err(Error::RunIsRunning {
                            run: run.run_id.clone(),
                            experiment: experiment.clone(),
                        });
                    }
                    continue;
                }
                if !what.dry_run {
                    self.remove_run(&experiment, &run.run_id)?;
                }
                report
                    .forgotten
                    .push((experiment.clone(), run.run_id.clone(), run.status));
            }
            if !what.dry_run {
                self.repoint_latest(&experiment)?;
            }
        }
        if let Some(id) = unmatched.first() {
            return Err(Error::NoSuchRun {
                run: id.to_string(),
                store: self.root().to_path_buf(),
            });
        }
        Ok(report)
    }

    fn remove_run(&self, experiment: &str, run_id: &str) -> Result<()> {
        let record = RunRecord::path(self, experiment, run_id);
        for path in [
            RunRecord::unit_journal(self, experiment, run_id),
            RunRecord::lock_path(self, experiment, run_id),
        ] {
            if path.exists() {
                fs::remove_file(&path).at(&path)?;
            }
        }
        let results = self.results_dir().join(experiment).join(run_id);
        if results.exists() {
            fs::remove_dir_all(&results).at(&results)?;
        }
        // The record goes last: until then the run is still listed, and can be forgotten again.
        fs::remove_file(&record).at(&record)
    }

    /// `results/<experiment>/latest` -> the newest run that still has results, or gone.
    fn repoint_latest(&self, experiment: &str) -> Result<()> {
        let root = self.results_dir().join(experiment);
        let latest = root.join("latest");
        let target = fs::read_link(&latest).ok();
        if target.as_ref().is_some_and(|t| root.join(t).is_dir()) {
            return Ok(());
        }
        let newest = RunRecord::load_all(self, experiment)?
            .into_iter()
            .rev()
            .find(|r| r.results.is_some() && root.join(&r.run_id).is_dir());
        if fs::symlink_metadata(&latest).is_ok() {
            fs::remove_file(&latest).at(&latest)?;
        }
        if let Some(run) = newest {
            crate::results::point_latest(&root, &run.run_id)?;
        }
        Ok(())
    }
}

impl fmt::Display for ForgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would forget"
        } else {
            "forgot"
        };
        for (experiment, run, status) in &self.forgotten {
            writeln!(f, "{verb} {experiment} {run} ({status})")?;
        }
        let next = if self.dry_run {
            ""
        } else {
            "; `tenas gc` frees what only they kept"
        };
        writeln!(f, "{verb} {} runs{next}", self.forgotten.len())
    }
}
