//! Named network parameters and their seeded initialisation.
//!
//! Values are drawn on the host from a seeded ChaCha stream and then moved to the device, so
//! a seed gives the same weights on every device.
use candle_core::{Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

/// What a parameter is, which decides how it is initialised.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// Convolution or linear weight.
    Weight { fan_in: usize, fan_out: usize },
    /// Batch-norm scale (its shift is always zero here and never scored).
    BnGamma,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: ParamKind,
}

/// How weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// PyTorch's construction default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BN gamma = 1.
    TorchDefault,
    /// Kaiming normal for ReLU, std = sqrt(2 / fan_in); BN gamma = 1.
    KaimingFanIn,
    /// Kaiming normal for ReLU, std = sqrt(2 / fan_out); BN gamma = 1.
    KaimingFanOut,
}

/// The parameter list of a network, declared in a fixed order.
#[derive(Default, Clone, Debug)]
pub struct ParamSpecs {
    specs: Vec<ParamSpec>,
}

impl ParamSpecs {
    pub fn conv(&mut self, name: String, cout: usize, cin_per_group: usize, k: usize) -> ParamId {
        let kind = ParamKind::Weight {
            fan_in: cin_per_group * k * k,
            fan_out: cout * k * k,
        };
        self.push(name, vec![cout, cin_per_group, k, k], kind)
    }

    pub fn linear(&mut self, name: String, out: usize, inp: usize) -> ParamId {
        self.push(
            name,
            vec![out, inp],
            ParamKind::Weight {
                fan_in: inp,
                fan_out: out,
            },
        )
    }

    pub fn bn(&mut self, name: String, c: usize) -> ParamId {
        self.push(name, vec![c], ParamKind::BnGamma)
    }

    fn push(&mut self, name: String, shape: Vec<usize>, kind: ParamKind) -> ParamId {
        self.specs.push(ParamSpec { name, shape, kind });
        ParamId(self.specs.len() - 1)
    }

    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Draws every parameter from `seed` with `scheme`.
    pub fn init(&self, scheme: InitScheme, seed: u64, device: &Device) -> Result<Params> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tensors = self
            .specs
            .iter()
            .map(|spec| {
                let data = draw(&spec.kind, spec.shape.iter().product(), scheme, &mut rng);
                Ok(Tensor::from_vec(data, spec.shape.as_slice(), device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Params {
            specs: self.specs.clone(),
            tensors,
        })
    }
}

fn draw(kind: &ParamKind, n: usize, scheme: InitScheme, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match (kind, scheme) {
        (ParamKind::BnGamma, _) => vec![1.0; n],
        (ParamKind::Weight { fan_in, .. }, InitScheme::TorchDefault) => {
            let bound = 1.0 / (*fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        }
        (ParamKind::Weight { fan_in, fan_out }, kaiming) => {
            let fan = if kaiming == InitScheme::KaimingFanIn {
                *fan_in
            } else {
                *fan_out
            };
            let normal = Normal::new(0.0, (2.0 / fan as f32).sqrt()).expect("finite std");
            (0..n).map(|_| normal.sample(rng)).collect()
        }
    }
}

/// Parameter values, indexed by [`ParamId`].
#[derive(Clone, Debug)]
pub struct Params {
    specs: Vec<ParamSpec>,
    tensors: Vec<Tensor>,
}

impl Params {
    pub fn tensor(&self, id: ParamId) -> &Tensor {
        &self.tensors[id.0]
    }

    pub fn spec(&self, id: ParamId) -> &ParamSpec {
        &self.specs[id.0]
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The same values in another dtype (gradient checks run in f64).
    pub fn to_dtype(&self, dtype: candle_core::DType) -> Result<Params> {
        let tensors = self
            .tensors
            .iter()
            .map(|t| t.to_dtype(dtype))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Params {
            specs: self.specs.clone(),
            tensors,
        })
    }

    /// A copy with one parameter replaced (finite-difference checks perturb single weights).
    pub fn with_tensor(&self, id: ParamId, value: Tensor) -> Params {
        let mut out = self.clone();
        out.tensors[id.0] = value;
        out
    }
}
