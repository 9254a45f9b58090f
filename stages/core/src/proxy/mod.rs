//! Training-free proxies: TE-NAS's NTK condition number and linear regions on the tape, and
//! the proxies of one cell on the benchmark's own network ([`CellProxy`], one file each).
pub mod az_nas;
pub mod cell_proxy;
pub mod combine;
pub mod fisher;
pub mod flops;
pub mod grad_norm;
mod gradients;
pub mod grasp;
pub mod jacov;
pub mod linalg;
pub mod naswot;
pub mod ntk;
pub mod params;
pub mod regions;
pub mod registry;
pub mod score;
pub mod snip;
pub mod synflow;
pub mod zen;
pub mod zico;

pub use cell_proxy::{evaluate, CellInput, CellProxy, InputKind, LabelledBatch};
pub use combine::{Aggregation, Combination};
pub use registry::{all_proxies, proxy_named};
