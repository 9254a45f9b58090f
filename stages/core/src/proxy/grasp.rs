//! GraSP (Wang et al., 2020, as AZ-NAS runs it): Σ −θ ⊙ Hg over the conv and linear weights
//! θ, g = ∂L/∂θ and H the Hessian of the cross-entropy L of one real labelled batch. Higher is
//! better; it can be negative.
//!
//! The published code takes Hg by double backward, which candle's autograd does not have.
//! Here Hg is the central difference (g(θ + εg) − g(θ − εg)) / 2ε in f64, with ε a 1e-8
//! relative step, at twice the backward passes. The step must be that small: at 1e-5 it moves
//! enough ReLUs across their kinks to make gᵀHg disagree with the loss's curvature (see the
//! test); at 1e-8 f64 rounding costs about 1e-8 relative.
use candle_core::{DType, Tensor};

use super::cell_proxy::{sum_of, CellInput, CellProxy, InputKind};
use super::gradients::weight_gradients;
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::{BenchmarkNetwork, Weights};

/// The layer weights θ and H g (g = ∂L/∂θ) by the central difference; `None` when g = 0.
fn hessian_times_gradient(
    net: &BenchmarkNetwork,
    weights: &Weights,
    images: &Tensor,
    labels: &Tensor,
) -> Result<Option<(Vec<Tensor>, Vec<Tensor>)>> {
    let norm = |ts: &[Tensor]| -> Result<f64> {
        Ok(sum_of(
            ts.iter()
                .map(|t| t.sqr())
                .collect::<candle_core::Result<Vec<_>>>()?,
        )?
        .sqrt())
    };
    let g = weight_gradients(net, weights, images, labels)?;
    let g_norm = norm(&g)?;
    if g_norm == 0.0 {
        return Ok(None);
    }
    let theta: Vec<Tensor> = weights
        .layer_weights()
        .map(|v| v.as_tensor().clone())
        .collect();
    let eps = RELATIVE_STEP * norm(&theta)? / g_norm;
    let plus = weight_gradients(net, &weights.moved_along(&g, eps)?, images, labels)?;
    let minus = weight_gradients(net, &weights.moved_along(&g, -eps)?, images, labels)?;
    let hg = plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| Ok(((p - m)? / (2.0 * eps))?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some((theta, hg)))
}

/// ε·‖g‖ / ‖θ‖: the step relative to the weights.
const RELATIVE_STEP: f64 = 1e-8;

pub struct Grasp;

impl CellProxy for Grasp {
    fn name(&self) -> &'static str {
        "grasp"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
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
        let Some((theta, hg)) =
            hessian_times_gradient(input.network, &weights, &images, &batch.labels)?
        else {
            return Ok(vec![0.0]);
        };
        let terms = theta
            .iter()
            .zip(&hg)
            .map(|(t, hg)| Ok((t * hg)?.neg()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![sum_of(terms)?])
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::space::benchmark_net::Norm;
    use crate::space::nb201_arch::Arch;
    use crate::space::nb201_benchmark::BenchmarkNet;

    /// ⟨g, Hg⟩ from the gradient difference equals the second difference of the loss along
    /// g, (L(θ+hg) − 2L(θ) + L(θ−hg)) / h², so the Hessian-vector product is the Hessian's.
    #[test]
    fn the_hessian_vector_product_agrees_with_the_losss_curvature() {
        let config = BenchmarkNet {
            channels: 4,
            layers: 1,
            num_classes: 5,
            side: 8,
        };
        let arch = Arch::parse(
            "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
        )
        .unwrap();
        let net = BenchmarkNetwork::new(config, arch).unwrap();
        let dev = Device::Cpu;
        let w = net
            .init(InitScheme::KaimingFanIn, 4, &dev)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let v: Vec<f64> = (0..6 * 3 * 64)
            .map(|i| ((i * 7919 % 97) as f64 - 48.0) / 30.0)
            .collect();
        let x = Tensor::from_vec(v, (6, 3, 8, 8), &dev).unwrap();
        let y = Tensor::from_vec(vec![0u32, 1, 2, 3, 4, 0], 6, &dev).unwrap();
        let loss = |w: &Weights| -> f64 {
            let t = net.forward(w, &x, Norm::Batch).unwrap();
            candle_nn::loss::cross_entropy(&t.logits, &y)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let g = weight_gradients(&net, &w, &x, &y).unwrap();
        let (_, hg) = hessian_times_gradient(&net, &w, &x, &y).unwrap().unwrap();
        let g_hg = sum_of(g.iter().zip(&hg).map(|(g, hg)| (g * hg).unwrap())).unwrap();
        let h = 1e-5;
        let curvature = (loss(&w.moved_along(&g, h).unwrap()) - 2.0 * loss(&w)
            + loss(&w.moved_along(&g, -h).unwrap()))
            / (h * h);
        assert!(
            (g_hg - curvature).abs() < 1e-3 * curvature.abs().max(1e-6),
            "gᵀHg {g_hg} against the loss's curvature {curvature}"
        );
    }
}
