//! #params: the parameters of the benchmark's network for the cell (what NAS-Bench-201
//! reports), in millions.
use super::cell_proxy::{CellInput, CellProxy, InputKind};
use crate::error::Result;

pub struct Params;

impl CellProxy for Params {
    fn name(&self) -> &'static str {
        "params"
    }

    fn components(&self) -> &'static [&'static str] {
        &["params"]
    }

    fn input(&self) -> InputKind {
        InputKind::None
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let size = input.network.config().size(input.network.arch());
        Ok(vec![size.params as f64 / 1e6])
    }
}
