//! A 2-D convolution on contiguous NCHW CPU buffers as im2col and one GEMM per image (the
//! `gemm` crate, which candle's matmul uses too), with both backward products.
//!
//! Each image is unfolded into a (C·k·k) × (Ho·Wo) column matrix, so the output image is
//! `W · col` with W viewed as Cout × (C·k·k); the input gradient folds `Wᵀ · dY` back, and the
//! kernel gradient is Σ_images `dY · colᵀ`. Images run in parallel, each GEMM on one thread.
//! The kernel gradient sums fixed chunks of images and then the chunks in order, so the
//! result does not depend on how many threads there are.
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Images per partial kernel gradient; fixed, so that the sum order is too.
const GRAD_CHUNK: usize = 8;

/// The element types the kernels take.
pub trait Element: Copy + Send + Sync + Default + std::ops::AddAssign + 'static {
    const ONE: Self;
}

impl Element for f32 {
    const ONE: f32 = 1.0;
}

impl Element for f64 {
    const ONE: f64 = 1.0;
}

/// A convolution's sizes: a batch of `batch` images of `channels` × `height` × `width` and
/// `out_channels` square kernels of side `kernel`, without groups or dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvShape {
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    fn out_image_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// Rows of the column matrix: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.image_len()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_image_len()
    }

    pub fn kernel_len(&self) -> usize {
        self.out_channels * self.taps()
    }

    /// A 1×1, stride-1, unpadded convolution reads the image itself as its column matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0
    }

    /// For each output coordinate along one axis and each tap, the input coordinate, or
    /// `None` in the padding.
    fn source(&self, out: usize, tap: usize, size: usize) -> Option<usize> {
        (out * self.stride + tap)
            .checked_sub(self.padding)
            .filter(|&i| i < size)
    }

    /// The output columns `ox` whose tap `kx` reads inside the image, and the first input
    /// column they read (`ox · stride + kx − padding` for the first `ox`).
    fn inside(&self, kx: usize) -> (std::ops::Range<usize>, usize) {
        let wo = self.out_width();
        let first = self
            .padding
            .saturating_sub(kx)
            .div_ceil(self.stride)
            .min(wo);
        let last = (self.width + self.padding)
            .checked_sub(kx + 1)
            .map_or(0, |max_in| (max_in / self.stride + 1).min(wo));
        let last = last.max(first);
        (
            first..last,
            (first * self.stride + kx).saturating_sub(self.padding),
        )
    }

    /// Unfolds one image into its column matrix (`taps × out_pixels`, row-major).
    fn unfold<T: Element>(&self, image: &[T], col: &mut [T]) {
        let (ho, wo, k) = (self.out_height(), self.out_width(), self.kernel);
        let plane = self.height * self.width;
        for (row, dst) in col.chunks_exact_mut(ho * wo).enumerate() {
            let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
            let src = &image[c * plane..(c + 1) * plane];
            let (cols, x0) = self.inside(kx);
            for (oy, dst_row) in dst.chunks_exact_mut(wo).enumerate() {
                let Some(y) = self.source(oy, ky, self.height) else {
                    dst_row.fill(T::default());
                    continue;
                };
                let src_row = &src[y * self.width..(y + 1) * self.width];
                dst_row[..cols.start].fill(T::default());
                dst_row[cols.end..].fill(T::default());
                let dst_inside = &mut dst_row[cols.clone()];
                if self.stride == 1 {
                    dst_inside.copy_from_slice(&src_row[x0..x0 + dst_inside.len()]);
                } else {
                    let taps = src_row[x0..].iter().step_by(self.stride);
                    dst_inside.iter_mut().zip(taps).for_each(|(d, &v)| *d = v);
                }
            }
        }
    }

    /// Adds a column matrix back onto one image (the adjoint of [`Self::unfold`]).
    fn fold<T: Element>(&self, col: &[T], image: &mut [T]) {
        let (ho, wo, k) = (self.out_height(), self.out_width(), self.kernel);
        let plane = self.height * self.width;
        for (row, src) in col.chunks_exact(ho * wo).enumerate() {
            let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
            let dst = &mut image[c * plane..(c + 1) * plane];
            let (cols, x0) = self.inside(kx);
            for (oy, src_row) in src.chunks_exact(wo).enumerate() {
                let Some(y) = self.source(oy, ky, self.height) else {
                    continue;
                };
                let dst_row = &mut dst[y * self.width + x0..(y + 1) * self.width];
                let taps = dst_row.iter_mut().step_by(self.stride);
                taps.zip(&src_row[cols.clone()]).for_each(|(d, &v)| *d += v);
            }
        }
    }
}

