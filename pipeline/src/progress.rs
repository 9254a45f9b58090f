//! Progress: bars on a terminal, plain lines otherwise (CI logs). Output goes to stderr.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::settings::Verbosity;

/// Plain mode prints progress lines at most this often (except in verbose mode).
const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// Shared by all stages of a run: decides between bars and plain lines.
pub(crate) struct Reporter {
    multi: Option<MultiProgress>,
    verbosity: Verbosity,
}

impl Reporter {
    pub fn new(verbosity: Verbosity) -> Self {
        let bars = verbosity != Verbosity::Quiet && std::io::stderr().is_terminal();
        Reporter {
            multi: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            verbosity,
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// A line at normal verbosity.
    pub fn info(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.print(line);
        }
    }

    /// Always shown, even when quiet.
    pub fn warn(&self, line: &str) {
        self.print(line);
    }

    fn print(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn stage(&self, label: String) -> Progress<'_> {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(bar_style());
            bar.set_prefix(label.clone());
            bar
        });
        Progress {
            reporter: self,
            label,
            bar,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
        .expect("valid template")
        .progress_chars("=> ")
}

/// One stage's progress, reached through `StageContext::progress`.
pub struct Progress<'r> {
    reporter: &'r Reporter,
    label: String,
    bar: Option<ProgressBar>,
    done: AtomicU64,
    total: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress<'_> {
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Raises the total so it covers `more` steps beyond those done (units use this, so
    /// stages that grow in rounds get a total without calling `set_total`).
    pub(crate) fn expect_more(&self, more: u64) {
        let needed = self.done.load(Ordering::Relaxed) + more;
        if self.total.fetch_max(needed, Ordering::Relaxed) < needed {
            if let Some(bar) = &self.bar {
                bar.set_length(needed);
            }
        }
    }

    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                let verbose = self.reporter.verbosity() == Verbosity::Verbose;
                let mut last = self.last_line.lock().expect("progress lock");
                if verbose || last.elapsed() >= PLAIN_INTERVAL {
                    *last = Instant::now();
                    let total = self.total.load(Ordering::Relaxed);
                    self.reporter
                        .info(&format!("{}: {done}/{total}", self.label));
                }
            }
        }
    }

    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None if self.reporter.verbosity() == Verbosity::Verbose => {
                self.reporter.info(&format!("{}: {message}", self.label))
            }
            None => {}
        }
    }

    /// A log line, printed above the bars (or plainly), prefixed by the stage label.
    pub fn log(&self, line: impl AsRef<str>) {
        self.reporter
            .info(&format!("{}: {}", self.label, line.as_ref()));
    }

    pub(crate) fn warn(&self, line: &str) {
        self.reporter.warn(line);
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_template_is_valid() {
        bar_style();
    }

    #[test]
    fn units_raise_the_total_only_when_needed() {
        let reporter = Reporter::new(Verbosity::Quiet);
        let progress = reporter.stage("s".into());
        progress.set_total(10);
        progress.expect_more(4);
        assert_eq!(progress.total.load(Ordering::Relaxed), 10);
        progress.inc(8);
        progress.expect_more(4);
        assert_eq!(progress.total.load(Ordering::Relaxed), 12);
    }
}
