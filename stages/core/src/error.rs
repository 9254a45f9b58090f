//! One error type for the NAS core, with a `Result` alias (as polars does).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that exists but whose content is wrong (format, size, checksum).
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// A file that should be there and is not; `hint` says what was expected (and how to get
    /// it).
    #[error("{path}: {hint}")]
    MissingFile { path: PathBuf, hint: String },
    /// A file tenas wrote earlier (an artifact) whose content no longer checks out; it is
    /// recomputed, never used.
    #[error("{path}: {reason}")]
    CorruptArtifact { path: PathBuf, reason: String },
    /// A setting outside what it allows: `key` names it, `reason` says what it must be.
    #[error("{reason}")]
    InvalidParam { key: String, reason: String },
    /// Anything else a caller asked that cannot be done (an arch string, a degenerate input).
    #[error("{0}")]
    Invalid(String),
    /// The cause is part of the message (and not also a `source`, which would print it twice).
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }
    pub fn missing_file(path: impl Into<PathBuf>, hint: impl Into<String>) -> Self {
        Error::MissingFile {
            path: path.into(),
            hint: hint.into(),
        }
    }
    pub fn corrupt_artifact(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::CorruptArtifact {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub fn invalid_param(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParam {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
