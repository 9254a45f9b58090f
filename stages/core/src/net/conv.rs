//! A 2-D convolution for candle's autograd whose CPU forward and backward are the project's
//! own im2col + GEMM kernels ([`super::gemm_conv`]).
//!
//! On the CPU candle's own convolution is several times slower than PyTorch's: its tiled
//! im2col forward spends most of its time on index arithmetic, and its input gradient is a
//! `conv_transpose2d` about 10× slower still. Other devices keep candle's `conv2d` and its
//! autograd. The sums run in another order than candle's, so values and gradients differ
//! from candle's in the last bits.
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu_storage::{elements, tensor, unsupported, with_storage};
use super::gemm_conv::{self, ConvShape, Element};
use crate::error::Result;

/// `x.conv2d(kernel, padding, stride, 1, 1)`, on the CPU by the project's kernels; on other
/// devices candle's own op.
pub fn conv2d(x: &Tensor, kernel: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(x.conv2d(kernel, padding, stride, 1, 1)?);
    }
    let op = Conv2d { padding, stride };
    Ok(x.contiguous()?.apply_op2(&kernel.contiguous()?, op)?)
}

struct Conv2d {
    padding: usize,
    stride: usize,
}

impl Conv2d {
    /// The sizes of this convolution of an input of shape `x` with a kernel of shape `k`.
    fn shape(&self, x: &Shape, k: &Shape) -> candle_core::Result<ConvShape> {
        let (batch, channels, height, width) = x.dims4()?;
        let (out_channels, kernel_channels, kernel, kernel_w) = k.dims4()?;
        if kernel_channels != channels || kernel != kernel_w {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: a {kernel}×{kernel_w} kernel over {kernel_channels} channels does not \
                 fit an input of {channels} channels (square kernels, no groups)"
            )));
        }
        if [
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel,
            self.stride,
        ]
        .contains(&0)
        {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: an empty input {:?} or kernel {:?}, or stride 0",
                x.dims(),
                k.dims()
            )));
        }
        if height + 2 * self.padding < kernel || width + 2 * self.padding < kernel {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: a {kernel}×{kernel} kernel is larger than the padded {height}×{width} input"
            )));
        }
        Ok(ConvShape {
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel,
            stride: self.stride,
            padding: self.padding,
        })
    }
}

const OP: &str = "conv2d";

/// `f` on the contiguous elements of two CPU tensors of one float dtype.
fn on_cpu_pair(
    a: &Tensor,
    b: &Tensor,
    f32_op: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    f64_op: impl FnOnce(&[f64], &[f64]) -> Vec<f64>,
) -> candle_core::Result<CpuStorage> {
    with_storage(a, OP, |sa, la| {
        with_storage(b, OP, |sb, lb| cpu_pair(sa, la, sb, lb, f32_op, f64_op))
    })
}

fn cpu_pair(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    f32_op: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    f64_op: impl FnOnce(&[f64], &[f64]) -> Vec<f64>,
) -> candle_core::Result<CpuStorage> {
    match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => Ok(CpuStorage::F32(f32_op(
            elements(x, la, OP)?,
            elements(y, lb, OP)?,
        ))),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => Ok(CpuStorage::F64(f64_op(
            elements(x, la, OP)?,
            elements(y, lb, OP)?,
        ))),
        _ => Err(unsupported(a, OP)),
    }
}

fn forward<T: Element>(shape: &ConvShape) -> impl Fn(&[T], &[T]) -> Vec<T> + '_ {
    move |x, k| gemm_conv::forward(shape, x, k)
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d-im2col-gemm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = self.shape(l1.shape(), l2.shape())?;
        let out = cpu_pair(s1, l1, s2, l2, forward(&shape), forward(&shape))?;
        let dims = (
            shape.batch,
            shape.out_channels,
            shape.out_height(),
            shape.out_width(),
        );
        Ok((out, Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let shape = self.shape(x.shape(), kernel.shape())?;
        // Only what a gradient can reach: a network input that is no variable needs no input
        // gradient, and frozen weights no kernel gradient (each costs a forward pass).
        let grad_x = x
            .track_op()
            .then(|| {
                on_cpu_pair(
                    kernel,
                    grad,
                    |k, g| gemm_conv::input_gradient(&shape, k, g),
                    |k, g| gemm_conv::input_gradient(&shape, k, g),
                )
                .and_then(|g| tensor(g, x.shape(), OP))
            })
            .transpose()?;
        let grad_kernel = kernel
            .track_op()
            .then(|| {
                on_cpu_pair(
                    x,
                    grad,
                    |x, g| gemm_conv::kernel_gradient(&shape, x, g),
                    |x, g| gemm_conv::kernel_gradient(&shape, x, g),
                )
                .and_then(|g| tensor(g, kernel.shape(), OP))
            })
            .transpose()?;
        Ok((grad_x, grad_kernel))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};

    use super::*;

    /// Values and both gradients of a weighted sum of the output, through this op and
    /// through candle's `conv2d`.
    fn both(stride: usize, padding: usize, k: usize, side: usize) -> [(Tensor, Tensor, Tensor); 2] {
        let d = Device::Cpu;
        let x =
            Var::from_tensor(&Tensor::randn(0f64, 1., (3, 4, side, side), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f64, 1., (5, 4, k, k), &d).unwrap()).unwrap();
        let run = |fast: bool| {
            let y = match fast {
                true => conv2d(x.as_tensor(), w.as_tensor(), padding, stride).unwrap(),
                false => x
                    .as_tensor()
                    .conv2d(w.as_tensor(), padding, stride, 1, 1)
                    .unwrap(),
            };
            // A fixed cotangent, the same for both paths.
            let weights = Tensor::arange(0u32, y.elem_count() as u32, &d)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .reshape(y.shape())
                .unwrap()
                .sin()
                .unwrap();
            let grads = (&y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (
                y,
                grads.get(x.as_tensor()).unwrap().clone(),
                grads.get(w.as_tensor()).unwrap().clone(),
            )
        };
        [run(true), run(false)]
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.shape(), b.shape());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn empty_inputs_are_an_error() {
        let d = Device::Cpu;
        let w = Tensor::zeros((2, 3, 3, 3), DType::F32, &d).unwrap();
        let empty = Tensor::zeros((0, 3, 4, 4), DType::F32, &d).unwrap();
        assert!(conv2d(&empty, &w, 1, 1).is_err());
        let x = Tensor::zeros((1, 3, 4, 4), DType::F32, &d).unwrap();
        assert!(conv2d(&x, &w, 1, 0).is_err(), "stride 0");
    }

    #[test]
    fn values_and_gradients_match_candles_conv() {
        for (stride, padding, k, side) in [
            (1, 1, 3, 8),
            (1, 0, 1, 8),
            (2, 1, 3, 8),
            (2, 1, 3, 7),
            (2, 0, 1, 7),
        ] {
            let [(y, gx, gw), (y0, gx0, gw0)] = both(stride, padding, k, side);
            let case = format!("stride {stride}, padding {padding}, {k}×{k}, side {side}");
            assert!(max_diff(&y, &y0) < 1e-12, "values, {case}");
            assert!(max_diff(&gx, &gx0) < 1e-12, "input gradient, {case}");
            assert!(max_diff(&gw, &gw0) < 1e-12, "kernel gradient, {case}");
        }
    }
}
