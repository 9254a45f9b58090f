//! The gradients several proxies share: of the cross-entropy of a labelled batch with
//! respect to the conv and linear weights.
use candle_core::Tensor;

use crate::error::Result;
use crate::space::benchmark_net::{BenchmarkNetwork, Norm, Weights};

/// ∂L/∂W for every conv and linear weight (in declaration order), L the mean cross-entropy
/// of `images` against `labels` in train mode; a weight the loss does not reach gets zeros.
pub fn weight_gradients(
    network: &BenchmarkNetwork,
    weights: &Weights,
    images: &Tensor,
    labels: &Tensor,
) -> Result<Vec<Tensor>> {
    let trace = network.forward(weights, images, Norm::Batch)?;
    let loss = candle_nn::loss::cross_entropy(&trace.logits, labels)?;
    let grads = loss.backward()?;
    weights
        .layer_weights()
        .map(|w| match grads.get(w.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(w.as_tensor().zeros_like()?),
        })
        .collect()
}
