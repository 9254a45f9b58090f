//! Datasets and the inputs the scores are computed on.
pub mod cifar;
pub mod dataset;
pub mod download;
pub mod imagenet;
pub mod imagenet16;
pub mod imagenet16_writer;
pub mod pickle;
pub mod pool;
pub mod sample;
