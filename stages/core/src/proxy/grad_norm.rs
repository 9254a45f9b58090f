//! grad_norm (Abdelfattah et al., 2021, in Zen-NAS's version that AZ-NAS runs): the L2 norm of
//! the gradient of every parameter (weights, batch-norm scales and shifts, the classifier's
//! bias) of the cross-entropy of Gaussian inputs against uniformly random classes.
use super::cell_proxy::{sum_of, CellInput, CellProxy, InputKind};
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

pub struct GradNorm;

impl CellProxy for GradNorm {
    fn name(&self) -> &'static str {
        "grad_norm"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["grad_norm"]
    }

    fn input(&self) -> InputKind {
        InputKind::Noise
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::KaimingFanIn)?;
        let x = input.noise("grad_norm")?;
        let trace = input.network.forward(&weights, &x, Norm::Batch)?;
        let labels = input.random_labels("grad_norm")?;
        let loss = candle_nn::loss::cross_entropy(&trace.logits, &labels)?;
        let grads = loss.backward()?;
        let squares = weights
            .vars()
            .iter()
            .filter_map(|w| grads.get(w.as_tensor()))
            .map(|g| Ok(g.sqr()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![sum_of(squares)?.sqrt()])
    }
}
