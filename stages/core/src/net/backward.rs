//! The backward entry of the tape: which of its two backward passes runs.
use candle_core::{DType, Tensor};

use super::params::ParamId;
use super::row_backward::RowBackward;
use super::tape::{Tape, Var};
use crate::error::Result;

impl Tape<'_> {
    /// Pushes `cotangent` (shape `(T, B, ...)` of `out`) back through the tape and returns, for
    /// every parameter that influenced `out`, its gradient for each of the `T` cotangents as a
    /// `(T, numel)` matrix, in the order the parameters were first used.
    ///
    /// f32 on the CPU runs the rows one at a time in batch-last layout (`row_backward`);
    /// elsewhere all rows go through one stacked pass.
    pub fn backward(&self, out: Var, cotangent: &Tensor) -> Result<Vec<(ParamId, Tensor)>> {
        let on_cpu_f32 = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
        if on_cpu_f32(cotangent) && on_cpu_f32(self.value(out)) {
            return RowBackward::new(self, out)?.backward(out, cotangent);
        }
        self.backward_stacked(out, cotangent)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::net::params::{InitScheme, ParamSpecs};
    use crate::net::tape::ConvCfg;

    /// The row-wise CPU backward and the stacked backward agree on every op, with several
    /// cotangent rows.
    #[test]
    fn row_backward_matches_stacked_backward() -> Result<()> {
        let dev = Device::Cpu;
        let mut specs = ParamSpecs::default();
        let w1 = specs.conv("w1".into(), 4, 3, 3);
        let w2 = specs.conv("w2".into(), 4, 4, 1);
        let gamma = specs.bn("gamma".into(), 12);
        let w3 = specs.linear("w3".into(), 5, 12);
        let wd = specs.conv("wd".into(), 4, 2, 3);
        let ws = specs.conv("ws".into(), 4, 4, 3);
        let params = specs.init(InitScheme::KaimingFanIn, 7, &dev)?;
        let x = Tensor::randn(0f32, 1.0, (6, 3, 8, 8), &dev)?;
        let mut tape = Tape::new(&params);
        let input = tape.input(x);
        let a = tape.conv(input, w1, ConvCfg::same(3))?;
        let r = tape.relu(a)?;
        // Dilated grouped conv, avg pools, a weighted sum, a strided 3x3 conv.
        let dil = tape.conv(
            r,
            wd,
            ConvCfg {
                padding: 2,
                dilation: 2,
                groups: 2,
                ..ConvCfg::same(3)
            },
        )?;
        let pooled = tape.avg_pool3(dil, 1)?;
        let mixed = tape.weighted_sum(vec![(pooled, 0.5), (r, 2.0)])?;
        let strided = tape.conv(
            mixed,
            ws,
            ConvCfg {
                stride: 2,
                ..ConvCfg::same(3)
            },
        )?;
        let half = tape.avg_pool2(mixed)?;
        let shortcut = tape.conv(half, w2, ConvCfg::same(1))?;
        let maxed = tape.max_pool3(r, 2)?;
        let averaged = tape.avg_pool3(r, 2)?;
        // FactorizedReduce's shifted path; `w2` is used twice.
        let shifted = tape.shift(r)?;
        let shifted = tape.conv(
            shifted,
            w2,
            ConvCfg {
                stride: 2,
                ..ConvCfg::same(1)
            },
        )?;
        let sum = tape.weighted_sum(vec![(strided, 1.0), (shortcut, 1.0)])?;
        let sum = tape.weighted_sum(vec![(sum, 1.0), (shifted, -1.0)])?;
        let cat = tape.concat(vec![sum, maxed, averaged])?;
        let bn = tape.batch_norm(cat, gamma)?;
        let act = tape.relu(bn)?;
        let gap = tape.global_avg_pool(act)?;
        let logits = tape.linear(gap, w3)?;
        let cot = Tensor::randn(0f32, 1.0, (3, 6, 5), &dev)?;
        let rows = tape.backward(logits, &cot)?;
        let stacked = tape.backward_stacked(logits, &cot)?;
        assert_eq!(rows.len(), stacked.len());
        for ((id_r, g_r), (id_s, g_s)) in rows.iter().zip(&stacked) {
            assert_eq!(id_r, id_s);
            assert_eq!(g_r.dims(), g_s.dims());
            let scale = g_s.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-3);
            let diff = (g_r - g_s)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let name = &params.spec(*id_r).name;
            assert!(
                diff <= 1e-5 * scale,
                "{name}: max diff {diff} (scale {scale})"
            );
        }
        Ok(())
    }
}
