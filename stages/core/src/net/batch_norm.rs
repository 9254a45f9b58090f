//! Batch normalisation with the batch's own statistics (a network in train mode), for
//! candle's autograd: `(x − μ_c) / √(σ²_c + ε) · γ_c + β_c` per channel c of an NCHW batch.
//!
//! On the CPU it is one op with a hand-written backward: composed of candle's ops it costs
//! about ten full-size temporaries and, in the backward, strided reductions that took a
//! quarter of a gradient proxy's time. Its statistics are summed in f64, its elementwise
//! arithmetic is in the tensor's dtype. Other devices compose candle's ops.
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_storage::{elements, tensor, unsupported, with_storage};

use crate::error::{Error, Result};

/// The normalised, scaled and shifted batch, and the per-channel batch variances σ²_c (a
/// tensor of shape `(c,)`, outside the autograd graph).
pub fn batch_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    let (b, c, h, w) = x.dims4()?;
    if gamma.elem_count() != c || beta.elem_count() != c {
        return Err(Error::Invalid(format!(
            "batch norm: {c} channels but {} scales and {} shifts",
            gamma.elem_count(),
            beta.elem_count()
        )));
    }
    if b * h * w == 0 {
        return Err(Error::Invalid(format!(
            "batch norm: an empty batch {:?}",
            x.dims()
        )));
    }
    if !x.device().is_cpu() {
        return composed(x, gamma, beta, eps);
    }
    let x = x.contiguous()?;
    let variance = with_storage(&x, OP, |s, l| {
        let stats = Planes::new(l.shape())?;
        Ok(match s {
            CpuStorage::F32(v) => CpuStorage::F32(stats.variances(elements(v, l, OP)?)),
            CpuStorage::F64(v) => CpuStorage::F64(stats.variances(elements(v, l, OP)?)),
            other => return Err(unsupported(other, OP)),
        })
    })?;
    let variance = tensor(variance, &Shape::from(c), OP)?;
    let op = BatchNorm { eps };
    let gamma = gamma.flatten_all()?.contiguous()?;
    let beta = beta.flatten_all()?.contiguous()?;
    let y = x.apply_op3(&gamma, &beta, op)?;
    debug_assert_eq!(y.dims4()?, (b, c, h, w));
    Ok((y, variance))
}

/// candle's ops, for devices other than the CPU.
fn composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    let c = x.dim(1)?;
    let channel_mean =
        |t: &Tensor| -> Result<Tensor> { Ok(t.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)?) };
    let mean = channel_mean(x)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = channel_mean(&centred.sqr()?)?;
    let scale = (&var + eps)?.sqrt()?;
    let shape = (1, c, 1, 1);
    let y = centred
        .broadcast_div(&scale)?
        .broadcast_mul(&gamma.reshape(shape)?)?
        .broadcast_add(&beta.reshape(shape)?)?;
    Ok((y, var.flatten_all()?.detach()))
}

const OP: &str = "batch-norm";

/// The element types of the op.
trait Float:
    Copy
    + Send
    + Sync
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Float for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
}

impl Float for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
}

/// An NCHW batch as `batch × channels` planes of `plane` elements.
#[derive(Clone, Copy)]
struct Planes {
    channels: usize,
    plane: usize,
    count: usize,
}

impl Planes {
    fn new(shape: &Shape) -> candle_core::Result<Planes> {
        let (b, c, h, w) = shape.dims4()?;
        Ok(Planes {
            channels: c,
            plane: h * w,
            count: b * h * w,
        })
    }

