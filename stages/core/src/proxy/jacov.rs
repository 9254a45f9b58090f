//! jacov (Mellor et al.'s first NASWOT score, as zero-cost-nas runs it): how correlated the
//! input gradients of different real images are. J holds ∂(Σ logits)/∂x per image; C is
//! the Pearson correlation of its rows, and the score is −Σ [ln(λ + 1e-5) + 1/(λ + 1e-5)]
//! over C's eigenvalues. PyTorch's default init. An image whose gradient is constant makes
//! C undefined and the score −∞.
use candle_core::Var;

use super::cell_proxy::{host_values, CellInput, CellProxy, InputKind};
use super::linalg::Square;
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

const SHIFT: f64 = 1e-5;

pub struct Jacov;

impl CellProxy for Jacov {
    fn name(&self) -> &'static str {
        "jacov"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["jacov"]
    }

    fn input(&self) -> InputKind {
        InputKind::Images
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::TorchDefault)?.frozen();
        let images = Var::from_tensor(&input.data_batch(self.name(), 0)?.images)?;
        let trace = input
            .network
            .forward(&weights, images.as_tensor(), Norm::Batch)?;
        let grads = trace.logits.sum_all()?.backward()?;
        let Some(jacobian) = grads.get(images.as_tensor()) else {
            return Ok(vec![f64::NEG_INFINITY]);
        };
        let b = jacobian.dim(0)?;
        let rows = host_values(jacobian)?;
        let Some(c) = row_correlations(&rows, b) else {
            return Ok(vec![f64::NEG_INFINITY]);
        };
        let score = -c
            .symmetric_eigenvalues()
            .iter()
            .map(|v| (v + SHIFT).ln() + 1.0 / (v + SHIFT))
            .sum::<f64>();
        Ok(vec![score])
    }
}

/// The Pearson correlations between the `b` rows of `values`; `None` if a row is constant.
fn row_correlations(values: &[f64], b: usize) -> Option<Square> {
    let d = values.len() / b;
    let centred: Vec<Vec<f64>> = values
        .chunks(d)
        .map(|row| {
            let mean = row.iter().sum::<f64>() / d as f64;
            row.iter().map(|v| v - mean).collect()
        })
        .collect();
    let norms: Vec<f64> = centred
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if norms.iter().any(|&n| n == 0.0 || !n.is_finite()) {
        return None;
    }
    let mut c = vec![0.0; b * b];
    for i in 0..b {
        for j in i..b {
            let dot: f64 = centred[i].iter().zip(&centred[j]).map(|(x, y)| x * y).sum();
            let r = dot / (norms[i] * norms[j]);
            c[i * b + j] = r;
            c[j * b + i] = r;
        }
    }
    Some(Square::new(b, c))
}
