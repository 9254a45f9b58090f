//! A forward tape over candle tensors, and the entry to its backward passes for many
//! cotangents at once.
//!
//! The NTK needs one vector-Jacobian product per output row. Backward is linear in the
//! cotangent and the forward activations are the same for every row, so the tape runs the
//! forward once and pushes a stack of `T` cotangents back: every weight gradient comes out as a
//! `(T, numel)` matrix. On the CPU in f32 the rows go one at a time in batch-last layout
//! (`row_backward`), which keeps each row's maps in cache; elsewhere all rows go through one
//! stacked pass (`stacked_backward`). Neither is `T` separate backward passes; `backward`
//! chooses between them.
use candle_core::{DType, Tensor};

use super::kernels::{box_sum3, Conv};
use super::params::{ParamId, Params};
use crate::error::{Error, Result};

/// A value recorded on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub(super) usize);

/// Geometry of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCfg {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl ConvCfg {
    pub fn same(kernel: usize) -> Self {
        ConvCfg {
            stride: 1,
            padding: kernel / 2,
            dilation: 1,
            groups: 1,
        }
    }

    pub(super) fn kernel(&self) -> Conv {
        Conv {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

const BN_EPS: f64 = 1e-5;

pub(super) enum Op {
    Input,
    Relu {
        x: Var,
        mask: Tensor,
    },
    Conv {
        x: Var,
        weight: ParamId,
        cfg: ConvCfg,
    },
    /// Train-mode batch norm with affine scale `gamma` and zero shift.
    BatchNorm {
        x: Var,
        gamma: ParamId,
        xhat: Tensor,
        scale: Tensor,
    },
    WeightedSum {
        terms: Vec<(Var, f64)>,
    },
    /// 3x3, stride 1, padding 1, count_include_pad = false.
    AvgPool3 {
        x: Var,
        inv_count: Tensor,
    },
    MaxPool3 {
        x: Var,
        stride: usize,
    },
    /// 2x2, stride 2.
    AvgPool2 {
        x: Var,
    },
    GlobalAvgPool {
        x: Var,
    },
    Linear {
        x: Var,
        weight: ParamId,
    },
    /// Channel concatenation.
    Concat {
        xs: Vec<Var>,
    },
    /// Shifts the map up and left by one pixel, zero-filling the last row and column
    /// (FactorizedReduce's shifted path: pad right and bottom, drop the first row and column).
    Shift {
        x: Var,
    },
    /// Keeps every second row and column, starting with the first (a stride-2 sample).
    Subsample2 {
        x: Var,
    },
}

pub(super) struct Node {
    pub(super) op: Op,
    pub(super) value: Tensor,
}

/// The recorded forward pass of one network on one batch.
pub struct Tape<'p> {
    pub(super) params: &'p Params,
    pub(super) nodes: Vec<Node>,
}

impl<'p> Tape<'p> {
    pub fn new(params: &'p Params) -> Self {
        Tape {
            params,
            nodes: Vec::new(),
        }
    }

    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    fn push(&mut self, op: Op, value: Tensor) -> Var {
        self.nodes.push(Node { op, value });
        Var(self.nodes.len() - 1)
    }

    pub fn input(&mut self, x: Tensor) -> Var {
        self.push(Op::Input, x)
    }

    pub fn relu(&mut self, x: Var) -> Result<Var> {
        let value = self.value(x).relu()?;
        let mask = value.gt(0f64)?.to_dtype(value.dtype())?;
        Ok(self.push(Op::Relu { x, mask }, value))
    }

    pub fn conv(&mut self, x: Var, weight: ParamId, cfg: ConvCfg) -> Result<Var> {
        let w = self.params.tensor(weight);
        let value = cfg.kernel().apply(self.value(x), w)?;
        Ok(self.push(Op::Conv { x, weight, cfg }, value))
    }

    pub fn batch_norm(&mut self, x: Var, gamma: ParamId) -> Result<Var> {
        let xv = self.value(x);
        let mean = xv.mean_keepdim((0, 2, 3))?;
        let centered = xv.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim((0, 2, 3))?;
        let inv_std = (var + BN_EPS)?.sqrt()?.recip()?;
        let xhat = centered.broadcast_mul(&inv_std)?;
        let g = self.params.tensor(gamma).reshape((1, (), 1, 1))?;
        let value = xhat.broadcast_mul(&g)?;
        let scale = g.mul(&inv_std)?;
        Ok(self.push(
            Op::BatchNorm {
                x,
                gamma,
                xhat,
                scale,
            },
            value,
        ))
    }

    pub fn weighted_sum(&mut self, terms: Vec<(Var, f64)>) -> Result<Var> {
        let mut acc: Option<Tensor> = None;
        for &(v, w) in &terms {
            let t = scaled(self.value(v), w)?;
            acc = Some(match acc {
                None => t,
                Some(a) => (a + t)?,
            });
        }
        let value = acc.ok_or_else(|| Error::Invalid("weighted sum of no terms".into()))?;
        Ok(self.push(Op::WeightedSum { terms }, value))
    }

    /// 3x3 average pooling, padding 1, count_include_pad = false, stride 1 or 2 (stride 2 is
    /// the stride-1 pool sampled at even positions: the same windows).
    pub fn avg_pool3(&mut self, x: Var, stride: usize) -> Result<Var> {
        let xv = self.value(x);
        let (_, _, h, w) = xv.dims4()?;
        let inv_count = inverse_window_counts(h, w, xv.device(), xv.dtype())?;
        let value = box_sum3(xv)?.broadcast_mul(&inv_count)?;
        let pooled = self.push(Op::AvgPool3 { x, inv_count }, value);
        match stride {
            1 => Ok(pooled),
            2 => self.subsample2(pooled),
            _ => Err(Error::Invalid(format!("avg pool stride {stride} (1 or 2)"))),
        }
    }

    pub fn subsample2(&mut self, x: Var) -> Result<Var> {
        let value = subsample2(self.value(x))?;
        Ok(self.push(Op::Subsample2 { x }, value))
    }

    pub fn max_pool3(&mut self, x: Var, stride: usize) -> Result<Var> {
        let padded = pad_neg_inf(self.value(x))?;
        let value = padded.max_pool2d_with_stride(3, stride)?;
        Ok(self.push(Op::MaxPool3 { x, stride }, value))
    }

    pub fn avg_pool2(&mut self, x: Var) -> Result<Var> {
        let value = self.value(x).avg_pool2d(2)?;
        Ok(self.push(Op::AvgPool2 { x }, value))
    }

    pub fn global_avg_pool(&mut self, x: Var) -> Result<Var> {
        let value = self.value(x).mean((2, 3))?;
        Ok(self.push(Op::GlobalAvgPool { x }, value))
    }

    pub fn linear(&mut self, x: Var, weight: ParamId) -> Result<Var> {
        let value = self.value(x).matmul(&self.params.tensor(weight).t()?)?;
        Ok(self.push(Op::Linear { x, weight }, value))
    }

    pub fn concat(&mut self, xs: Vec<Var>) -> Result<Var> {
        let values: Vec<&Tensor> = xs.iter().map(|&v| self.value(v)).collect();
        let value = Tensor::cat(&values, 1)?;
        Ok(self.push(Op::Concat { xs }, value))
    }

    pub fn shift(&mut self, x: Var) -> Result<Var> {
        let xv = self.value(x);
        let (_, _, h, w) = xv.dims4()?;
        let value = xv
            .narrow(2, 1, h - 1)?
            .narrow(3, 1, w - 1)?
            .pad_with_zeros(2, 0, 1)?
            .pad_with_zeros(3, 0, 1)?;
        Ok(self.push(Op::Shift { x }, value))
    }

    /// The recorded ReLU outputs whose input is a feature map, in execution order.
    pub fn relu_outputs(&self) -> impl Iterator<Item = &Tensor> {
        self.nodes.iter().filter_map(|n| match n.op {
            Op::Relu { .. } if n.value.rank() == 4 => Some(&n.value),
            _ => None,
        })
    }
}

pub(super) fn scaled(t: &Tensor, w: f64) -> Result<Tensor> {
    Ok(if w == 1.0 { t.clone() } else { (t * w)? })
}

/// `x[:, :, ::2, ::2]`.
pub(super) fn subsample2(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let even = x
        .pad_with_zeros(2, 0, 2 * h2 - h)?
        .pad_with_zeros(3, 0, 2 * w2 - w)?
        .reshape((n, c, h2, 2, w2, 2))?;
    Ok(even
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((n, c, h2, w2))?)
}

/// Pads height and width by one with -inf (max pooling's padding).
pub(super) fn pad_neg_inf(x: &Tensor) -> Result<Tensor> {
    let value = f32::NEG_INFINITY;
    let (n, c, h, w) = x.dims4()?;
    let row = Tensor::full(value, (n, c, 1, w), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&row, x, &row], 2)?;
    let col = Tensor::full(value, (n, c, h + 2, 1), x.device())?.to_dtype(x.dtype())?;
    Ok(Tensor::cat(&[&col, &x, &col], 3)?)
}

