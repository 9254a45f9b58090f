//! NASWOT (Mellor et al., ICML 2021, as AZ-NAS runs it): how distinctly the ReLUs of the
//! network split a batch of Gaussian inputs. Each ReLU's input gives every sample a binary
//! code (which units are on); K[i][j] counts the units where samples i and j agree, summed
//! over every ReLU, and the score is ln |det K|. A network whose ReLUs see one code for all
//! samples has a singular K and scores −∞.
use candle_core::{DType, Tensor};

use super::cell_proxy::{host_values, CellInput, CellProxy, InputKind};
use super::linalg::Square;
use crate::error::Result;
use crate::net::params::InitScheme;
use crate::space::benchmark_net::Norm;

pub struct Naswot;

impl CellProxy for Naswot {
    fn name(&self) -> &'static str {
        "naswot"
    }

    fn components(&self) -> &'static [&'static str] {
        &["naswot"]
    }

    fn input(&self) -> InputKind {
        InputKind::Noise
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::KaimingFanIn)?.frozen();
        let x = input.noise("naswot")?;
        let trace = input.network.forward(&weights, &x, Norm::Batch)?;
        let b = input.batch;
        let mut k = vec![0.0; b * b];
        for relu_input in &trace.relu_inputs {
            let agreement = code_agreement(relu_input)?;
            for (sum, v) in k.iter_mut().zip(host_values(&agreement)?) {
                *sum += v;
            }
        }
        Ok(vec![Square::new(b, k).log_abs_det()])
    }
}

/// c cᵀ + (1 − c)(1 − c)ᵀ for the on/off codes c = [x > 0] of each sample (exact in f32:
/// the counts stay below 2²⁴).
fn code_agreement(x: &Tensor) -> Result<Tensor> {
    let b = x.dim(0)?;
    let on = x.gt(0.0)?.to_dtype(DType::F32)?.reshape((b, ()))?;
    let off = (1.0 - &on)?;
    Ok((on.matmul(&on.t()?)? + off.matmul(&off.t()?)?)?)
}
