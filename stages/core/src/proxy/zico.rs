//! ZiCo (Li et al., ICLR 2023, as AZ-NAS runs it): how consistent the weight gradients are
//! across two real labelled batches, with PyTorch's default init. Per conv or linear layer,
//! S = Σ mean_b |g| / std_b g over the weights whose gradient differs between the batches;
//! the score is Σ ln S over the layers with S > 0 (0 when no layer has any).
use super::cell_proxy::{host_values, CellInput, CellProxy, InputKind};
use super::gradients::weight_gradients;
use crate::error::Result;
use crate::net::params::InitScheme;

pub struct Zico;

impl CellProxy for Zico {
    fn name(&self) -> &'static str {
        "zico"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["zico"]
    }

    fn input(&self) -> InputKind {
        InputKind::LabelledImages
    }

    fn data_batches(&self) -> usize {
        2
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::TorchDefault)?;
        let mut per_batch = Vec::new();
        for i in 0..2 {
            let batch = input.data_batch(self.name(), i)?;
            per_batch.push(weight_gradients(
                input.network,
                &weights,
                &batch.images,
                &batch.labels,
            )?);
        }
        let mut score = 0.0;
        for (g1, g2) in per_batch[0].iter().zip(&per_batch[1]) {
            let (g1, g2) = (host_values(g1)?, host_values(g2)?);
            // With two batches mean |g| / std g = (|g1| + |g2|) / |g1 − g2|.
            let s: f64 = g1
                .iter()
                .zip(&g2)
                .filter(|(a, b)| a != b)
                .map(|(a, b)| (a.abs() + b.abs()) / (a - b).abs())
                .sum();
            if s > 0.0 {
                score += s.ln();
            }
        }
        Ok(vec![score])
    }
}
