//! Run-wide settings chosen by the caller (the CLI), not by the experiment file.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Opaque description of what changes numbers (device, dtype, features);
    /// enters the keys of stages that use the device.
    pub device: serde_json::Value,
    /// The process's CPU budget: stage nodes and the units inside them together run at most
    /// this many computations at once. 0: the experiment's `jobs`, else the number of CPUs.
    pub jobs: usize,
    pub verbosity: Verbosity,
    /// The caller's version (`env!("CARGO_PKG_VERSION")`), recorded in manifests.
    pub tool_version: String,
}

impl Settings {
    pub(crate) fn effective_jobs(&self, experiment_jobs: Option<usize>) -> usize {
        match (self.jobs, experiment_jobs) {
            (0, Some(jobs)) => jobs,
            (0, None) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (jobs, _) => jobs,
        }
    }
}
