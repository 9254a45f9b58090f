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
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// An error raised by stage code; the engine fills in the stage name when it is empty.
    #[error("stage `{stage}`: {source}")]
    Stage {
        stage: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Custom(String),
    /// Not a failure: a shard job's units are done and the stage is stopped on purpose.
    #[error("this shard's units are done")]
    ShardComplete,
}

impl Error {
    /// For stage code: `.map_err(Error::stage)?`; the engine adds the stage name.
    pub fn stage(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Stage {
            stage: String::new(),
            source: source.into(),
        }
    }

    pub fn custom(message: impl Display) -> Self {
        Error::Custom(message.to_string())
    }

    pub(crate) fn io(context: impl Display, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    /// Names the stage an error came from, unless it already names one.
    pub(crate) fn in_stage(self, name: &str) -> Self {
        match self {
            Error::Stage { stage, source } if stage.is_empty() => Error::Stage {
                stage: name.to_string(),
                source,
            },
            Error::Stage { .. } => self,
            other => Error::Stage {
                stage: name.to_string(),
                source: Box::new(other),
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
