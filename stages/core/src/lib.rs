//! The NAS core of tenas: datasets, search spaces and their networks, training-free proxies,
//! TE-NAS pruning, benchmark tables and statistics. It knows nothing about the pipeline that
//! caches and schedules it (`tenas-stages` adapts the one to the other); see README.md.
pub mod bench;
pub mod data;
pub mod device;
pub mod error;
pub mod hashing;
pub mod net;
pub mod proxy;
pub mod prune;
pub mod seeds;
pub mod space;
pub mod stats;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use error::{Error, Result};
