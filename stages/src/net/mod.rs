//! Networks as recorded forward passes with a multi-cotangent backward.
pub mod kernels;
pub mod params;
pub mod tape;
