//! Search spaces: what the pruning loop sees of them ([`SpaceMask`], [`SpaceNet`]) and the
//! NAS-Bench-201 and DARTS cells and networks.
pub mod benchmark_net;
pub mod darts_arch;
pub mod darts_net;
pub mod nb201_arch;
pub mod nb201_benchmark;
pub mod nb201_net;

use candle_core::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::net::params::ParamSpecs;
use crate::net::tape::{Tape, Var};

/// A search space, as `[supernet] space` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// NAS-Bench-201: one cell type, 6 edges of 5 ops.
    Nb201,
    /// DARTS: normal and reduction cells, 14 edges of 8 ops each.
    Darts,
}

/// Which (cell type, edge, op)s of a supernet are still active.
pub trait SpaceMask: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync {
    /// Cell types with their own ops (NAS-Bench-201: 1; DARTS: normal and reduction).
    const CELLS: usize;
    const EDGES: usize;
    const OPS: usize;

    fn is_active(&self, cell: usize, edge: usize, op: usize) -> bool;
    fn set_active(&mut self, cell: usize, edge: usize, op: usize, active: bool);
    fn op_name(op: usize) -> &'static str;
    fn cell_name(cell: usize) -> &'static str;

    fn active_count(&self, cell: usize, edge: usize) -> usize {
        (0..Self::OPS)
            .filter(|&op| self.is_active(cell, edge, op))
            .count()
    }
}

/// A network of a search space whose ops are switched by a mask.
pub trait SpaceNet: Send + Sync {
    type Mask: SpaceMask;

    fn specs(&self) -> &ParamSpecs;

    /// Records the forward pass of `input` with the ops of `mask`; returns the logits.
    fn forward(&self, tape: &mut Tape, input: Tensor, mask: &Self::Mask) -> Result<Var>;
}