    /// The element range of plane `i` (image `i / channels`, channel `i % channels`).
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        i * self.plane..(i + 1) * self.plane
    }

    /// Σ f(element index) over channel `c`'s elements, image by image, in f64.
    fn sum(&self, c: usize, f: impl Fn(usize) -> f64) -> f64 {
        let images = self.count / self.plane;
        (0..images)
            .map(|b| self.range(b * self.channels + c).map(&f).sum::<f64>())
            .sum()
    }

    /// Each channel's mean and variance, two-pass.
    fn moments<T: Float>(&self, x: &[T]) -> Vec<(f64, f64)> {
        let n = self.count as f64;
        (0..self.channels)
            .into_par_iter()
            .map(|c| {
                let mean = self.sum(c, |i| x[i].to_f64()) / n;
                let var = self.sum(c, |i| (x[i].to_f64() - mean).powi(2)) / n;
                (mean, var)
            })
            .collect()
    }

    fn variances<T: Float>(&self, x: &[T]) -> Vec<T> {
        self.moments(x)
            .into_iter()
            .map(|(_, v)| T::from_f64(v))
            .collect()
    }

    /// A tensor of `len` elements whose plane `i` is `f(i, channel, plane's range)`.
    fn map_planes<T: Float>(
        &self,
        len: usize,
        f: impl Fn(usize, std::ops::Range<usize>, &mut [T]) + Sync,
    ) -> Vec<T> {
        let mut out = vec![T::default(); len];
        out.par_chunks_mut(self.plane)
            .enumerate()
            .for_each(|(i, o)| f(i % self.channels, self.range(i), o));
        out
    }
}

struct BatchNorm {
    eps: f64,
}

/// Per channel: the batch mean μ_c and 1/√(σ²_c + ε).
struct Normaliser<T> {
    mean: Vec<T>,
    inv_scale: Vec<T>,
}

impl<T: Float> Normaliser<T> {
    fn new(planes: &Planes, x: &[T], eps: f64) -> Normaliser<T> {
        let (mean, inv_scale) = planes
            .moments(x)
            .into_iter()
            .map(|(m, v)| (T::from_f64(m), T::from_f64(1.0 / (v + eps).sqrt())))
            .unzip();
        Normaliser { mean, inv_scale }
    }

    fn forward(&self, planes: &Planes, x: &[T], gamma: &[T], beta: &[T]) -> Vec<T> {
        planes.map_planes(x.len(), |c, range, y| {
            let (m, s, g, b) = (self.mean[c], self.inv_scale[c], gamma[c], beta[c]);
            for (y, &x) in y.iter_mut().zip(&x[range]) {
                *y = (x - m) * s * g + b;
            }
        })
    }

