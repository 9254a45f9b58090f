//! Networks as recorded forward passes with backward passes for many cotangents: stacked
//! (any device) or row by row in batch-last layout (CPU); and, for candle's autograd, a
//! convolution (`conv`, on the CPU im2col + GEMM) and a train-mode batch norm (`batch_norm`)
//! that are fast on the CPU.
mod backward;
pub mod batch_norm;
pub mod conv;
mod cpu_storage;
mod gemm_conv;
pub mod init;
pub mod kernels;
pub mod params;
mod row_backward;
mod simd;
mod stacked_backward;
pub mod tape;
