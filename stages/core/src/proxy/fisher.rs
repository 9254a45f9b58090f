//! fisher (Turner et al., 2020, as zero-cost-nas runs it): per output channel of every conv
//! and of the classifier, F = ½ mean_n (Σ_{h,w} a ∂L/∂a)² for its output a, counted once for
//! each weight of the channel; the score is Σ |F|·fan_in. L is the cross-entropy of one real
//! labelled batch; PyTorch's default init.
use candle_core::Tensor;

use super::cell_proxy::{host_values, CellInput, CellProxy, InputKind};
use crate::error::Result;
use crate::net::params::InitScheme;

pub struct Fisher;

impl CellProxy for Fisher {
    fn name(&self) -> &'static str {
        "fisher"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["fisher"]
    }

    fn input(&self) -> InputKind {
        InputKind::LabelledImages
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::TorchDefault)?.frozen();
        let batch = input.data_batch(self.name(), 0)?;
        let probes = input
            .network
            .probes(input.batch, batch.images.dtype(), input.device)?;
        let trace = input
            .network
            .forward_probed(&weights, &batch.images, &probes)?;
        let loss = candle_nn::loss::cross_entropy(&trace.logits, &batch.labels)?;
        let grads = loss.backward()?;
        let mut score = 0.0;
        for ((output, probe), weight) in trace
            .layer_outputs
            .iter()
            .zip(&probes)
            .zip(weights.layer_weights())
        {
            let Some(grad) = grads.get(probe.as_tensor()) else {
                continue;
            };
            let fan_in = weight.as_tensor().elem_count() / weight.as_tensor().dim(0)?;
            score += channel_fisher(output, grad)? * fan_in as f64;
        }
        Ok(vec![score])
    }
}

/// Σ_k |½ mean_n g_nk²| with g_nk = Σ_{h,w} a·γ (conv outputs) or a·γ (linear outputs).
fn channel_fisher(output: &Tensor, grad: &Tensor) -> Result<f64> {
    let product = (output * grad)?;
    let per_channel = match product.rank() {
        4 => product.sum(3)?.sum(2)?,
        _ => product,
    };
    let f = (per_channel.sqr()?.mean(0)? * 0.5)?;
    Ok(host_values(&f)?.iter().map(|v| v.abs()).sum())
}
