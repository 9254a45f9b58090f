//! AZ-NAS (Lee & Ham, CVPR 2024): four components of one Gaussian batch through the
//! benchmark's network with Kaiming fan-in weights.
//! - expressivity: Σ over the stem and every block of the entropy of its output's channel
//!   covariance spectrum (every pixel of every image a sample);
//! - progressivity: the smallest rise of that entropy from one block to the next;
//! - trainability: the mean over blocks of 2 − σ − 1/σ, σ the largest singular value of the
//!   block's Jacobian probed with a Rademacher cotangent (−∞ for a block that is exactly the
//!   identity);
//! - complexity: FLOPs.
//!
//! The spectra are computed in f64. The published code computes them in f32, where skip- and
//! pool-heavy cells (whose features grow to 1e9) give negative eigenvalues and hence −∞;
//! here those cells get finite values.
use candle_core::{DType, Tensor};

use super::cell_proxy::{host_values, CellInput, CellProxy, InputKind};
use super::linalg::{largest_singular_value, Square};
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

/// Keeps ln finite at zero probabilities (the published value).
const LOG_SHIFT: f64 = 1e-8;

pub struct AzNas;

impl CellProxy for AzNas {
    fn name(&self) -> &'static str {
        "az_nas"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &[
            "expressivity",
            "progressivity",
            "trainability",
            "complexity",
        ]
    }

    fn input(&self) -> InputKind {
        InputKind::Noise
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::KaimingFanIn)?.frozen();
        let x = input.noise("az_nas")?;
        let (trace, block_inputs) = input.network.forward_cut(&weights, &x, Norm::Batch)?;
        let entropies = trace
            .features
            .iter()
            .map(spectral_entropy)
            .collect::<Result<Vec<_>>>()?;
        let expressivity = entropies.iter().sum::<f64>();
        let progressivity = entropies
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let mut block_scores = Vec::new();
        for (block, (block_input, output)) in
            block_inputs.iter().zip(&trace.features[1..]).enumerate()
        {
            let cotangent = input.rademacher(output, &format!("block{block}"))?;
            let grads = (output * &cotangent)?.sum_all()?.backward()?;
            let vjp = match grads.get(block_input.as_tensor()) {
                Some(g) => g.clone(),
                None => block_input.as_tensor().zeros_like()?,
            };
            block_scores.push(block_trainability(&vjp, &cotangent)?);
        }
        let trainability = block_scores.iter().sum::<f64>() / block_scores.len() as f64;
        let complexity = input.network.config().size(input.network.arch()).flops as f64 / 1e6;
        let nan_if_not_finite = |v: f64| if v.is_finite() { v } else { f64::NAN };
        Ok(vec![
            nan_if_not_finite(expressivity),
            nan_if_not_finite(progressivity),
            trainability,
            complexity,
        ])
    }
}

/// (B, C, H, W) → the (B·H·W) × C matrix of its pixels, in f64.
fn pixels_by_channel(t: &Tensor) -> Result<Tensor> {
    let c = t.dim(1)?;
    Ok(t.to_dtype(DType::F64)?
        .permute((0, 2, 3, 1))?
        .reshape(((), c))?)
}

/// −Σ p ln(p + 1e-8), p the normalised eigenvalues of the channel covariance; NaN for a
/// feature map without variance.
fn spectral_entropy(feature: &Tensor) -> Result<f64> {
    let x = pixels_by_channel(feature)?;
    let (n, c) = x.dims2()?;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let covariance = (centred.t()?.matmul(&centred)? / n as f64)?;
    let eigenvalues = Square::new(c, host_values(&covariance)?).symmetric_eigenvalues();
    let total: f64 = eigenvalues.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Ok(f64::NAN);
    }
    Ok(-eigenvalues
        .iter()
        .map(|s| {
            let p = s / total;
            p * (p + LOG_SHIFT).ln()
        })
        .sum::<f64>())
}

/// 2 − σ − 1/(σ + 1e-6) for the block's VJP `vjp` of `cotangent`; −∞ when the block passed
/// the cotangent through unchanged.
fn block_trainability(vjp: &Tensor, cotangent: &Tensor) -> Result<f64> {
    if vjp.dims() == cotangent.dims() && host_values(vjp)? == host_values(cotangent)? {
        return Ok(f64::NEG_INFINITY);
    }
    let vjp = if vjp.dim(2)? == cotangent.dim(2)? {
        vjp.clone()
    } else {
        pixel_unshuffle(vjp)?
    };
    let g_in = pixels_by_channel(&vjp)?;
    let g_out = pixels_by_channel(cotangent)?;
    let n = g_in.dim(0)? as f64;
    let m = (g_in.t()?.matmul(&g_out)? / n)?;
    let (rows, cols) = m.dims2()?;
    let sigma = largest_singular_value(&host_values(&m)?, rows, cols);
    Ok(-sigma - 1.0 / (sigma + 1e-6) + 2.0)
}

/// (B, C, H, W) → (B, 4C, H/2, W/2), each 2×2 patch into channels.
fn pixel_unshuffle(t: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = t.dims4()?;
    Ok(t.reshape((b, c, h / 2, 2, w / 2, 2))?
        .permute(vec![0, 1, 3, 5, 2, 4])?
        .reshape((b, 4 * c, h / 2, w / 2))?)
}
