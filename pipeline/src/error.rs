//! One error type for the whole engine, so stage crates and the CLI only match on one thing.

use std::fmt::Display;
use std::path::Path;

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
    #[error("{0}")]
    Custom(String),
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

    pub fn custom(message: impl Display) -> Self {
        Error::Custom(message.to_string())
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
        Error::Custom(format!("json: {e}"))
    }
}
