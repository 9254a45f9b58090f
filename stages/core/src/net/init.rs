//! Seeded initialisation through candle-nn: each tensor's draw is described by a candle-nn
//! [`Init`] hint, and a [`VarBuilder`] backend draws it from one seeded stream.
//!
//! candle-nn's own `Init::var` draws from the device's generator, which on the CPU cannot be
//! seeded. Here the values come from a ChaCha8 stream on the host, tensor after tensor in the
//! order they are asked for, and then move to the device, so a seed gives the same weights on
//! every device and in every process.
use std::sync::Mutex;

use candle_core::{bail, DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// How one tensor's values are drawn: the candle-nn initialisers the seeded stream draws,
/// with their bounds in the f32 the values are drawn in (so a record reproduces them exactly).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorInit {
    /// Every value `value`; draws nothing from the stream.
    Const { value: f32 },
    /// U(lo, up): `rand`'s `random_range(lo..up)` on f32, one call per value.
    Uniform { lo: f32, up: f32 },
    /// N(mean, std²): `rand_distr::Normal<f32>`, one sample per value.
    Normal { mean: f32, std: f32 },
}

impl From<TensorInit> for Init {
    fn from(init: TensorInit) -> Init {
        match init {
            TensorInit::Const { value } => Init::Const(value.into()),
            TensorInit::Uniform { lo, up } => Init::Uniform {
                lo: lo.into(),
                up: up.into(),
            },
            TensorInit::Normal { mean, std } => Init::Randn {
                mean: mean.into(),
                stdev: std.into(),
            },
        }
    }
}

/// A [`VarBuilder`] backend that draws every tensor it is asked for from one seeded stream.
pub struct SeededInit {
    rng: Mutex<ChaCha8Rng>,
}

impl SeededInit {
    /// A builder of f32 tensors on `device`, drawn from `seed` in the order they are asked for.
    pub fn var_builder(seed: u64, device: &Device) -> VarBuilder<'static> {
        let backend = SeededInit {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        };
        VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
    }
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().expect("init stream lock");
        // The f64 bounds of the hint came from f32 ([`TensorInit`]), so the casts are exact.
        let values: Vec<f32> = match init {
            Init::Const(value) => vec![value as f32; n],
            Init::Uniform { lo, up } => {
                let (lo, up) = (lo as f32, up as f32);
                (0..n).map(|_| rng.random_range(lo..up)).collect()
            }
            Init::Randn { mean, stdev } => {
                let normal = Normal::new(mean as f32, stdev as f32)
                    .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
                (0..n).map(|_| normal.sample(&mut *rng)).collect()
            }
            Init::Kaiming { .. } => {
                bail!(
                    "{name}: the seeded stream draws Const, Uniform and Randn hints, not {init:?}"
                )
            }
        };
        Tensor::from_vec(values, shape, device)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        bail!("{name}: the seeded stream draws tensors of a given shape only")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, inits: &[(usize, TensorInit)]) -> Vec<Vec<f32>> {
        let vb = SeededInit::var_builder(seed, &Device::Cpu);
        inits
            .iter()
            .enumerate()
            .map(|(i, &(n, init))| {
                let t = vb.get_with_hints(n, &format!("t{i}"), init.into()).unwrap();
                t.to_vec1::<f32>().unwrap()
            })
            .collect()
    }

    /// The values are exactly those of the ChaCha8 stream read value by value, tensor after
    /// tensor, constants drawing nothing: the prune stage's weight draws depend on it.
    #[test]
    fn tensors_are_read_in_order_from_one_chacha_stream() {
        let inits = [
            (
                50,
                TensorInit::Uniform {
                    lo: -0.25,
                    up: 0.25,
                },
            ),
            (7, TensorInit::Const { value: 1.0 }),
            (
                40,
                TensorInit::Normal {
                    mean: 0.0,
                    std: 0.5,
                },
            ),
            (9, TensorInit::Uniform { lo: -1.0, up: 1.0 }),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let uniform = |rng: &mut ChaCha8Rng, n, b: f32| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(-b..b)).collect()
        };
        let first = uniform(&mut rng, 50, 0.25);
        let normal = Normal::new(0.0f32, 0.5).unwrap();
        let third: Vec<f32> = (0..40).map(|_| normal.sample(&mut rng)).collect();
        let fourth = uniform(&mut rng, 9, 1.0);
        let expected = vec![first, vec![1.0; 7], third, fourth];
        assert_eq!(draw(42, &inits), expected);
        assert_ne!(draw(43, &inits)[0], expected[0]);
    }

    #[test]
    fn an_implicit_kaiming_hint_is_refused_with_the_tensor_named() {
        let vb = SeededInit::var_builder(0, &Device::Cpu);
        let err = vb
            .get_with_hints((2, 2), "conv", candle_nn::init::DEFAULT_KAIMING_NORMAL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("conv") && err.contains("Kaiming"), "{err}");
    }
}
