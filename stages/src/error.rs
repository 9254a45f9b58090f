//! One error type for the stages crate, with a `Result` alias (as polars does).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
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
    /// The engine's own errors (a unit, an input), kept whole on their way back to it.
    #[error(transparent)]
    Pipeline(#[from] tenas_pipeline::Error),
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
}

impl From<Error> for tenas_pipeline::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Pipeline(inner) => inner,
            other => tenas_pipeline::Error::stage(other),
        }
    }
}
