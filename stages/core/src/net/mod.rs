//! Networks as recorded forward passes with backward passes for many cotangents: stacked
//! (any device) or row by row in batch-last layout (CPU); and a convolution whose autograd
//! backward is fast on the CPU (`conv`).
mod backward;
pub mod conv;
pub mod init;
pub mod kernels;
pub mod params;
mod row_backward;
mod simd;
mod stacked_backward;
pub mod tape;
