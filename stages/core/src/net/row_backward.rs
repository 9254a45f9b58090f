//! The CPU backward for a stack of cotangents: one row at a time, the batch innermost.
//!
//! The tape's stacked pass moves `(T·B, C, H, W)` temporaries through memory at every op, and
//! its inner loops run over one image row (8 to 32 floats). On a CPU it is faster to push each
//! row's cotangent through the whole tape on its own, rows in parallel, with every map laid out
//! as `(C, H, W, B)`: a row's cotangents stay in cache and every op runs over contiguous runs of
//! `W·B` floats. The forward values the backward reads are converted to that layout once and
//! shared by all rows.
use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::params::ParamId;
use super::simd;
use super::tape::{ConvCfg, Op, Tape, Var};
use crate::error::{Error, Result};

/// A value's extent without the batch: `(C, H, W)`; a `(B, K)` value is `(K, 1, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dims {
    c: usize,
    h: usize,
    w: usize,
}

impl Dims {
    fn of(t: &Tensor) -> Result<Dims> {
        Ok(match *t.dims() {
            [_, c, h, w] => Dims { c, h, w },
            [_, k] => Dims { c: k, h: 1, w: 1 },
            ref other => {
                return Err(Error::Invalid(format!(
                    "no batch-last layout for {other:?}"
                )))
            }
        })
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// What one node's backward reads from the forward pass, batch-last.
enum Saved {
    Nothing,
    Mask(Vec<f32>),
    /// A convolution's input, weight and kernel size.
    Conv {
        x: Vec<f32>,
        w: Vec<f32>,
        k: usize,
    },
    /// A linear layer's input and weight.
    Dense {
        x: Vec<f32>,
        w: Vec<f32>,
    },
    Norm {
        xhat: Vec<f32>,
        scale: Vec<f32>,
    },
    /// Average pooling's 1/count per pixel.
    PixelWeights(Vec<f32>),
    /// Max pooling: for every output element, the input element it took.
    Argmax(Vec<u32>),
}

/// A parameter's gradient for one row.
type RowGrads = Vec<(ParamId, Vec<f32>)>;

/// The forward pass of a tape, prepared for row-wise backward passes.
pub(super) struct RowBackward<'t, 'p> {
    tape: &'t Tape<'p>,
    batch: usize,
    dims: Vec<Dims>,
    saved: Vec<Saved>,
}

impl<'t, 'p> RowBackward<'t, 'p> {
    pub(super) fn new(tape: &'t Tape<'p>, out: Var) -> Result<Self> {
        let batch = tape.value(out).dim(0)?;
        let nodes = &tape.nodes[..=out.0];
        let dims = nodes
            .iter()
            .map(|n| Dims::of(&n.value))
            .collect::<Result<Vec<_>>>()?;
        let saved = nodes
            .par_iter()
            .map(|n| saved(tape, &n.op, &n.value))
            .collect::<Result<Vec<_>>>()?;
        Ok(RowBackward {
            tape,
            batch,
            dims,
            saved,
        })
    }

    /// Gradients for the cotangents `(T, B, K)` of `out`, as in [`Tape::backward`].
    pub(super) fn backward(&self, out: Var, cotangent: &Tensor) -> Result<Vec<(ParamId, Tensor)>> {
        let (t, b, k) = cotangent.dims3()?;
        let seeds: Vec<f32> = cotangent.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let rows = (0..t)
            .into_par_iter()
            .map(|r| {
                let seed = &seeds[r * b * k..(r + 1) * b * k];
                // (B, K) -> (K, B)
                let seed = (0..k * b).map(|i| seed[(i % b) * k + i / b]).collect();
                self.row(out, seed)
            })
            .collect::<Result<Vec<_>>>()?;
        let device = cotangent.device();
        let entries = rows.first().map_or(0, Vec::len);
        (0..entries)
            .map(|e| {
                let id = rows[0][e].0;
                let numel = rows[0][e].1.len();
                let data: Vec<f32> = rows.iter().flat_map(|r| r[e].1.iter().copied()).collect();
                let g = Tensor::from_vec(data, (t, numel), device)?.to_dtype(cotangent.dtype())?;
                Ok((id, g))
            })
            .collect()
    }

    /// One row: the parameter gradients in the order the parameters were first used.
    fn row(&self, out: Var, seed: Vec<f32>) -> Result<RowGrads> {
        let mut cot: Vec<Option<Vec<f32>>> = vec![None; out.0 + 1];
        cot[out.0] = Some(seed);
        let mut grads = Vec::new();
        for idx in (0..=out.0).rev() {
            let Some(g) = cot[idx].take() else { continue };
            self.node(idx, g, &mut cot, &mut grads)?;
        }
        grads.reverse();
        Ok(grads)
    }

    fn node(
        &self,
        idx: usize,
        mut g: Vec<f32>,
        cot: &mut [Option<Vec<f32>>],
        grads: &mut RowGrads,
    ) -> Result<()> {
        let b = self.batch;
        let dims = self.dims[idx];
        let saved = &self.saved[idx];
        match (&self.tape.nodes[idx].op, saved) {
            (Op::Input, _) => {}
            (Op::Relu { x, .. }, Saved::Mask(mask)) => {
                simd::mul(&mut g, mask);
                accumulate(cot, *x, g);
            }
            (Op::Conv { x, weight, cfg }, Saved::Conv { x: input, w, k }) => {
                let wants_dx = !matches!(self.tape.nodes[x.0].op, Op::Input);
                let geo = ConvGeometry {
                    input: self.dims[x.0],
                    output: dims,
                    cfg: *cfg,
                    k: *k,
                    b,
                };
                let mut dx = wants_dx.then(|| vec![0f32; input.len()]);
                grads.push((*weight, geo.backward(&g, input, w, dx.as_deref_mut())));
                if let Some(dx) = dx {
                    accumulate(cot, *x, dx);
                }
            }
            (Op::BatchNorm { x, gamma, .. }, Saved::Norm { xhat, scale }) => {
                let run = dims.plane() * b;
                let n = run as f32;
                let mut dgamma = vec![0f32; dims.c];
                for (c, (gc, xc)) in g.chunks_mut(run).zip(xhat.chunks(run)).enumerate() {
                    let (sg, sgx) = simd::sum_and_dot(gc, xc);
                    dgamma[c] = sgx;
                    simd::bn_dx(gc, xc, scale[c], sg / n, sgx / n);
                }
                grads.push((*gamma, dgamma));
                accumulate(cot, *x, g);
            }
            (Op::WeightedSum { terms }, _) => {
                for &(v, w) in terms {
                    accumulate_scaled(cot, v, &g, w as f32);
                }
            }
            (Op::AvgPool3 { x, .. }, Saved::PixelWeights(inv)) => {
                for plane in g.chunks_mut(dims.plane() * b) {
                    for (px, run) in plane.chunks_mut(b).enumerate() {
                        run.iter_mut().for_each(|v| *v *= inv[px]);
                    }
                }
                accumulate(cot, *x, box_sum3(&g, dims, b));
            }
            (Op::MaxPool3 { x, .. }, Saved::Argmax(src)) => {
                let mut dx = vec![0f32; self.len(x.0)];
                for (gv, &s) in g.iter().zip(src) {
                    dx[s as usize] += gv;
                }
                accumulate(cot, *x, dx);
            }
            (Op::AvgPool2 { x }, _) => {
                let xd = self.dims[x.0];
                let mut dx = vec![0f32; self.len(x.0)];
                for c in 0..dims.c {
                    for y in 0..xd.h.min(2 * dims.h) {
                        for xx in 0..xd.w.min(2 * dims.w) {
                            let src = &g[((c * dims.h + y / 2) * dims.w + xx / 2) * b..][..b];
                            let dst = &mut dx[((c * xd.h + y) * xd.w + xx) * b..][..b];
                            simd::axpy(dst, 0.25, src);
                        }
                    }
                }
                accumulate(cot, *x, dx);
            }
            (Op::GlobalAvgPool { x }, _) => {
                let xd = self.dims[x.0];
                let inv = 1.0 / xd.plane() as f32;
                let mut dx = vec![0f32; self.len(x.0)];
                for (plane, gc) in dx.chunks_mut(xd.plane() * b).zip(g.chunks(b)) {
                    for run in plane.chunks_mut(b) {
                        simd::axpy(run, inv, gc);
                    }
                }
                accumulate(cot, *x, dx);
            }
            (Op::Linear { x, weight }, Saved::Dense { x: input, w }) => {
                let (k, c) = (dims.c, self.dims[x.0].c);
                let mut dw = vec![0f32; k * c];
                let mut dx = vec![0f32; c * b];
                for (ki, gk) in g.chunks(b).enumerate() {
                    for (ci, (xc, dxc)) in input.chunks(b).zip(dx.chunks_mut(b)).enumerate() {
                        dw[ki * c + ci] = simd::tap(gk, xc, dxc, w[ki * c + ci]);
                    }
                }
                grads.push((*weight, dw));
                accumulate(cot, *x, dx);
            }
            (Op::Concat { xs }, _) => {
                let mut start = 0;
                for &v in xs {
                    let len = self.len(v.0);
                    accumulate(cot, v, g[start..start + len].to_vec());
                    start += len;
                }
            }
            (Op::Shift { x }, _) => {
                // Output (y, x) came from input (y + 1, x + 1); the zero fill has no source.
                let mut dx = vec![0f32; self.len(x.0)];
                let run = (dims.w - 1) * b;
                for c in 0..dims.c {
                    for y in 0..dims.h - 1 {
                        let src = &g[(c * dims.h + y) * dims.w * b..][..run];
                        let at = ((c * dims.h + y + 1) * dims.w + 1) * b;
                        dx[at..at + run].copy_from_slice(src);
                    }
                }
                accumulate(cot, *x, dx);
            }
            (Op::Subsample2 { x }, _) => {
                let xd = self.dims[x.0];
                let mut dx = vec![0f32; self.len(x.0)];
                for c in 0..dims.c {
                    for y in 0..dims.h {
                        for xx in 0..dims.w {
                            let src = &g[((c * dims.h + y) * dims.w + xx) * b..][..b];
                            let at = ((c * xd.h + 2 * y) * xd.w + 2 * xx) * b;
                            dx[at..at + b].copy_from_slice(src);
                        }
                    }
                }
                accumulate(cot, *x, dx);
            }
            _ => return Err(Error::Invalid("row backward: forward data missing".into())),
        }
        Ok(())
    }

    fn len(&self, idx: usize) -> usize {
        let d = self.dims[idx];
        d.c * d.plane() * self.batch
    }
}

/// The forward data `op`'s backward reads, batch-last.
fn saved(tape: &Tape, op: &Op, value: &Tensor) -> Result<Saved> {
    let params = tape.params;
    Ok(match op {
        Op::Relu { mask, .. } => Saved::Mask(batch_last(mask)?),
        Op::Conv { x, weight, .. } => Saved::Conv {
            x: batch_last(tape.value(*x))?,
            w: host(params.tensor(*weight))?,
            k: params.tensor(*weight).dim(3)?,
        },
        Op::Linear { x, weight } => Saved::Dense {
            x: batch_last(tape.value(*x))?,
            w: host(params.tensor(*weight))?,
        },
        Op::BatchNorm { xhat, scale, .. } => Saved::Norm {
            xhat: batch_last(xhat)?,
            scale: host(scale)?,
        },
        Op::AvgPool3 { inv_count, .. } => Saved::PixelWeights(host(inv_count)?),
        Op::MaxPool3 { x, stride } => Saved::Argmax(argmax(tape.value(*x), value, *stride)?),
        _ => Saved::Nothing,
    })
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// `(B, ...)` to `(..., B)`.
fn batch_last(t: &Tensor) -> Result<Vec<f32>> {
    host(&t.flatten_from(1)?.t()?.contiguous()?)
}

/// For every max-pooling output element (batch-last), the batch-last index of the first
/// window cell holding the maximum.
fn argmax(x: &Tensor, y: &Tensor, stride: usize) -> Result<Vec<u32>> {
    let (b, c, h, w) = x.dims4()?;
    let (_, _, oh, ow) = y.dims4()?;
    let xv = host(x)?;
    let yv = host(y)?;
    let mut src = vec![0u32; b * c * oh * ow];
    for bi in 0..b {
        for ci in 0..c {
            let plane = &xv[(bi * c + ci) * h * w..][..h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let best = yv[((bi * c + ci) * oh + oy) * ow + ox];
                    let (iy, ix) = window(oy, ox, stride, h, w)
                        .find(|&(iy, ix)| plane[iy * w + ix] == best)
                        .ok_or_else(|| Error::Invalid("max pooling lost its maximum".into()))?;
                    src[((ci * oh + oy) * ow + ox) * b + bi] = (((ci * h + iy) * w + ix) * b + bi)
                        .try_into()
                        .map_err(|_| Error::Invalid("map too large for max pooling".into()))?;
                }
            }
        }
    }
    Ok(src)
}

/// The in-bounds cells of a padded 3x3 window, row-major.
fn window(
    oy: usize,
    ox: usize,
    stride: usize,
    h: usize,
    w: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..3).flat_map(move |dy| {
        (0..3).filter_map(move |dx| {
            let (iy, ix) = (
                (oy * stride + dy).checked_sub(1)?,
                (ox * stride + dx).checked_sub(1)?,
            );
            (iy < h && ix < w).then_some((iy, ix))
        })
    })
}

/// Zero-padded 3x3 window sums of a batch-last map.
fn box_sum3(g: &[f32], d: Dims, b: usize) -> Vec<f32> {
    let mut out = vec![0f32; g.len()];
    let run = d.w * b;
    for c in 0..d.c {
        for y in 0..d.h {
            let dst = &mut out[(c * d.h + y) * run..][..run];
            for sy in y.saturating_sub(1)..(y + 2).min(d.h) {
                let src = &g[(c * d.h + sy) * run..][..run];
                simd::add(dst, src);
                simd::add(&mut dst[b..], &src[..run - b]);
                simd::add(&mut dst[..run - b], &src[b..]);
            }
        }
    }
    out
}

/// Index arithmetic of one convolution in batch-last layout.
struct ConvGeometry {
    input: Dims,
    output: Dims,
    cfg: ConvCfg,
    k: usize,
    b: usize,
}

impl ConvGeometry {
    /// The weight gradient (laid out like the weight); adds the input gradient to `dx` when
    /// given.
    fn backward(&self, g: &[f32], x: &[f32], w: &[f32], mut dx: Option<&mut [f32]>) -> Vec<f32> {
        let (inp, out, k, b) = (self.input, self.output, self.k, self.b);
        let cin_g = inp.c / self.cfg.groups;
        let cout_g = out.c / self.cfg.groups;
        let mut dw = vec![0f32; w.len()];
        // Output rows outermost: the rows one step touches (a cotangent row per output
        // channel, k input rows per input channel) stay in cache across all taps.
        for oy in 0..out.h {
            for co in 0..out.c {
                let first_ci = co / cout_g * cin_g;
                let g_row = &g[(co * out.h + oy) * out.w * b..][..out.w * b];
                for ci_local in 0..cin_g {
                    for ky in 0..k {
                        let Some(y) = self.source(oy, ky, inp.h) else {
                            continue;
                        };
                        let x_row = ((first_ci + ci_local) * inp.h + y) * inp.w * b;
                        for kx in 0..k {
                            let widx = ((co * cin_g + ci_local) * k + ky) * k + kx;
                            let dx = dx.as_deref_mut();
                            dw[widx] += self.tap_row(g_row, kx, x, x_row, dx, w[widx]);
                        }
                    }
                }
            }
        }
        dw
    }