/// 1 / (number of in-bounds cells of each 3x3 window), shape `(1, 1, h, w)`.
fn inverse_window_counts(
    h: usize,
    w: usize,
    device: &candle_core::Device,
    dtype: DType,
) -> Result<Tensor> {
    let span = |i: usize, n: usize| (i.min(1) + 1 + usize::from(i + 1 < n)) as f32;
    let data: Vec<f32> = (0..h)
        .flat_map(|y| (0..w).map(move |x| 1.0 / (span(y, h) * span(x, w))))
        .collect();
    Ok(Tensor::from_vec(data, (1, 1, h, w), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::params::{InitScheme, ParamSpecs};
    use candle_core::{Device, IndexOp};

    /// conv1x1 → relu → {max pool /2, avg pool /2, shift → strided 1x1 conv} → concat → BN →
    /// head.
    fn graph<'p>(
        p: &'p Params,
        x: &Tensor,
        [w1, w2, gamma, w3]: [ParamId; 4],
    ) -> Result<(Tape<'p>, Var)> {
        let mut tape = Tape::new(p);
        let input = tape.input(x.clone());
        let a = tape.conv(input, w1, ConvCfg::same(1))?;
        let r = tape.relu(a)?;
        let pooled = tape.max_pool3(r, 2)?;
        let shifted = tape.shift(r)?;
        let strided = tape.conv(
            shifted,
            w2,
            ConvCfg {
                stride: 2,
                ..ConvCfg::same(1)
            },
        )?;
        let averaged = tape.avg_pool3(r, 2)?;
        let cat = tape.concat(vec![pooled, strided, averaged])?;
        let bn = tape.batch_norm(cat, gamma)?;
        let gap = tape.global_avg_pool(bn)?;
        let logits = tape.linear(gap, w3)?;
        Ok((tape, logits))
    }

    /// The ops the NB201 gradient check does not reach (max pool, strided avg pool, channel
    /// concat, the shift, strided 1x1 conv) against f64 central differences, on an odd-sized
    /// map so the zero fill and the last window matter.
    #[test]
    fn reduction_ops_match_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let mut specs = ParamSpecs::default();
        let w1 = specs.conv("w1".into(), 2, 2, 1);
        let w2 = specs.conv("w2".into(), 2, 2, 1);
        let gamma = specs.bn("gamma".into(), 6);
        let w3 = specs.linear("w3".into(), 3, 6);
        let params = specs
            .init(InitScheme::KaimingFanIn, 3, &dev)?
            .to_dtype(DType::F64)?;
        let x = Tensor::randn(0f64, 1.0, (3, 2, 7, 7), &dev)?;
        let ids = [w1, w2, gamma, w3];
        let (tape, logits) = graph(&params, &x, ids)?;
        let cot = Tensor::eye(3, DType::F64, &dev)?
            .unsqueeze(2)?
            .broadcast_as((3, 3, 3))?
            .contiguous()?;
        let grads = tape.backward(logits, &cot)?;
        for (id, g) in &grads {
            let flat = params.tensor(*id).flatten_all()?.to_vec1::<f64>()?;
            let shape = params.tensor(*id).shape().clone();
            for elem in 0..flat.len() {
                let bump = |delta: f64| -> Result<Vec<f64>> {
                    let mut v = flat.clone();
                    v[elem] += delta;
                    let p = params.with_tensor(*id, Tensor::from_vec(v, shape.clone(), &dev)?);
                    let (tape, logits) = graph(&p, &x, ids)?;
                    Ok(tape.value(logits).sum(1)?.to_vec1::<f64>()?)
                };
                let (up, down) = (bump(1e-6)?, bump(-1e-6)?);
                for i in 0..3 {
                    let fd = (up[i] - down[i]) / 2e-6;
                    let an = g.i((i, elem))?.to_scalar::<f64>()?;
                    let name = &params.spec(*id).name;
                    assert!(
                        (fd - an).abs() <= 1e-6 * (1.0 + fd.abs()),
                        "{name}[{elem}] sample {i}: fd {fd} vs {an}"
                    );
                }
            }
        }
        assert_eq!(grads.len(), 4);
        Ok(())
    }
}
