//! The backward pass for a stack of cotangents on any device: all `T` rows go through one
//! pass, every activation cotangent shaped `(T * B, ...)`, with candle's tensor ops (so the
//! data stays on its device).
use candle_core::Tensor;

use super::kernels::box_sum3;
use super::params::ParamId;
use super::tape::{pad_neg_inf, scaled, subsample2, ConvCfg, Op, Tape, Var};
use crate::error::Result;

impl Tape<'_> {
    /// [`Tape::backward`] with all `T` cotangents stacked along the batch: every activation
    /// cotangent is `(T * B, ...)`.
    pub fn backward_stacked(&self, out: Var, cotangent: &Tensor) -> Result<Vec<(ParamId, Tensor)>> {
        let t = cotangent.dim(0)?;
        let batch = self.value(out).dim(0)?;
        let mut cot: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        cot[out.0] = Some(cotangent.flatten_to(1)?);
        let mut grads = Vec::new();
        for idx in (0..=out.0).rev() {
            let Some(g) = cot[idx].take() else { continue };
            let node = &self.nodes[idx];
            match &node.op {
                Op::Input => {}
                Op::Relu { x, mask } => {
                    accumulate(&mut cot, *x, mul_each(&g, mask)?)?;
                }
                Op::Conv { x, weight, cfg } => {
                    let xv = self.value(*x);
                    let w = self.params.tensor(*weight);
                    grads.push((*weight, conv_weight_grad(xv, &g, w, *cfg, t)?));
                    if !matches!(self.nodes[x.0].op, Op::Input) {
                        let (_, _, h, wd) = xv.dims4()?;
                        accumulate(&mut cot, *x, cfg.kernel().input_grad(&g, w, h, wd)?)?;
                    }
                }
                Op::BatchNorm {
                    x,
                    gamma,
                    xhat,
                    scale,
                } => {
                    let (dgamma, dx) = batch_norm_grads(&g, xhat, scale, t, batch)?;
                    grads.push((*gamma, dgamma));
                    accumulate(&mut cot, *x, dx)?;
                }
                Op::WeightedSum { terms } => {
                    for &(v, w) in terms {
                        accumulate_scaled(&mut cot, v, &g, w)?;
                    }
                }
                Op::AvgPool3 { x, inv_count } => {
                    // The window is symmetric, so the adjoint is the same sum-pool.
                    accumulate(&mut cot, *x, box_sum3(&g.broadcast_mul(inv_count)?)?)?;
                }
                Op::MaxPool3 { x, stride } => {
                    let dx = max_pool3_grad(self.value(*x), &node.value, &g, *stride, t)?;
                    accumulate(&mut cot, *x, dx)?;
                }
                Op::AvgPool2 { x } => {
                    let (_, _, h, w) = g.dims4()?;
                    accumulate(&mut cot, *x, (g.upsample_nearest2d(2 * h, 2 * w)? * 0.25)?)?;
                }
                Op::GlobalAvgPool { x } => {
                    let (_, _, h, w) = self.value(*x).dims4()?;
                    let dx = (g.unsqueeze(2)?.unsqueeze(3)? / (h * w) as f64)?;
                    let (n, c) = g.dims2()?;
                    accumulate(&mut cot, *x, dx.broadcast_as((n, c, h, w))?.contiguous()?)?;
                }
                Op::Linear { x, weight } => {
                    let w = self.params.tensor(*weight);
                    let (k, c) = w.dims2()?;
                    let g3 = g.reshape((t, batch, k))?;
                    let f = self.value(*x);
                    let dw = g3.transpose(1, 2)?.contiguous()?.broadcast_matmul(f)?;
                    grads.push((*weight, dw.reshape((t, k * c))?));
                    accumulate(&mut cot, *x, g.matmul(w)?)?;
                }
                Op::Concat { xs } => {
                    let mut start = 0;
                    for &v in xs {
                        let c = self.value(v).dim(1)?;
                        accumulate(&mut cot, v, g.narrow(1, start, c)?.contiguous()?)?;
                        start += c;
                    }
                }
                Op::Shift { x } => {
                    let (_, _, h, w) = g.dims4()?;
                    let back = g
                        .narrow(2, 0, h - 1)?
                        .narrow(3, 0, w - 1)?
                        .pad_with_zeros(2, 1, 0)?
                        .pad_with_zeros(3, 1, 0)?;
                    accumulate(&mut cot, *x, back)?;
                }
                Op::Subsample2 { x } => {
                    let (_, _, h, w) = self.value(*x).dims4()?;
                    accumulate(&mut cot, *x, upsample2_zeros(&g, h, w)?)?;
                }
            }
        }
        grads.reverse();
        Ok(grads)
    }
}

