//! Convolution and 3x3 box sums with direct CPU kernels for the few-channel maps of TE-NAS
//! supernets, and the convolution's input gradient (for the stacked backward).
//!
//! candle's CPU convolutions go through im2col (and its transposed convolution is a naive
//! loop), which wastes most of the time on maps with 1 to 16 channels. These direct kernels
//! keep a row of every output channel hot and sweep the input rows once; images run in
//! parallel. Other devices and dtypes use candle's own ops.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::simd;
use crate::error::Result;

/// A 2-D convolution with symmetric zero padding (no bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl Conv {
    pub fn apply(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        if fast_path(x) {
            return Ok(x.contiguous()?.apply_op2_no_bwd(&w.contiguous()?, self)?);
        }
        Ok(x.conv2d(w, self.padding, self.stride, self.dilation, self.groups)?)
    }

    /// The gradient with respect to the input of `self` applied to an `(h, w)` map, for the
    /// output cotangent `g`: a stride-1 convolution of `g` (zero-dilated when strided) with
    /// the flipped, transposed kernel.
    pub fn input_grad(&self, g: &Tensor, w: &Tensor, h: usize, wd: usize) -> Result<Tensor> {
        let (cout, cin_g, k, _) = w.dims4()?;
        let cout_g = cout / self.groups;
        // (cout, cin_g, k, k) -> (groups * cin_g, cout_g, k, k), flipped in space.
        let flipped = w.flip_spatial()?;
        let wt = flipped
            .reshape((self.groups, cout_g, cin_g, k, k))?
            .transpose(1, 2)?
            .reshape((self.groups * cin_g, cout_g, k, k))?
            .contiguous()?;
        let g = if self.stride > 1 {
            dilate(g, self.stride)?
        } else {
            g.clone()
        };
        let pad = self.dilation * (k - 1) - self.padding;
        let conv = Conv {
            stride: 1,
            padding: pad,
            dilation: self.dilation,
            groups: self.groups,
        };
        let out = conv.apply(&g, &wt)?;
        // Dilation leaves trailing rows when the forward pass dropped some input.
        let (_, _, oh, ow) = out.dims4()?;
        Ok(if (oh, ow) == (h, wd) {
            out
        } else {
            out.narrow(2, 0, h)?.narrow(3, 0, wd)?
        })
    }
}

/// Inserts `s - 1` zeros after every row and column.
fn dilate(g: &Tensor, s: usize) -> Result<Tensor> {
    let (n, c, h, w) = g.dims4()?;
    let g = g
        .reshape((n, c, h, 1, w, 1))?
        .pad_with_zeros(3, 0, s - 1)?
        .pad_with_zeros(5, 0, s - 1)?;
    Ok(g.reshape((n, c, h * s, w * s))?)
}

trait FlipSpatial {
    fn flip_spatial(&self) -> Result<Tensor>;
}

impl FlipSpatial for Tensor {
    fn flip_spatial(&self) -> Result<Tensor> {
        let (_, _, kh, kw) = self.dims4()?;
        let dev = self.device();
        let rev = |n: usize| Tensor::from_vec((0..n as u32).rev().collect::<Vec<_>>(), n, dev);
        Ok(self
            .index_select(&rev(kh)?, 2)?
            .index_select(&rev(kw)?, 3)?)
    }
}

fn fast_path(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("direct kernels need contiguous inputs"),
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "tenas-direct-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1)?;
        let w = contiguous_f32(s2, l2)?;
        let (n, cin, h, wd) = l1.shape().dims4()?;
        let (cout, cin_g, k, _) = l2.shape().dims4()?;
        let span = self.dilation * (k - 1) + 1;
        let oh = (h + 2 * self.padding - span) / self.stride + 1;
        let ow = (wd + 2 * self.padding - span) / self.stride + 1;
        let geo = Geometry {
            cin,
            cin_g,
            cout,
            h,
            w: wd,
            k,
            oh,
            ow,
            conv: *self,
        };
        let mut out = vec![0f32; n * cout * oh * ow];
        out.par_chunks_mut(cout * oh * ow)
            .zip(x.par_chunks(cin * h * wd))
            .for_each(|(out, x)| geo.image(x, w, out));
        Ok((CpuStorage::F32(out), Shape::from((n, cout, oh, ow))))
    }
}

struct Geometry {
    cin: usize,
    cin_g: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    oh: usize,
    ow: usize,
    conv: Conv,
}