    /// One tap over one output row: adds `w·g` to the input gradient (when wanted) and
    /// returns `Σ g·x`, reading the input row that starts at `x_row`.
    fn tap_row(
        &self,
        g_row: &[f32],
        kx: usize,
        x: &[f32],
        x_row: usize,
        mut dx: Option<&mut [f32]>,
        w: f32,
    ) -> f32 {
        let b = self.b;
        let ConvCfg {
            stride,
            dilation,
            padding,
            ..
        } = self.cfg;
        let (lo, hi) = self.valid_outputs(kx, self.input.w, self.output.w);
        // With stride 1 the whole valid run is contiguous in the input row too.
        let run = if stride == 1 {
            hi.saturating_sub(lo)
        } else {
            1
        };
        let mut sum = 0f32;
        for ox in (lo..hi).step_by(run.max(1)) {
            let len = run * b;
            let at = x_row + (ox * stride + kx * dilation - padding) * b;
            let (gs, xs) = (&g_row[ox * b..][..len], &x[at..][..len]);
            sum += match dx.as_deref_mut() {
                Some(d) => simd::tap(gs, xs, &mut d[at..][..len], w),
                None => simd::dot(gs, xs),
            };
        }
        sum
    }

    /// The input row read by output row `o` at tap `kk`, if inside the map.
    fn source(&self, o: usize, kk: usize, n: usize) -> Option<usize> {
        let i = (o * self.cfg.stride + kk * self.cfg.dilation).checked_sub(self.cfg.padding)?;
        (i < n).then_some(i)
    }

    /// The output columns whose tap `kx` lands inside an input row of width `n`.
    fn valid_outputs(&self, kx: usize, n: usize, out_w: usize) -> (usize, usize) {
        let (s, off) = (self.cfg.stride, kx * self.cfg.dilation);
        let lo = self.cfg.padding.saturating_sub(off).div_ceil(s);
        let hi = (n + self.cfg.padding)
            .checked_sub(off)
            .map_or(0, |end| end.div_ceil(s))
            .min(out_w);
        (lo, hi)
    }
}

fn accumulate(cot: &mut [Option<Vec<f32>>], v: Var, g: Vec<f32>) {
    match &mut cot[v.0] {
        Some(acc) => simd::add(acc, &g),
        slot => *slot = Some(g),
    }
}

fn accumulate_scaled(cot: &mut [Option<Vec<f32>>], v: Var, g: &[f32], w: f32) {
    match &mut cot[v.0] {
        Some(acc) => simd::axpy(acc, w, g),
        slot => *slot = Some(g.iter().map(|x| w * x).collect()),
    }
}
