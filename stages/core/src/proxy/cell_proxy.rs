//! What a training-free proxy of one cell is: a name, the named components it yields, the
//! input it needs and its settings; and what it is given to compute them.
//!
//! A proxy is deterministic given its seed: the weights, the Gaussian inputs and any random
//! labels come from streams derived from it. A value the published code would give as NaN
//! (a zero feature map, an overflow) is −∞ here, so that it ranks last and never enters a
//! ranking as NaN.
use candle_core::{DType, Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::pool::ImagePool;
use crate::error::{Error, Result};
use crate::net::params::InitScheme;
use crate::seeds;
use crate::space::benchmark_net::{BenchmarkNetwork, Weights};

/// What a proxy feeds the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Nothing: the value follows from the arch (params, FLOPs).
    None,
    /// Gaussian noise N(0, 1), drawn from the seed.
    Noise,
    /// Real training images (their labels unused).
    Images,
    /// Real training images with their labels.
    LabelledImages,
}

/// A batch of real images `(B, 3, side, side)` and their classes `(B,)` as u32.
#[derive(Clone, Debug)]
pub struct LabelledBatch {
    pub images: Tensor,
    pub labels: Tensor,
}

impl LabelledBatch {
    /// Images `first .. first + batch` of `pool` in stored order, normalised with the
    /// dataset's mean and std, without augmentation (the reference harness's batches).
    pub fn from_pool(
        pool: &ImagePool,
        first: usize,
        batch: usize,
        device: &Device,
    ) -> Result<LabelledBatch> {
        if first + batch > pool.n {
            return Err(Error::Invalid(format!(
                "asked for images {first}..{} of a pool of {}",
                first + batch,
                pool.n
            )));
        }
        let (mean, std) = (pool.dataset.mean(), pool.dataset.std());
        let side = pool.dataset.side();
        let plane = side * side;
        let images: Vec<f32> = (first..first + batch)
            .flat_map(|i| {
                pool.image(i).iter().enumerate().map(move |(k, &byte)| {
                    let c = k / plane;
                    ((f64::from(byte) / 255.0 - mean[c]) / std[c]) as f32
                })
            })
            .collect();
        let labels: Vec<u32> = pool.labels[first..first + batch]
            .iter()
            .map(|&l| u32::from(l))
            .collect();
        Ok(LabelledBatch {
            images: Tensor::from_vec(images, (batch, 3, side, side), device)?,
            labels: Tensor::from_vec(labels, batch, device)?,
        })
    }
}

/// Everything one proxy computes on: the network of the cell, the seed, the batch size and
/// the real batches (as many as the proxy asks for, for proxies that need data).
pub struct CellInput<'a> {
    pub network: &'a BenchmarkNetwork,
    pub seed: u64,
    pub batch: usize,
    pub device: &'a Device,
    pub data: &'a [LabelledBatch],
}

impl CellInput<'_> {
    /// The network's weights drawn with `scheme` from this proxy's weight stream.
    pub fn weights(&self, scheme: InitScheme) -> Result<Weights> {
        let seed = seeds::derive(self.seed, &[&"weights"]);
        self.network.init(scheme, seed, self.device)
    }

    /// Gaussian noise `(batch, 3, side, side)` from the stream named `purpose`.
    pub fn noise(&self, purpose: &str) -> Result<Tensor> {
        let side = self.network.config().side;
        let shape = (self.batch, 3, side, side);
        let mut rng = ChaCha8Rng::seed_from_u64(seeds::derive(self.seed, &[&"noise", &purpose]));
        let n = self.batch * 3 * side * side;
        let values: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        Ok(Tensor::from_vec(values, shape, self.device)?)
    }

    /// `len` random ±1 values shaped like `like` (Rademacher), from the stream `purpose`.
    pub fn rademacher(&self, like: &Tensor, purpose: &str) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seeds::derive(self.seed, &[&"sign", &purpose]));
        let values: Vec<f32> = (0..like.elem_count())
            .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
            .collect();
        Ok(Tensor::from_vec(values, like.shape(), self.device)?.to_dtype(like.dtype())?)
    }

    /// Uniform random classes `(batch,)` from the stream `purpose`.
    pub fn random_labels(&self, purpose: &str) -> Result<Tensor> {
        let classes = self.network.config().num_classes as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(seeds::derive(self.seed, &[&"label", &purpose]));
        let labels: Vec<u32> = (0..self.batch)
            .map(|_| rng.random_range(0..classes))
            .collect();
        Ok(Tensor::from_vec(labels, self.batch, self.device)?)
    }

    /// Real batch `i`, or an error naming the proxy that needs it.
    pub fn data_batch(&self, proxy: &str, i: usize) -> Result<&LabelledBatch> {
        self.data.get(i).ok_or_else(|| {
            Error::Invalid(format!(
                "{proxy} needs {} real batch(es) of images, {} given",
                i + 1,
                self.data.len()
            ))
        })
    }
}

/// A training-free proxy of one cell.
pub trait CellProxy: Send + Sync {
    /// The proxy's name in experiment files and tables.
    fn name(&self) -> &'static str;

    /// Raised when a change alters the values, so that cached scores are recomputed.
    fn version(&self) -> u32 {
        1
    }

    /// The components it yields, in the order [`CellProxy::compute`] returns them; a proxy
    /// with one component names it after itself.
    fn components(&self) -> &'static [&'static str];

    fn input(&self) -> InputKind;

    /// How many real batches it reads (0 for noise and arch-only proxies).
    fn data_batches(&self) -> usize {
        match self.input() {
            InputKind::Images | InputKind::LabelledImages => 1,
            InputKind::None | InputKind::Noise => 0,
        }
    }

    /// The component values of the cell. Higher is better for every component.
    fn compute(&self, input: &CellInput) -> Result<Vec<f64>>;
}

/// `proxy`'s components of the cell, NaN replaced by −∞ (ranked last, with ties).
pub fn evaluate(proxy: &dyn CellProxy, input: &CellInput) -> Result<Vec<f64>> {
    let values = proxy.compute(input)?;
    debug_assert_eq!(values.len(), proxy.components().len());
    Ok(values
        .into_iter()
        .map(|v| if v.is_nan() { f64::NEG_INFINITY } else { v })
        .collect())
}

/// The values of a tensor as f64.
pub fn host_values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// Σ over tensors of Σ f(elements), in f64.
pub fn sum_of(tensors: impl IntoIterator<Item = Tensor>) -> Result<f64> {
    let mut total = 0.0;
    for t in tensors {
        total += t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok(total)
}
