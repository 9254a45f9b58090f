//! Zen-score (Lin et al., ICCV 2021, as AZ-NAS runs it): with N(0, 1) weights, how far the
//! pre-pooling features move when the Gaussian input is nudged by 0.01·ε, rescaled by the
//! batch norms' running variances. The score is ln Δ + Σ_BN ln sqrt(mean_c running_var),
//! Δ = mean_n Σ |f(x) − f(x + 0.01ε)|; the running variances are what two train-mode passes
//! leave on a fresh network (start 1, momentum 0.1, unbiased batch variances). A network
//! whose features do not move scores −∞.
use super::cell_proxy::{CellInput, CellProxy, InputKind};
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

/// The size of the nudge (Zen-NAS's `mixup_gamma`).
const NUDGE: f64 = 1e-2;
/// PyTorch's batch-norm momentum.
const MOMENTUM: f64 = 0.1;

pub struct Zen;

impl CellProxy for Zen {
    fn name(&self) -> &'static str {
        "zen"
    }

    fn components(&self) -> &'static [&'static str] {
        &["zen"]
    }

    fn input(&self) -> InputKind {
        InputKind::Noise
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::UnitNormal)?.frozen();
        let x = input.noise("zen.x")?;
        let nudged = (&x + (input.noise("zen.epsilon")? * NUDGE)?)?;
        let a = input.network.forward(&weights, &x, Norm::Batch)?;
        let b = input.network.forward(&weights, &nudged, Norm::Batch)?;
        let batch = input.batch as f64;
        let delta = (&a.pre_pool - &b.pre_pool)?
            .abs()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?
            / batch;
        let mut score = delta.ln();
        for ((va, n), (vb, _)) in a.bn_variances.iter().zip(&b.bn_variances) {
            let unbiased = *n as f64 / (*n as f64 - 1.0).max(1.0);
            let keep = 1.0 - MOMENTUM;
            let running = (va.affine(MOMENTUM * keep * unbiased, keep * keep)?
                + (vb * (MOMENTUM * unbiased))?)?;
            let mean = running
                .mean_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            score += mean.sqrt().ln();
        }
        Ok(vec![score])
    }
}
