//! Benchmark tables of trained architectures.
pub mod nb201;