impl Geometry {
    /// One image: pads the input once, then for each output row accumulates every
    /// (input channel, tap) into the rows of the group's output channels.
    fn image(&self, x: &[f32], w: &[f32], out: &mut [f32]) {
        let Conv {
            stride,
            padding: p,
            dilation: d,
            groups,
        } = self.conv;
        let (ph, pw) = (self.h + 2 * p, self.w + 2 * p);
        let mut padded = vec![0f32; self.cin * ph * pw];
        for c in 0..self.cin {
            for y in 0..self.h {
                let src = &x[(c * self.h + y) * self.w..][..self.w];
                padded[(c * ph + y + p) * pw + p..][..self.w].copy_from_slice(src);
            }
        }
        let cout_g = self.cout / groups;
        let (k, ow) = (self.k, self.ow);
        let mut acc = vec![0f32; cout_g * ow];
        let mut row = vec![0f32; ow];
        for g in 0..groups {
            for oy in 0..self.oh {
                acc.fill(0.0);
                for ci in 0..self.cin_g {
                    let plane = &padded[(g * self.cin_g + ci) * ph * pw..][..ph * pw];
                    for ky in 0..k {
                        let line = &plane[(oy * stride + ky * d) * pw..][..pw];
                        for kx in 0..k {
                            let src: &[f32] = if stride == 1 {
                                &line[kx * d..kx * d + ow]
                            } else {
                                for (x, r) in row.iter_mut().enumerate() {
                                    *r = line[x * stride + kx * d];
                                }
                                &row
                            };
                            for co in 0..cout_g {
                                let wv =
                                    w[(((g * cout_g + co) * self.cin_g + ci) * k + ky) * k + kx];
                                simd::axpy(&mut acc[co * ow..(co + 1) * ow], wv, src);
                            }
                        }
                    }
                }
                for co in 0..cout_g {
                    let o = ((g * cout_g + co) * self.oh + oy) * ow;
                    out[o..o + ow].copy_from_slice(&acc[co * ow..(co + 1) * ow]);
                }
            }
        }
    }
}

/// Sums of 3x3 windows with zero padding 1, stride 1 (average pooling without its divisor).
pub fn box_sum3(x: &Tensor) -> Result<Tensor> {
    if fast_path(x) {
        return Ok(x.contiguous()?.apply_op1_no_bwd(&BoxSum3)?);
    }
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    Ok((padded.avg_pool2d_with_stride(3, 1)? * 9.0)?)
}

struct BoxSum3;

impl CustomOp1 for BoxSum3 {
    fn name(&self) -> &'static str {
        "tenas-box-sum3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let (_, _, h, w) = l.shape().dims4()?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w))
            .for_each(|(out, x)| {
                // Horizontal then vertical running sums of three.
                let mut rows = vec![0f32; h * w];
                for y in 0..h {
                    let (src, dst) = (&x[y * w..(y + 1) * w], &mut rows[y * w..(y + 1) * w]);
                    for i in 0..w {
                        let left = if i > 0 { src[i - 1] } else { 0.0 };
                        let right = if i + 1 < w { src[i + 1] } else { 0.0 };
                        dst[i] = left + src[i] + right;
                    }
                }
                for y in 0..h {
                    let dst = &mut out[y * w..(y + 1) * w];
                    dst.copy_from_slice(&rows[y * w..(y + 1) * w]);
                    if y > 0 {
                        for (d, s) in dst.iter_mut().zip(&rows[(y - 1) * w..y * w]) {
                            *d += s;
                        }
                    }
                    if y + 1 < h {
                        for (d, s) in dst.iter_mut().zip(&rows[(y + 1) * w..(y + 2) * w]) {
                            *d += s;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The direct kernels agree with candle's own convolution and its autograd.
    #[test]
    fn direct_conv_and_input_grad_match_candle() -> Result<()> {
        let dev = Device::Cpu;
        for (cin, cout, k, stride, padding, dilation, groups, h) in [
            (3, 6, 3, 1, 1, 1, 1, 9),
            (6, 12, 3, 2, 1, 1, 1, 8),
            (4, 4, 5, 1, 4, 2, 4, 7),
            (3, 5, 1, 1, 0, 1, 1, 6),
            (2, 2, 3, 2, 1, 1, 2, 8),
        ] {
            let conv = Conv {
                stride,
                padding,
                dilation,
                groups,
            };
            let x = candle_core::Var::randn(0f32, 1.0, (2, cin, h, h), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (cout, cin / groups, k, k), &dev)?;
            let reference = x.conv2d(&w, padding, stride, dilation, groups)?;
            let direct = conv.apply(&x, &w)?;
            assert!(max_diff(&reference, &direct) < 1e-4, "forward {conv:?}");
            let g = Tensor::randn(0f32, 1.0, reference.shape(), &dev)?;
            let grads = (reference * &g)?.sum_all()?.backward()?;
            let expected = grads.get(&x).expect("input grad");
            let got = conv.input_grad(&g, &w, h, h)?;
            assert!(max_diff(expected, &got) < 1e-4, "input grad {conv:?}");
        }
        Ok(())
    }

    #[test]
    fn box_sum_matches_padded_pooling() -> Result<()> {
        let x = Tensor::randn(0f32, 1.0, (2, 3, 5, 7), &Device::Cpu)?;
        let fast = box_sum3(&x)?;
        let slow = box_sum3(&x.to_dtype(DType::F64)?)?.to_dtype(DType::F32)?;
        assert!(max_diff(&fast, &slow) < 1e-5);
        Ok(())
    }
}
