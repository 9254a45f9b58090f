//! Benchmark tables of trained architectures.
pub mod nb201;
pub mod shipped;
pub mod source;
