//! synflow (Tanaka et al., 2020, as AZ-NAS runs it): the network without its batch norms,
//! every weight replaced by its absolute value, fed one image of ones; the score is
//! Σ |W ⊙ ∂R/∂W| over the conv and linear weights, R the sum of the logits. The products
//! reach 1e67, beyond f32, so it runs in f64. A cell with no path from input to output
//! scores 0.
use candle_core::{DType, Tensor};

use super::cell_proxy::{sum_of, CellInput, CellProxy, InputKind};
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

pub struct Synflow;

impl CellProxy for Synflow {
    fn name(&self) -> &'static str {
        "synflow"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["synflow"]
    }

    fn input(&self) -> InputKind {
        InputKind::None
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input
            .weights(InitScheme::KaimingFanIn)?
            .abs()?
            .to_dtype(DType::F64)?;
        let side = input.network.config().side;
        let ones = Tensor::ones((1, 3, side, side), DType::F64, input.device)?;
        let trace = input.network.forward(&weights, &ones, Norm::Identity)?;
        let grads = trace.logits.sum_all()?.backward()?;
        let saliences = weights
            .layer_weights()
            .filter_map(|w| grads.get(w.as_tensor()).map(|g| (w, g)))
            .map(|(w, g)| Ok((w.as_tensor() * g)?.abs()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![sum_of(saliences)?])
    }
}