/// A row-major matrix view for [`product`]: `rows × cols` with the given strides.
#[derive(Clone, Copy)]
struct View<T> {
    ptr: *const T,
    row_stride: isize,
    col_stride: isize,
}

impl<T> View<T> {
    fn rows(slice: &[T], cols: usize) -> View<T> {
        View {
            ptr: slice.as_ptr(),
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(slice: &[T], cols: usize) -> View<T> {
        View {
            ptr: slice.as_ptr(),
            row_stride: 1,
            col_stride: cols as isize,
        }
    }
}

/// `dst (m × n, row-major) = lhs (m × k) · rhs (k × n)`, plus `dst` when `accumulate`, on
/// this thread.
fn product<T: Element>(
    dst: &mut [T],
    (m, n, k): (usize, usize, usize),
    lhs: View<T>,
    rhs: View<T>,
    accumulate: bool,
) {
    assert_eq!(dst.len(), m * n, "gemm: destination size");
    // SAFETY: every caller passes views of slices that hold the m × k and k × n matrices
    // their strides describe, and `dst` holds m × n elements (checked above) and is borrowed
    // mutably, so nothing else reads or writes it.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Calls `f` with image `i`'s column matrix: the image itself for a pointwise convolution,
/// else its unfolding into `scratch`.
fn with_columns<T: Element, R>(
    shape: &ConvShape,
    input: &[T],
    i: usize,
    scratch: &mut Vec<T>,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let image = &input[i * shape.image_len()..(i + 1) * shape.image_len()];
    if shape.is_pointwise() {
        return f(image);
    }
    scratch.resize(shape.taps() * shape.out_pixels(), T::default());
    shape.unfold(image, scratch);
    f(scratch)
}

/// The convolution's output (`batch × out_channels × Ho × Wo`).
pub fn forward<T: Element>(shape: &ConvShape, input: &[T], kernel: &[T]) -> Vec<T> {
    check(shape, input, kernel);
    let (m, n, k) = (shape.out_channels, shape.out_pixels(), shape.taps());
    let mut out = vec![T::default(); shape.output_len()];
    out.par_chunks_mut(shape.out_image_len())
        .enumerate()
        .for_each_init(Vec::new, |scratch, (i, dst)| {
            with_columns(shape, input, i, scratch, |col| {
                product(
                    dst,
                    (m, n, k),
                    View::rows(kernel, k),
                    View::rows(col, n),
                    false,
                )
            })
        });
    out
}

/// The gradient with respect to the input, given the output's (`grad`).
pub fn input_gradient<T: Element>(shape: &ConvShape, kernel: &[T], grad: &[T]) -> Vec<T> {
    assert_eq!(grad.len(), shape.output_len(), "conv: gradient size");
    assert_eq!(kernel.len(), shape.kernel_len(), "conv: kernel size");
    let (m, n, k) = (shape.taps(), shape.out_pixels(), shape.out_channels);
    let mut input = vec![T::default(); shape.input_len()];
    input
        .par_chunks_mut(shape.image_len())
        .enumerate()
        .for_each_init(Vec::new, |col, (i, dst)| {
            let dy = &grad[i * shape.out_image_len()..(i + 1) * shape.out_image_len()];
            let lhs = View::transposed(kernel, m);
            if shape.is_pointwise() {
                return product(dst, (m, n, k), lhs, View::rows(dy, n), false);
            }
            col.resize(m * n, T::default());
            product(col, (m, n, k), lhs, View::rows(dy, n), false);
            shape.fold(col, dst);
        });
    input
}

/// The gradient with respect to the kernel, given the output's (`grad`).
pub fn kernel_gradient<T: Element>(shape: &ConvShape, input: &[T], grad: &[T]) -> Vec<T> {
    assert_eq!(input.len(), shape.input_len(), "conv: input size");
    assert_eq!(grad.len(), shape.output_len(), "conv: gradient size");
    let (m, n, k) = (shape.out_channels, shape.taps(), shape.out_pixels());
    let chunks: Vec<Vec<T>> = (0..shape.batch.div_ceil(GRAD_CHUNK))
        .into_par_iter()
        .map_init(Vec::new, |scratch, chunk| {
            let mut partial = vec![T::default(); m * n];
            let images = chunk * GRAD_CHUNK..((chunk + 1) * GRAD_CHUNK).min(shape.batch);
            for (j, i) in images.enumerate() {
                let dy = &grad[i * shape.out_image_len()..(i + 1) * shape.out_image_len()];
                with_columns(shape, input, i, scratch, |col| {
                    let rhs = View::transposed(col, k);
                    product(&mut partial, (m, n, k), View::rows(dy, k), rhs, j > 0)
                });
            }
            partial
        })
        .collect();
    let mut chunks = chunks.into_iter();
    let mut total = chunks.next().unwrap_or_else(|| vec![T::default(); m * n]);
    for partial in chunks {
        total.iter_mut().zip(partial).for_each(|(t, p)| *t += p);
    }
    total
}

fn check<T>(shape: &ConvShape, input: &[T], kernel: &[T]) {
    assert_eq!(input.len(), shape.input_len(), "conv: input size");
    assert_eq!(kernel.len(), shape.kernel_len(), "conv: kernel size");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution and its gradients by their definitions.
    fn direct(shape: &ConvShape, x: &[f64], w: &[f64], dy: &[f64]) -> [Vec<f64>; 3] {
        let (ho, wo, k) = (shape.out_height(), shape.out_width(), shape.kernel);
        let xi = |b, c, y, x| ((b * shape.channels + c) * shape.height + y) * shape.width + x;
        let wi = |o, c, ky, kx| ((o * shape.channels + c) * k + ky) * k + kx;
        let yi = |b, o, y, x| ((b * shape.out_channels + o) * ho + y) * wo + x;
        let mut out = vec![0.0; shape.output_len()];
        let mut gx = vec![0.0; shape.input_len()];
        let mut gw = vec![0.0; shape.kernel_len()];
        for b in 0..shape.batch {
            for o in 0..shape.out_channels {
                for oy in 0..ho {
                    for ox in 0..wo {
                        for c in 0..shape.channels {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (Some(iy), Some(ix)) = (
                                        shape.source(oy, ky, shape.height),
                                        shape.source(ox, kx, shape.width),
                                    ) else {
                                        continue;
                                    };
                                    let g = dy[yi(b, o, oy, ox)];
                                    out[yi(b, o, oy, ox)] +=
                                        w[wi(o, c, ky, kx)] * x[xi(b, c, iy, ix)];
                                    gx[xi(b, c, iy, ix)] += w[wi(o, c, ky, kx)] * g;
                                    gw[wi(o, c, ky, kx)] += x[xi(b, c, iy, ix)] * g;
                                }
                            }
                        }
                    }
                }
            }
        }
        [out, gx, gw]
    }

    fn values(n: usize, phase: f64) -> Vec<f64> {
        (0..n).map(|i| (i as f64 * 0.37 + phase).sin()).collect()
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn kernels_match_the_definition() {
        for (kernel, stride, padding, side) in [
            (3, 1, 1, 7),
            (1, 1, 0, 6),
            (3, 2, 1, 7),
            (3, 2, 1, 8),
            (1, 2, 0, 5),
            (3, 1, 0, 5),
        ] {
            // A batch longer than one gradient chunk, so that chunks are summed.
            let shape = ConvShape {
                batch: GRAD_CHUNK + 3,
                channels: 3,
                height: side,
                width: side + 1,
                out_channels: 4,
                kernel,
                stride,
                padding,
            };
            let x = values(shape.input_len(), 0.1);
            let w = values(shape.kernel_len(), 0.7);
            let dy = values(shape.output_len(), 1.3);
            let [out, gx, gw] = direct(&shape, &x, &w, &dy);
            let case = format!("{shape:?}");
            assert!(
                max_diff(&forward(&shape, &x, &w), &out) < 1e-12,
                "forward, {case}"
            );
            assert!(
                max_diff(&input_gradient(&shape, &w, &dy), &gx) < 1e-12,
                "dx, {case}"
            );
            assert!(
                max_diff(&kernel_gradient(&shape, &x, &dy), &gw) < 1e-12,
                "dw, {case}"
            );
        }
    }

    #[test]
    fn the_kernel_gradient_does_not_depend_on_the_thread_count() {
        let shape = ConvShape {
            batch: 3 * GRAD_CHUNK,
            channels: 4,
            height: 6,
            width: 6,
            out_channels: 5,
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let x: Vec<f32> = values(shape.input_len(), 0.2)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let dy: Vec<f32> = values(shape.output_len(), 0.9)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let with_threads = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| kernel_gradient(&shape, &x, &dy))
        };
        assert_eq!(with_threads(1), with_threads(3));
    }
}
