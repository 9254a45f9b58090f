//! Linear regions: the number of distinct ReLU activation patterns over sampled inputs.
use std::collections::HashSet;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::net::tape::Tape;

/// A region count over `samples` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCount {
    pub regions: u64,
    pub samples: u64,
}

impl RegionCount {
    /// Every sample fell in its own region: the count says only "at least this many".
    pub fn saturated(&self) -> bool {
        self.regions >= self.samples
    }
}

/// Accumulates activation patterns batch by batch and counts the distinct ones exactly.
#[derive(Default)]
pub struct PatternSet {
    patterns: HashSet<Vec<u64>>,
    samples: u64,
}

impl PatternSet {
    /// Adds the pattern of every sample of the batch recorded on `tape`: the signs of all
    /// ReLU outputs on feature maps, concatenated in execution order.
    pub fn add_batch(&mut self, tape: &Tape) -> Result<()> {
        let relus: Vec<&Tensor> = tape.relu_outputs().collect();
        let Some(first) = relus.first() else {
            return Ok(());
        };
        let batch = first.dim(0)?;
        let flat = relus
            .iter()
            .map(|t| t.flatten_from(1))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let signs = Tensor::cat(&flat, 1)?
            .gt(0f64)?
            .to_dtype(DType::U8)?
            .to_vec2::<u8>()?;
        for row in signs.iter().take(batch) {
            self.patterns.insert(pack_bits(row));
        }
        self.samples += batch as u64;
        Ok(())
    }

    pub fn count(&self) -> RegionCount {
        RegionCount {
            regions: self.patterns.len() as u64,
            samples: self.samples,
        }
    }
}

fn pack_bits(bits: &[u8]) -> Vec<u64> {
    bits.chunks(64)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::params::{InitScheme, ParamSpecs};
    use crate::net::tape::ConvCfg;
    use candle_core::Device;

    /// One ReLU unit per line through the plane: n lines in general position cut the plane
    /// into 1 + n + n(n-1)/2 regions, and a dense grid over a large box visits all of them.
    #[test]
    fn counts_the_regions_of_an_arrangement_of_lines() -> Result<()> {
        let n_lines = 4;
        // Lines x·cos(θ) + y·sin(θ) = 0 through the origin would be degenerate, so shift them
        // with a constant third input channel: a·x + b·y + c = 0.
        let lines: [[f32; 3]; 4] = [
            [1.0, 0.0, 0.1],
            [0.0, 1.0, -0.2],
            [1.0, 1.0, 0.3],
            [1.0, -1.0, 0.05],
        ];
        let weight: Vec<f32> = lines.iter().flatten().copied().collect();
        let mut specs3 = ParamSpecs::default();
        let w3 = specs3.conv("w".into(), n_lines, 3, 1);
        let params3 = specs3
            .init(InitScheme::TorchDefault, 0, &Device::Cpu)?
            .with_tensor(
                w3,
                Tensor::from_vec(weight, (n_lines, 3, 1, 1), &Device::Cpu)?,
            );
        let steps = 200;
        let mut points = Vec::new();
        for i in 0..steps {
            for j in 0..steps {
                let x = -5.0 + 10.0 * i as f32 / (steps - 1) as f32;
                let y = -5.0 + 10.0 * j as f32 / (steps - 1) as f32;
                points.extend([x, y, 1.0]);
            }
        }
        let input = Tensor::from_vec(points, (steps * steps, 3, 1, 1), &Device::Cpu)?;
        let mut tape = Tape::new(&params3);
        let x = tape.input(input);
        let a = tape.conv(x, w3, ConvCfg::same(1))?;
        tape.relu(a)?;
        let mut set = PatternSet::default();
        set.add_batch(&tape)?;
        let count = set.count();
        assert_eq!(count.regions, 1 + 4 + 6);
        assert_eq!(count.samples, (steps * steps) as u64);
        assert!(!count.saturated());
        Ok(())
    }

    #[test]
    fn distinct_samples_saturate() -> Result<()> {
        let specs = ParamSpecs::default();
        let params = specs.init(InitScheme::TorchDefault, 0, &Device::Cpu)?;
        let mut tape = Tape::new(&params);
        // Four samples, each with a different sign pattern over two units.
        let x = tape.input(Tensor::from_vec(
            vec![1f32, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0],
            (4, 2, 1, 1),
            &Device::Cpu,
        )?);
        tape.relu(x)?;
        let mut set = PatternSet::default();
        set.add_batch(&tape)?;
        assert_eq!(
            set.count(),
            RegionCount {
                regions: 4,
                samples: 4
            }
        );
        assert!(set.count().saturated());
        Ok(())
    }
}
