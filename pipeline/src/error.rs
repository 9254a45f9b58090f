//! One error type for the whole engine, so stage crates and the CLI only match on one thing.

use std::fmt::Display;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an experiment file, located so the user can jump to it.
    #[error("{file}:{line}: {key}: {message}")]
    Experiment {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    /// A bad `--set stage.key=value` override.
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    /// Causes are part of the messages below, and not also `source`s: a chain printer would
    /// print them twice.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// An error raised by stage code; the engine fills in the stage name when it is empty.
    #[error("stage `{stage}`: {cause}")]
    Stage {
        stage: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stage's params that do not fit what it reads at run time.
    #[error("params of `{stage}`: {}{reason}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    InvalidParam {
        stage: String,
        key: Option<String>,
        reason: String,
    },
    /// A stage asked for an input that the plan did not give it.
    #[error("stage `{stage}` has no input `{input}` (inputs: {})", known.join(", "))]
    MissingInput {
        stage: String,
        input: String,
        known: Vec<String>,
    },
    /// A file that should exist does not; `hint` says what makes it.
    #[error("{}: {hint}", path.display())]
    MissingFile { path: PathBuf, hint: String },
    /// A stored file that does not parse: a manifest, a run record, a job spec.
    #[error("{}: {reason}", path.display())]
    CorruptArtifact { path: PathBuf, reason: String },
    /// `--store` names something that is not a folder.
    #[error("store {} is not a directory", path.display())]
    NotAStore { path: PathBuf },
    #[error("{}: not a results folder of a store (expected <store>/results/<experiment>/<run-id>)", path.display())]
    NotAResultsFolder { path: PathBuf },
    #[error("no run `{run}` in the store {}", store.display())]
    NoSuchRun { run: String, store: PathBuf },
    #[error("run {run} of `{experiment}` is running; it cannot be forgotten")]
    RunIsRunning { run: String, experiment: String },
    /// A stage wrote a file whose name the engine keeps for itself.
    #[error("stages may not write {name} (reserved for the engine)")]
    ReservedFile { name: String },
    #[error("no seeds to run")]
    NoSeeds,
    #[error("unknown executor `{name}` (expected local or slurm)")]
    UnknownExecutor { name: String },
    /// A Slurm command, job or job spec that failed; the message says which and why.
    #[error("{0}")]
    Slurm(String),
    /// A run failed, and recording that it failed failed too.
    #[error("{error} (and saving the run record failed: {save_error})")]
    RecordNotSaved {
        error: Box<Error>,
        save_error: Box<Error>,
    },
    #[error("json: {0}")]
    Json(String),
    /// A shard job of a stage that cannot be split: a bug in the stage or the executor.
    #[error("the stage is not shardable, but its units were run as a shard")]
    NotShardable,
    /// A shard job whose stage finished without computing its units.
    #[error("the stage finished without computing its units in one `units` call, so it cannot be sharded")]
    ShardNotReached,
}

impl Error {
    /// For stage code: `.map_err(Error::stage)?`; the engine adds the stage name.
    pub fn stage(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Stage {
            stage: String::new(),
            cause: cause.into(),
        }
    }

    pub(crate) fn io(context: impl Display, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            cause,
        }
    }

    /// Names the stage an error came from, unless it already names one.
    pub(crate) fn in_stage(self, name: &str) -> Self {
        match self {
            Error::Stage { stage, cause } if stage.is_empty() => Error::Stage {
                stage: name.to_string(),
                cause,
            },
            Error::Stage { .. } => self,
            other => Error::Stage {
                stage: name.to_string(),
                cause: Box::new(other),
            },
        }
    }
}

impl From<walkdir::Error> for Error {
    fn from(e: walkdir::Error) -> Self {
        let path = e
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match e.into_io_error() {
            Some(cause) => Error::io(path, cause),
            None => Error::io(path, std::io::Error::other("a symlink loop")),
        }
    }
}

/// Attaches the path to io errors: `fs::read(p).at(p)?`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path.display(), e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e.to_string())
    }
}
