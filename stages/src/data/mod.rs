//! Datasets and the inputs the scores are computed on.
pub mod cifar;
pub mod download;
pub mod imagenet;
pub mod sample;
