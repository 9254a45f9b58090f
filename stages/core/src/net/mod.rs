//! Networks as recorded forward passes with backward passes for many cotangents: stacked
//! (any device) or row by row in batch-last layout (CPU).
mod backward;
pub mod init;
pub mod kernels;
pub mod params;
mod row_backward;
mod simd;
mod stacked_backward;
pub mod tape;
