//! One error type for the stages crate, with a `Result` alias (as polars does): the NAS core's
//! errors and the engine's, each kept whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] tenas_core::Error),
    /// The engine's own errors (a unit, an input), kept whole on their way back to it.
    #[error(transparent)]
    Pipeline(#[from] tenas_pipeline::Error),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn data(path: impl Into<std::path::PathBuf>, message: impl Into<String>) -> Self {
        tenas_core::Error::data(path, message).into()
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        tenas_core::Error::io(context, source).into()
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        tenas_core::Error::Invalid(message.into()).into()
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
