//! Networks as recorded forward passes with a multi-cotangent backward.
pub mod kernels;
pub mod params;
mod row_backward;
mod simd;
pub mod tape;
