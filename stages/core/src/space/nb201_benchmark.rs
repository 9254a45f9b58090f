//! The network NAS-Bench-201 trained for each cell, and its size as the benchmark counts it.
//!
//! Stem Conv3x3 + BN; N cells at C channels; a residual reduction block to 2C; N cells; one to
//! 4C; N cells; BN + ReLU, global average pooling and a linear classifier with bias. A reduction
//! block is ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus a shortcut AvgPool(2)-Conv1x1
//! without BN. Inside a cell the conv ops are ReLU-Conv-BN and keep the channels.
//!
//! The benchmark counts parameters of every conv, BN (γ and β) and the classifier, and FLOPs
//! as the multiply-accumulates of the convs and the classifier (its bias included); pooling,
//! BN, ReLU and the additions are free. The counts follow from the arch alone.
use super::nb201_arch::{Arch, Op};

/// The benchmark's network: width, depth, classes and image side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchmarkNet {
    /// Channels of the first stage (the benchmark's C).
    pub channels: usize,
    /// Cells per stage (the benchmark's N).
    pub layers: usize,
    pub num_classes: usize,
    /// Side of the square input images.
    pub side: usize,
}

impl Default for BenchmarkNet {
    /// The setting NAS-Bench-201 trained on CIFAR-10: C=16, N=5, 32×32 images.
    fn default() -> Self {
        BenchmarkNet {
            channels: 16,
            layers: 5,
            num_classes: 10,
            side: 32,
        }
    }
}

/// A network's size: what the `params` and `flops` proxies report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    pub params: u64,
    /// Multiply-accumulates of one image's forward pass.
    pub flops: u64,
}

impl Size {
    /// A `k`×`k` convolution from `c_in` to `c_out` channels, without bias, whose output is
    /// `side`×`side`.
    fn conv(c_in: usize, c_out: usize, k: usize, side: usize) -> Size {
        let weights = (c_in * c_out * k * k) as u64;
        Size {
            params: weights,
            flops: weights * (side * side) as u64,
        }
    }

    /// An affine batch norm: γ and β.
    fn bn(channels: usize) -> Size {
        Size {
            params: 2 * channels as u64,
            flops: 0,
        }
    }

    fn conv_bn(c_in: usize, c_out: usize, k: usize, side: usize) -> Size {
        Size::conv(c_in, c_out, k, side) + Size::bn(c_out)
    }
}

impl std::ops::Add for Size {
    type Output = Size;
    fn add(self, other: Size) -> Size {
        Size {
            params: self.params + other.params,
            flops: self.flops + other.flops,
        }
    }
}

impl std::iter::Sum for Size {
    fn sum<I: Iterator<Item = Size>>(iter: I) -> Size {
        iter.fold(Size::default(), |a, b| a + b)
    }
}

impl BenchmarkNet {
    /// The size of this network with `arch` in every cell.
    pub fn size(&self, arch: &Arch) -> Size {
        let c = self.channels;
        let stem = Size::conv_bn(3, c, 3, self.side);
        let stages: Size = (0..3)
            .map(|stage| {
                let (width, side) = (c << stage, self.side >> stage);
                let cells: Size = (0..self.layers).map(|_| cell(arch, width, side)).sum();
                match stage {
                    0 => cells,
                    _ => reduction(width / 2, width, side) + cells,
                }
            })
            .sum();
        let last = 4 * c;
        let head = Size::bn(last)
            + Size {
                params: (last * self.num_classes + self.num_classes) as u64,
                flops: (last * self.num_classes + self.num_classes) as u64,
            };
        stem + stages + head
    }
}

/// One cell at `width` channels on `side`×`side` maps: only its conv ops cost anything.
fn cell(arch: &Arch, width: usize, side: usize) -> Size {
    arch.ops
        .iter()
        .map(|op| match op {
            Op::NorConv1x1 => Size::conv_bn(width, width, 1, side),
            Op::NorConv3x3 => Size::conv_bn(width, width, 3, side),
            Op::None | Op::SkipConnect | Op::AvgPool3x3 => Size::default(),
        })
        .sum()
}

/// The residual block from `c_in` to `c_out` channels whose output is `side`×`side`.
fn reduction(c_in: usize, c_out: usize, side: usize) -> Size {
    Size::conv_bn(c_in, c_out, 3, side)
        + Size::conv_bn(c_out, c_out, 3, side)
        + Size::conv(c_in, c_out, 1, side)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published code's counts (`bench/proxies/reference-cifar10-seed0.csv`, from
    /// `bench/proxies/reference.py` running AZ-NAS's model and xautodl's counter), in millions.
    fn published() -> Vec<(Arch, &'static str, f64)> {
        let csv = include_str!("../../../../bench/proxies/reference-cifar10-seed0.csv");
        csv.lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let component = match fields[2] {
                    "params_M" => "params",
                    "flops_M" => "flops",
                    _ => return None,
                };
                Some((
                    Arch::parse(fields[0]).unwrap(),
                    component,
                    fields[3].parse().unwrap(),
                ))
            })
            .collect()
    }

    #[test]
    fn counts_match_the_published_code_on_every_reference_cell() {
        let rows = published();
        assert_eq!(rows.len(), 60, "30 cells, params and flops each");
        let net = BenchmarkNet::default();
        for (arch, component, millions) in rows {
            let size = net.size(&arch);
            let ours = match component {
                "params" => size.params,
                _ => size.flops,
            };
            // The published values are printed in millions, to five or six decimals.
            let published = millions * 1e6;
            assert!(
                (ours as f64 - published).abs() <= 5.0,
                "{component} of {arch}: ours {ours}, published {published}"
            );
        }
    }

    #[test]
    fn the_benchmarks_best_cell_has_its_published_size() {
        let arch = Arch::parse(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        )
        .unwrap();
        let size = BenchmarkNet::default().size(&arch);
        assert_eq!(size.params, 1_073_466);
        assert_eq!(size.flops, 153_272_970);
    }

    #[test]
    fn a_cell_without_convs_costs_only_the_skeleton() {
        let empty = Arch::new([Op::None; 6]);
        let pools = Arch::new([Op::AvgPool3x3; 6]);
        let net = BenchmarkNet::default();
        assert_eq!(net.size(&empty), net.size(&pools));
        // Stem, two reduction blocks, last BN and the classifier.
        let skeleton = 464 + 14_464 + 57_600 + 128 + 650;
        assert_eq!(net.size(&empty).params, skeleton);
    }
}
