//! TE-NAS stages for the tenas pipeline: datasets, search spaces, proxies, pruning and
//! benchmark lookup.
pub mod bench;
pub mod compare;
pub mod data;
pub mod device;
pub mod error;
pub mod hashing;
pub mod net;
pub mod proxy;
pub mod prune;
pub mod seeds;
pub mod space;
pub mod stage;
pub mod stats;
pub mod table;

#[cfg(test)]
pub(crate) mod test_support;

pub use error::{Error, Result};
pub use stage::register_all;
