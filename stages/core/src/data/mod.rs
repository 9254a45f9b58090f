//! Datasets and the inputs the scores are computed on.
pub mod cifar;
pub mod dataset;
pub mod download;
#[cfg(feature = "download")]
pub mod fetch;
pub mod imagenet;
pub mod imagenet16;
pub mod imagenet16_writer;
pub mod load;
pub mod pickle;
pub mod pool;
pub mod sample;
