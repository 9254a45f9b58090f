//! Named network parameters and their seeded initialisation (through candle-nn's
//! `VarBuilder`, see [`super::init`]).
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::init::{SeededInit, TensorInit};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

/// What a parameter is, which decides how it is initialised.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// Convolution or linear weight.
    Weight { fan_in: usize, fan_out: usize },
    /// Batch-norm scale.
    BnGamma,
    /// Batch-norm shift (the supernets have none; the benchmark's network has one).
    BnBeta,
    /// A linear layer's bias.
    Bias { fan_in: usize },
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
    /// N(0, 1) whatever the fan (Zen-NAS); BN gamma = 1.
    UnitNormal,
}

/// How networks are initialised (a hashed choice: the paper and the published code differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitMode {
    /// What the published code does: PyTorch's default init, drawn once and kept across
    /// repeats (its re-initialisation never runs); repeats differ only in the data.
    Reference,
    /// The paper: Kaiming normal (fan_out for the NTK net, fan_in for the thin net), drawn
    /// afresh for every repeat.
    Kaiming,
}

impl InitMode {
    /// The schemes of the NTK supernet and of the thin net.
    pub fn schemes(self) -> (InitScheme, InitScheme) {
        match self {
            InitMode::Reference => (InitScheme::TorchDefault, InitScheme::TorchDefault),
            InitMode::Kaiming => (InitScheme::KaimingFanOut, InitScheme::KaimingFanIn),
        }
    }
}

impl InitScheme {
    /// How the scheme draws a parameter of `kind`.
    pub fn tensor_init(self, kind: &ParamKind) -> TensorInit {
        match (kind, self) {
            (ParamKind::BnGamma, _) => TensorInit::Const { value: 1.0 },
            (ParamKind::BnBeta, _) => TensorInit::Const { value: 0.0 },
            (ParamKind::Bias { fan_in }, InitScheme::TorchDefault) => torch_uniform(*fan_in),
            (ParamKind::Bias { .. }, _) => TensorInit::Const { value: 0.0 },
            (ParamKind::Weight { fan_in, .. }, InitScheme::TorchDefault) => torch_uniform(*fan_in),
            (ParamKind::Weight { .. }, InitScheme::UnitNormal) => TensorInit::Normal {
                mean: 0.0,
                std: 1.0,
            },
            (ParamKind::Weight { fan_in, fan_out }, kaiming) => {
                let fan = if kaiming == InitScheme::KaimingFanIn {
                    *fan_in
                } else {
                    *fan_out
                };
                TensorInit::Normal {
                    mean: 0.0,
                    std: (2.0 / fan as f32).sqrt(),
                }
            }
        }
    }
}

/// PyTorch's default for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn torch_uniform(fan_in: usize) -> TensorInit {
    let bound = 1.0 / (fan_in as f32).sqrt();
    TensorInit::Uniform {
        lo: -bound,
        up: bound,
    }
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

    pub fn bn_shift(&mut self, name: String, c: usize) -> ParamId {
        self.push(name, vec![c], ParamKind::BnBeta)
    }

    pub fn bias(&mut self, name: String, out: usize, fan_in: usize) -> ParamId {
        self.push(name, vec![out], ParamKind::Bias { fan_in })
    }

    fn push(&mut self, name: String, shape: Vec<usize>, kind: ParamKind) -> ParamId {
        self.specs.push(ParamSpec { name, shape, kind });
        ParamId(self.specs.len() - 1)
    }

    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Draws every parameter from `seed` with `scheme`, in declaration order from one stream.
    pub fn init(&self, scheme: InitScheme, seed: u64, device: &Device) -> Result<Params> {
        let vb = SeededInit::var_builder(seed, device);
        let tensors = self
            .specs
            .iter()
            .map(|spec| {
                let init = scheme.tensor_init(&spec.kind).into();
                Ok(vb.get_with_hints(spec.shape.as_slice(), &spec.name, init)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Params {
            specs: self.specs.clone(),
            tensors,
        })
    }
}

/// Parameter values, indexed by [`ParamId`].
#[derive(Clone, Debug)]
pub struct Params {
    specs: Vec<ParamSpec>,
    tensors: Vec<Tensor>,
}

impl Params {
    /// The ids of every parameter, in the order they were specified (and drawn).
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.len()).map(ParamId)
    }

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

    /// The values as a candle-nn `VarMap` keyed by parameter name (`VarMap::save` writes them
    /// as safetensors).
    pub fn var_map(&self) -> Result<VarMap> {
        let map = VarMap::new();
        {
            let mut vars = map.data().lock().expect("a new map is unlocked");
            for (spec, tensor) in self.specs.iter().zip(&self.tensors) {
                vars.insert(spec.name.clone(), Var::from_tensor(tensor)?);
            }
        }
        Ok(map)
    }

    /// A copy with one parameter replaced (finite-difference checks perturb single weights).
    pub fn with_tensor(&self, id: ParamId, value: Tensor) -> Params {
        let mut out = self.clone();
        out.tensors[id.0] = value;
        out
    }
}
