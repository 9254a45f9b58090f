//! GraSP (Wang et al., 2020, as AZ-NAS runs it): Σ −θ ⊙ Hg over the conv and linear weights
//! θ, g = ∂L/∂θ and H the Hessian of the cross-entropy L of one real labelled batch. Higher is
//! better; it can be negative.
//!
//! The published code takes Hg by double backward, which candle's autograd does not have.
//! Here Hg is the central difference (g(θ + εg) − g(θ − εg)) / 2ε in f64, with ε a 1e-5
//! relative step: its truncation and rounding errors (≈1e-10 relative) are far below the
//! proxy's spread, at twice the backward passes.
use candle_core::DType;

use super::cell_proxy::{sum_of, CellInput, CellProxy, InputKind};
use super::gradients::weight_gradients;
use crate::error::Result;
use crate::net::params::InitScheme;

/// ε·‖g‖ / ‖θ‖: the step relative to the weights.
const RELATIVE_STEP: f64 = 1e-5;

pub struct Grasp;

impl CellProxy for Grasp {
    fn name(&self) -> &'static str {
        "grasp"
    }

    fn components(&self) -> &'static [&'static str] {
        &["grasp"]
    }

    fn input(&self) -> InputKind {
        InputKind::LabelledImages
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input
            .weights(InitScheme::KaimingFanIn)?
            .to_dtype(DType::F64)?;
        let batch = input.data_batch(self.name(), 0)?;
        let images = batch.images.to_dtype(DType::F64)?;
        let net = input.network;
        let g = weight_gradients(net, &weights, &images, &batch.labels)?;
        let norm = |ts: Vec<candle_core::Tensor>| -> Result<f64> {
            Ok(sum_of(
                ts.iter()
                    .map(|t| t.sqr())
                    .collect::<candle_core::Result<Vec<_>>>()?,
            )?
            .sqrt())
        };
        let g_norm = norm(g.clone())?;
        if g_norm == 0.0 {
            return Ok(vec![0.0]);
        }
        let theta: Vec<_> = weights
            .layer_weights()
            .map(|v| v.as_tensor().clone())
            .collect();
        let eps = RELATIVE_STEP * norm(theta.clone())? / g_norm;
        let plus = weight_gradients(net, &weights.moved_along(&g, eps)?, &images, &batch.labels)?;
        let minus = weight_gradients(net, &weights.moved_along(&g, -eps)?, &images, &batch.labels)?;
        let terms = theta
            .iter()
            .zip(plus.iter().zip(&minus))
            .map(|(t, (p, m))| Ok((t * ((p - m)? / (-2.0 * eps))?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![sum_of(terms)?])
    }
}
