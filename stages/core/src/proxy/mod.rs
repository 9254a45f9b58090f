//! Training-free proxies: NTK condition number and linear regions.
pub mod ntk;
pub mod regions;
pub mod score;