fn accumulate(cot: &mut [Option<Tensor>], v: Var, g: Tensor) -> Result<()> {
    accumulate_scaled(cot, v, &g, 1.0)
}

/// Adds `w * g` to the cotangent of `v`.
fn accumulate_scaled(cot: &mut [Option<Tensor>], v: Var, g: &Tensor, w: f64) -> Result<()> {
    cot[v.0] = Some(match cot[v.0].take() {
        None => scaled(g, w)?,
        Some(acc) => (acc + scaled(g, w)?)?,
    });
    Ok(())
}

/// `g` (T stacked copies of a batch-shaped map) times the batch-shaped `m`, per copy.
fn mul_each(g: &Tensor, m: &Tensor) -> Result<Tensor> {
    let t = g.elem_count() / m.elem_count();
    let g2 = g.reshape((t, m.elem_count()))?;
    Ok(g2
        .broadcast_mul(&m.flatten_all()?.unsqueeze(0)?)?
        .reshape(g.dims())?)
}

/// The adjoint of [`subsample2`]: `g` at the even positions of an `h × w` map, zeros elsewhere.
fn upsample2_zeros(g: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (n, c, h2, w2) = g.dims4()?;
    let spread = g
        .reshape((n, c, h2, 1, w2, 1))?
        .pad_with_zeros(5, 0, 1)?
        .pad_with_zeros(3, 0, 1)?
        .reshape((n, c, 2 * h2, 2 * w2))?;
    Ok(spread.narrow(2, 0, h)?.narrow(3, 0, w)?.contiguous()?)
}