    /// ∂L/∂x, ∂L/∂γ and ∂L/∂β given ∂L/∂y.
    fn backward(&self, planes: &Planes, x: &[T], gamma: &[T], dy: &[T]) -> [Vec<T>; 3] {
        // Σ dy and Σ dy·x̂ per channel, in f64.
        let sums: Vec<(f64, f64)> = (0..planes.channels)
            .into_par_iter()
            .map(|c| {
                let (m, s) = (self.mean[c].to_f64(), self.inv_scale[c].to_f64());
                let xhat = |i: usize| (x[i].to_f64() - m) * s;
                (
                    planes.sum(c, |i| dy[i].to_f64()),
                    planes.sum(c, |i| dy[i].to_f64() * xhat(i)),
                )
            })
            .collect();
        let n = planes.count as f64;
        // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)).
        let dx = planes.map_planes(x.len(), |c, range, dx| {
            let (m, s) = (self.mean[c], self.inv_scale[c]);
            let mean_dy = T::from_f64(sums[c].0 / n);
            let mean_dy_xhat = T::from_f64(sums[c].1 / n);
            let k = gamma[c] * s;
            for ((d, &v), &g) in dx.iter_mut().zip(&x[range.clone()]).zip(&dy[range]) {
                *d = k * (g - mean_dy - (v - m) * s * mean_dy_xhat);
            }
        });
        let dgamma = sums.iter().map(|&(_, b)| T::from_f64(b)).collect();
        let dbeta = sums.iter().map(|&(a, _)| T::from_f64(a)).collect();
        [dx, dgamma, dbeta]
    }
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let planes = Planes::new(l1.shape())?;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(g), CpuStorage::F32(b)) => {
                let x = elements(x, l1, OP)?;
                let norm = Normaliser::new(&planes, x, self.eps);
                CpuStorage::F32(norm.forward(
                    &planes,
                    x,
                    elements(g, l2, OP)?,
                    elements(b, l3, OP)?,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(g), CpuStorage::F64(b)) => {
                let x = elements(x, l1, OP)?;
                let norm = Normaliser::new(&planes, x, self.eps);
                CpuStorage::F64(norm.forward(
                    &planes,
                    x,
                    elements(g, l2, OP)?,
                    elements(b, l3, OP)?,
                ))
            }
            _ => return Err(unsupported(s1, OP)),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let planes = Planes::new(x.shape())?;
        let (grad, gamma_c) = (grad.contiguous()?, gamma.contiguous()?);
        let [dx, dgamma, dbeta] = with_storage(x, OP, |sx, lx| {
            with_storage(&gamma_c, OP, |sg, lg| {
                with_storage(&grad, OP, |sd, ld| match (sx, sg, sd) {
                    (CpuStorage::F32(x), CpuStorage::F32(g), CpuStorage::F32(d)) => {
                        let x = elements(x, lx, OP)?;
                        let norm = Normaliser::new(&planes, x, self.eps);
                        let grads =
                            norm.backward(&planes, x, elements(g, lg, OP)?, elements(d, ld, OP)?);
                        Ok(grads.map(CpuStorage::F32))
                    }
                    (CpuStorage::F64(x), CpuStorage::F64(g), CpuStorage::F64(d)) => {
                        let x = elements(x, lx, OP)?;
                        let norm = Normaliser::new(&planes, x, self.eps);
                        let grads =
                            norm.backward(&planes, x, elements(g, lg, OP)?, elements(d, ld, OP)?);
                        Ok(grads.map(CpuStorage::F64))
                    }
                    _ => Err(unsupported(sx, OP)),
                })
            })
        })?;
        // The three come from one pass; frozen affine parameters just get none back.
        let reached =
            |t: &Tensor, g: CpuStorage| t.track_op().then(|| tensor(g, t.shape(), OP)).transpose();
        Ok((
            reached(x, dx)?,
            reached(gamma, dgamma)?,
            reached(beta, dbeta)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.shape(), b.shape());
        let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
        d.max(0).unwrap().to_scalar::<f64>().unwrap()
    }

    /// Values, variances and the three gradients of a weighted sum of the output.
    fn run(fused: bool) -> Vec<Tensor> {
        let d = Device::Cpu;
        let ramp = |n: usize, phase: f64, shape: &[usize]| {
            let v: Vec<f64> = (0..n)
                .map(|i| (i as f64 * 0.61 + phase).sin() * 3.0)
                .collect();
            Var::from_tensor(&Tensor::from_vec(v, shape, &d).unwrap()).unwrap()
        };
        let x = ramp(3 * 4 * 5 * 6, 0.3, &[3, 4, 5, 6]);
        let gamma = ramp(4, 1.1, &[4]);
        let beta = ramp(4, 2.0, &[4]);
        let (y, var) = match fused {
            true => batch_norm(&x, &gamma, &beta, 1e-5).unwrap(),
            false => composed(&x, &gamma, &beta, 1e-5).unwrap(),
        };
        let weights = Tensor::arange(0u32, y.elem_count() as u32, &d)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .reshape(y.shape())
            .unwrap()
            .cos()
            .unwrap();
        let grads = (&y * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grad = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        vec![y.clone(), var, grad(&x), grad(&gamma), grad(&beta)]
    }

    #[test]
    fn the_cpu_op_matches_candles_composed_ops_and_their_autograd() {
        let (fused, composed) = (run(true), run(false));
        for (name, (a, b)) in ["y", "σ²", "∂x", "∂γ", "∂β"]
            .iter()
            .zip(fused.iter().zip(&composed))
        {
            assert!(max_diff(a, b) < 1e-10, "{name}: {}", max_diff(a, b));
        }
    }

    #[test]
    fn mismatched_scales_and_empty_batches_are_errors() {
        let x = Tensor::zeros((2, 3, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let two = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
        assert!(batch_norm(&x, &two, &two, 1e-5).is_err());
        let empty = Tensor::zeros((0, 2, 2, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(batch_norm(&empty, &two, &two, 1e-5).is_err());
    }
}
