//! FLOPs: the multiply-accumulates of one image's forward pass through the benchmark's
//! network, in millions, as NAS-Bench-201 counts them (AZ-NAS's "complexity").
use super::cell_proxy::{CellInput, CellProxy, InputKind};
use crate::error::Result;

pub struct Flops;

impl CellProxy for Flops {
    fn name(&self) -> &'static str {
        "flops"
    }

    fn components(&self) -> &'static [&'static str] {
        &["flops"]
    }

    fn input(&self) -> InputKind {
        InputKind::None
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let size = input.network.config().size(input.network.arch());
        Ok(vec![size.flops as f64 / 1e6])
    }
}