/// Weight gradients for every cotangent: `(T, cout * cin_g * k * k)`.
///
/// Uses the transposed-convolution identity: correlating the input (channels as batch,
/// batch as channels) with the output cotangents (batch as channels) gives the kernel
/// gradient, with the roles of stride and dilation swapped.
fn conv_weight_grad(x: &Tensor, g: &Tensor, w: &Tensor, cfg: ConvCfg, t: usize) -> Result<Tensor> {
    if cfg.groups == 1 && cfg.stride == 1 {
        return weight_grad_by_patches(x, g, w, cfg, t);
    }
    let b = x.dim(0)?;
    let (cout, cin_g, kh, kw) = w.dims4()?;
    let (_, _, gh, gw) = g.dims4()?;
    let groups = cfg.groups;
    let cout_g = cout / groups;
    // (T*B, cout, gh, gw) -> (T*cout, B, gh, gw)
    let g_t = g
        .reshape((t, b, cout, gh, gw))?
        .transpose(1, 2)?
        .reshape((t * cout, b, gh, gw))?;
    let grads = (0..groups)
        .map(|gi| {
            let xg = x
                .narrow(1, gi * cin_g, cin_g)?
                .transpose(0, 1)?
                .contiguous()?; // (cin_g, B, h, w)
            let gg = if groups == 1 {
                g_t.contiguous()?
            } else {
                g_t.reshape((t, cout, b, gh, gw))?
                    .narrow(1, gi * cout_g, cout_g)?
                    .reshape((t * cout_g, b, gh, gw))?
                    .contiguous()?
            };
            let full = xg.conv2d(&gg, cfg.padding, cfg.dilation, cfg.stride, 1)?; // (cin_g, T*cout_g, kh', kw')
            let full = full.narrow(2, 0, kh)?.narrow(3, 0, kw)?;
            full.reshape((cin_g, t, cout_g, kh, kw))?
                .permute((1, 2, 0, 3, 4))
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let dw = if groups == 1 {
        grads.into_iter().next().expect("one group")
    } else {
        Tensor::cat(&grads, 1)?
    };
    Ok(dw.reshape((t, cout * cin_g * kh * kw))?)
}

/// Stride-1 ungrouped case as one batched matrix product per image: the `(T * cout, hw)`
/// cotangents times the `(hw, cin * k * k)` input patches, summed over the batch.
fn weight_grad_by_patches(
    x: &Tensor,
    g: &Tensor,
    w: &Tensor,
    cfg: ConvCfg,
    t: usize,
) -> Result<Tensor> {
    let (b, cin, _, _) = x.dims4()?;
    let (cout, _, k, _) = w.dims4()?;
    let (_, _, gh, gw) = g.dims4()?;
    let patches = patches(x, k, cfg.padding, cfg.dilation, gh, gw)?; // (B, hw, cin*k*k)
                                                                     // One product with the batch folded into the inner dimension.
    let g = g
        .reshape((t, b, cout, gh * gw))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((t * cout, b * gh * gw))?;
    let patches = patches.reshape((b * gh * gw, cin * k * k))?;
    let dw = g.matmul(&patches)?; // (T*cout, cin*k*k)
    Ok(dw.reshape((t, cout * cin * k * k))?)
}

/// im2col for stride 1: `(B, oh * ow, cin * k * k)`, columns ordered (channel, ky, kx).
fn patches(x: &Tensor, k: usize, pad: usize, dil: usize, oh: usize, ow: usize) -> Result<Tensor> {
    let (b, cin, _, _) = x.dims4()?;
    let xp = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let mut taps = Vec::with_capacity(k * k);
    for ky in 0..k {
        for kx in 0..k {
            taps.push(xp.narrow(2, ky * dil, oh)?.narrow(3, kx * dil, ow)?);
        }
    }
    let stacked = Tensor::stack(&taps, 2)?; // (B, cin, k*k, oh, ow)
    Ok(stacked
        .reshape((b, cin * k * k, oh * ow))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Gradients of train-mode batch norm for `t` stacked cotangents: `(dgamma (T, C), dx)`.
fn batch_norm_grads(
    g: &Tensor,
    xhat: &Tensor,
    scale: &Tensor,
    t: usize,
    b: usize,
) -> Result<(Tensor, Tensor)> {
    let (_, c, h, w) = xhat.dims4()?;
    let n = (b * h * w) as f64;
    let g5 = g.reshape((t, b, c, h * w))?;
    let xh = xhat.reshape((1, b, c, h * w))?;
    let gx = g5.broadcast_mul(&xh)?;
    let sum_gx = gx.sum_keepdim(3)?.sum_keepdim(1)?; // (T, 1, C, 1)
    let sum_g = g5.sum_keepdim(3)?.sum_keepdim(1)?;
    let dgamma = sum_gx.reshape((t, c))?;
    let centered = g5
        .broadcast_sub(&(sum_g / n)?)?
        .sub(&xh.broadcast_mul(&(sum_gx / n)?)?)?;
    let dx = centered.broadcast_mul(&scale.reshape((1, 1, c, 1))?)?;
    Ok((dgamma, dx.reshape((t * b, c, h, w))?))
}

/// Routes each output's cotangent to the first cell of its window (row-major) that holds the
/// maximum, with tensor ops only, so the data stays on its device.
fn max_pool3_grad(x: &Tensor, y: &Tensor, g: &Tensor, stride: usize, t: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (_, _, oh, ow) = y.dims4()?;
    let padded = pad_neg_inf(x)?;
    let g = g.reshape((t, b, c, oh, ow))?;
    let mut taken = y.zeros_like()?;
    let mut dx = Tensor::zeros((t, b, c, h + 2, w + 2), g.dtype(), g.device())?;
    for dy in 0..3 {
        for dxo in 0..3 {
            // The window cell (dy, dxo) of every output, then whether it is the first maximum.
            let cell = strided_window(&padded, dy, dxo, stride, oh, ow)?;
            let is_max = cell.eq(y)?.to_dtype(y.dtype())?;
            let hit = is_max.mul(&(1.0 - &taken)?)?;
            taken = (taken + &hit)?;
            let routed = g.broadcast_mul(&hit.unsqueeze(0)?)?;
            dx = (dx + place_strided(&routed, dy, dxo, stride, h + 2, w + 2)?)?;
        }
    }
    // -inf padding never wins, so nothing lands on the border.
    Ok(dx
        .narrow(3, 1, h)?
        .narrow(4, 1, w)?
        .reshape((t * b, c, h, w))?)
}

/// `x[:, :, dy + s·i, dx + s·j]` for `i < oh`, `j < ow` (stride `s` of 1 or 2).
fn strided_window(
    x: &Tensor,
    dy: usize,
    dx: usize,
    stride: usize,
    oh: usize,
    ow: usize,
) -> Result<Tensor> {
    let span = |n: usize| stride * (n - 1) + 1;
    let cell = x.narrow(2, dy, span(oh))?.narrow(3, dx, span(ow))?;
    match stride {
        1 => Ok(cell.contiguous()?),
        _ => subsample2(&cell.contiguous()?),
    }
}

/// The adjoint of [`strided_window`] on a `(T, B, C, oh, ow)` cotangent: values placed at
/// `(dy + s·i, dx + s·j)` of an `h × w` map, zeros elsewhere.
fn place_strided(
    g: &Tensor,
    dy: usize,
    dx: usize,
    stride: usize,
    h: usize,
    w: usize,
) -> Result<Tensor> {
    let (t, b, c, oh, ow) = g.dims5()?;
    let span = |n: usize| stride * (n - 1) + 1;
    let flat = g.reshape((t * b, c, oh, ow))?;
    let spread = match stride {
        1 => flat,
        _ => upsample2_zeros(&flat, span(oh), span(ow))?,
    };
    Ok(spread
        .pad_with_zeros(2, dy, h - dy - span(oh))?
        .pad_with_zeros(3, dx, w - dx - span(ow))?
        .reshape((t, b, c, h, w))?)
}
