//! NTK condition number from per-sample Jacobians.
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::net::tape::{Tape, Var};

/// Which Jacobian rows make up the NTK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NtkMode {
    /// One row per sample: the gradient of the sum of its logits (the published code).
    Summed,
    /// One row per (sample, class): the per-output Jacobian, the NTK proper.
    Full,
}

/// The value the published code substitutes for a NaN condition number.
pub const NAN_CONDITION: f64 = 100_000.0;

/// The Jacobian of the logits (rows per `mode`) with respect to every parameter used by the
/// tape, as a `(rows, params)` matrix. `chunk` bounds how many rows go through one backward
/// pass (memory).
pub fn jacobian(tape: &Tape, logits: Var, mode: NtkMode, chunk: usize) -> Result<Tensor> {
    let (batch, classes) = tape.value(logits).dims2()?;
    let rows = match mode {
        NtkMode::Summed => batch,
        NtkMode::Full => batch * classes,
    };
    let device = tape.value(logits).device();
    let mut parts = Vec::new();
    for start in (0..rows).step_by(chunk.max(1)) {
        let len = chunk.max(1).min(rows - start);
        let cot = cotangents(mode, start, len, batch, classes, device)?;
        let grads = tape.backward(logits, &cot)?;
        let cols: Vec<Tensor> = grads.into_iter().map(|(_, g)| g).collect();
        parts.push(Tensor::cat(&cols, 1)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Output cotangents for Jacobian rows `start..start+len`, shape `(len, batch, classes)`.
fn cotangents(
    mode: NtkMode,
    start: usize,
    len: usize,
    batch: usize,
    classes: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut data = vec![0f32; len * batch * classes];
    for r in 0..len {
        let row = start + r;
        let base = r * batch * classes;
        match mode {
            NtkMode::Summed => data[base + row * classes..base + (row + 1) * classes].fill(1.0),
            // Row (i, k) selects logit k of sample i.
            NtkMode::Full => data[base + row] = 1.0,
        }
    }
    Ok(Tensor::from_vec(data, (len, batch, classes), device)?)
}

/// `J Jᵀ` in f64.
pub fn gram(j: &Tensor) -> Result<Tensor> {
    let j = j.to_dtype(DType::F64)?;
    Ok(j.matmul(&j.t()?)?)
}

/// λmax / λmin of a symmetric matrix by an f64 eigen-decomposition; NaN becomes
/// [`NAN_CONDITION`] as in the published code.
pub fn condition_number(ntk: &Tensor) -> Result<f64> {
    let n = ntk.dim(0)?;
    let values = ntk.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    if values.len() != n * n {
        return Err(Error::Invalid(format!(
            "NTK is not square: {:?}",
            ntk.dims()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        // The eigen-solver would not converge; the result would be NaN anyway.
        return Ok(NAN_CONDITION);
    }
    let m = nalgebra::DMatrix::from_row_slice(n, n, &values);
    let eig = nalgebra::SymmetricEigen::new(m).eigenvalues;
    let max = eig.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = eig.iter().copied().fold(f64::INFINITY, f64::min);
    let cond = max / min;
    Ok(if cond.is_nan() { NAN_CONDITION } else { cond })
}

/// The NTK condition number of the network recorded on `tape`.
pub fn ntk_condition(tape: &Tape, logits: Var, mode: NtkMode, chunk: usize) -> Result<f64> {
    condition_number(&gram(&jacobian(tape, logits, mode, chunk)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::params::ParamSpecs;
    use crate::net::tape::Tape;

    fn cpu() -> Device {
        Device::Cpu
    }

    /// Linear model logits = X Wᵀ: row (i, k) of the Jacobian is x_i placed in block k, so
    /// the full NTK is (X Xᵀ) ⊗ I and the summed one is K · X Xᵀ.
    #[test]
    fn linear_model_matches_closed_form() -> Result<()> {
        let (b, d, k) = (5, 7, 3);
        let mut specs = ParamSpecs::default();
        let w = specs.linear("w".into(), k, d);
        let params = specs.init(crate::net::params::InitScheme::TorchDefault, 3, &cpu())?;
        let x = Tensor::randn(0f32, 1.0, (b, d), &cpu())?;
        let mut tape = Tape::new(&params);
        let xin = tape.input(x.clone());
        let logits = tape.linear(xin, w)?;
        let xxt = gram(&x)?;
        let expected = condition_number(&xxt)?;
        let summed = ntk_condition(&tape, logits, NtkMode::Summed, 2)?;
        let full = ntk_condition(&tape, logits, NtkMode::Full, 4)?;
        assert!(
            (summed / expected - 1.0).abs() < 1e-6,
            "{summed} vs {expected}"
        );
        // Kronecker with I keeps the spectrum, so both modes agree on a linear model.
        assert!((full / expected - 1.0).abs() < 1e-6, "{full} vs {expected}");
        let j = jacobian(&tape, logits, NtkMode::Summed, 3)?;
        let k_summed = gram(&j)?;
        let diff = (k_summed - (xxt * k as f64)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?;
        assert!(diff < 1e-4, "summed NTK should be K·XXᵀ, max diff {diff}");
        Ok(())
    }

    /// One hidden ReLU layer, logits = W2 relu(W1 x) written as 1x1 convolutions on 1x1 maps.
    /// Hand-derived rows: d logit_k / d W2[k', j] = δ_kk' h_j and
    /// d logit_k / d W1[j, :] = W2[k, j] · 1[a_j > 0] · x.
    #[test]
    fn one_hidden_layer_relu_matches_hand_jacobian() -> Result<()> {
        let (b, d, h, k) = (6, 4, 5, 3);
        let mut specs = ParamSpecs::default();
        let w1 = specs.conv("w1".into(), h, d, 1);
        let w2 = specs.linear("w2".into(), k, h);
        let params = specs.init(crate::net::params::InitScheme::KaimingFanIn, 11, &cpu())?;
        let x = Tensor::randn(0f32, 1.0, (b, d, 1, 1), &cpu())?;
        let mut tape = Tape::new(&params);
        let xin = tape.input(x.clone());
        let a = tape.conv(xin, w1, crate::net::tape::ConvCfg::same(1))?;
        let r = tape.relu(a)?;
        let pooled = tape.global_avg_pool(r)?;
        let logits = tape.linear(pooled, w2)?;
        let j = jacobian(&tape, logits, NtkMode::Full, 5)?.to_vec2::<f32>()?;

        let xs = x.reshape((b, d))?.to_vec2::<f32>()?;
        let w1v = params.tensor(w1).reshape((h, d))?.to_vec2::<f32>()?;
        let w2v = params.tensor(w2).to_vec2::<f32>()?;
        for i in 0..b {
            let pre: Vec<f32> = (0..h)
                .map(|jh| (0..d).map(|c| w1v[jh][c] * xs[i][c]).sum())
                .collect();
            for kk in 0..k {
                let mut row = Vec::new();
                for jh in 0..h {
                    let gate = if pre[jh] > 0.0 { w2v[kk][jh] } else { 0.0 };
                    row.extend((0..d).map(|c| gate * xs[i][c]));
                }
                for k2 in 0..k {
                    row.extend((0..h).map(|jh| if k2 == kk { pre[jh].max(0.0) } else { 0.0 }));
                }
                let got = &j[i * k + kk];
                for (g, e) in got.iter().zip(&row) {
                    assert!((g - e).abs() < 1e-5, "row ({i},{kk}): {g} vs {e}");
                }
            }
        }
        // Summed rows are the sums of the full rows over classes.
        let js = jacobian(&tape, logits, NtkMode::Summed, 4)?.to_vec2::<f32>()?;
        for i in 0..b {
            for p in 0..js[i].len() {
                let s: f32 = (0..k).map(|kk| j[i * k + kk][p]).sum();
                assert!((js[i][p] - s).abs() < 1e-5);
            }
        }
        Ok(())
    }

    #[test]
    fn condition_number_of_known_spectrum() -> Result<()> {
        let m = Tensor::from_vec(vec![4f64, 1.0, 1.0, 4.0], (2, 2), &cpu())?;
        // eigenvalues 5 and 3
        assert!((condition_number(&m)? - 5.0 / 3.0).abs() < 1e-12);
        let nan = Tensor::from_vec(vec![f64::NAN, 0.0, 0.0, 1.0], (2, 2), &cpu())?;
        assert_eq!(condition_number(&nan)?, NAN_CONDITION);
        Ok(())
    }
}
