//! The NASNet-style DARTS supernet (every op on every edge, masked) and its thin variant.
//!
//! Macro structure as the reference's `NASNetworkDARTS`: stem Conv3x3 + BN, then cells with
//! channels `[C]*N, 2C, [2C]*(N-1), 4C, [4C]*(N-1)` (the 2C and 4C cells reduce), truncated to
//! `depth` cells, then BN + ReLU, global average pool and a linear classifier. A cell
//! preprocesses its two inputs (ReLU-Conv1x1-BN, or FactorizedReduce after a reduction), sums
//! the active ops of every edge into four step nodes and concatenates them. The thin net has
//! no stem: its input is `C` channels. Every active op on an edge carries weight 1/k.
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::darts_arch::{edges, CellType, DartsMask, Op, NUM_OPS, STEPS};
use super::SpaceNet;
use crate::error::Result;
use crate::net::params::{ParamId, ParamSpecs};
use crate::net::tape::{ConvCfg, Tape, Var};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsNetConfig {
    /// Channels of the first cell (C).
    pub channels: usize,
    /// Cells per stage (N).
    pub layers: usize,
    /// Cells kept from the start of the layout (TE-NAS: 2, one normal and one reduction).
    pub depth: usize,
    pub stem_multiplier: usize,
    pub num_classes: usize,
    /// The linear-region net: no stem, `channels` input channels.
    pub thin: bool,
}

impl DartsNetConfig {
    /// The NTK supernet TE-NAS uses on DARTS (C=1, N=1, depth 2, stem multiplier 1).
    pub fn supernet(channels: usize, layers: usize, num_classes: usize) -> Self {
        DartsNetConfig {
            channels,
            layers,
            depth: 2,
            stem_multiplier: 1,
            num_classes,
            thin: false,
        }
    }

    /// The thin linear-region net TE-NAS uses: the same cells (C=1, N=1) without the stem.
    pub fn thin(num_classes: usize) -> Self {
        DartsNetConfig {
            thin: true,
            ..Self::supernet(1, 1, num_classes)
        }
    }

    /// Channels of the network's input images.
    pub fn input_channels(&self) -> usize {
        if self.thin {
            self.channels * self.stem_multiplier
        } else {
            3
        }
    }

    /// `(channels, reduces)` of each cell.
    fn layout(&self) -> Vec<(usize, bool)> {
        let (c, n) = (self.channels, self.layers);
        let mut cells = vec![(c, false); n];
        for mult in [2, 4] {
            cells.push((c * mult, true));
            cells.extend(std::iter::repeat_n((c * mult, false), n - 1));
        }
        cells.truncate(self.depth);
        cells
    }
}

/// ReLU → conv → BN, or ReLU → depthwise → pointwise → BN (`depthwise` set).
#[derive(Clone, Copy, Debug)]
struct ConvUnit {
    depthwise: Option<(ParamId, ConvCfg)>,
    conv: ParamId,
    conv_cfg: ConvCfg,
    bn: ParamId,
}

/// FactorizedReduce: ReLU, two stride-2 1x1 convs (the second on the map shifted by one
/// pixel), concatenated, BN.
#[derive(Clone, Copy, Debug)]
struct FactorizedReduce {
    convs: [ParamId; 2],
    bn: ParamId,
}

#[derive(Clone, Copy, Debug)]
enum Preprocess {
    Conv(ConvUnit),
    Reduce(FactorizedReduce),
}

/// The parameterised ops of one edge (pools and identity have none).
#[derive(Clone, Debug)]
struct EdgeOps {
    stride: usize,
    sep3: [ConvUnit; 2],
    sep5: [ConvUnit; 2],
    dil3: ConvUnit,
    dil5: ConvUnit,
    /// The skip connection of a stride-2 edge.
    reduce: Option<FactorizedReduce>,
}

#[derive(Clone, Debug)]
struct Cell {
    kind: CellType,
    preprocess: [Preprocess; 2],
    edges: Vec<EdgeOps>,
}

#[derive(Clone, Debug)]
pub struct DartsNet {
    config: DartsNetConfig,
    specs: ParamSpecs,
    stem: Option<(ParamId, ParamId)>,
    cells: Vec<Cell>,
    last_bn: ParamId,
    classifier: ParamId,
}

impl DartsNet {
    pub fn new(config: DartsNetConfig) -> Self {
        let mut specs = ParamSpecs::default();
        let c_stem = config.channels * config.stem_multiplier;
        let stem = (!config.thin).then(|| {
            (
                specs.conv("stem.conv".into(), c_stem, 3, 3),
                specs.bn("stem.bn".into(), c_stem),
            )
        });
        let (mut c_prev_prev, mut c_prev, mut reduction_prev) = (c_stem, c_stem, false);
        let mut cells = Vec::new();
        for (i, (c, reduction)) in config.layout().into_iter().enumerate() {
            let prefix = format!("cells.{i}");
            let pre0 = if reduction_prev {
                Preprocess::Reduce(factorized_reduce(
                    &mut specs,
                    &format!("{prefix}.preprocess0"),
                    c_prev_prev,
                    c,
                ))
            } else {
                Preprocess::Conv(conv_unit(
                    &mut specs,
                    &format!("{prefix}.preprocess0"),
                    c_prev_prev,
                    c,
                    1,
                    1,
                    1,
                    false,
                ))
            };
            let pre1 = Preprocess::Conv(conv_unit(
                &mut specs,
                &format!("{prefix}.preprocess1"),
                c_prev,
                c,
                1,
                1,
                1,
                false,
            ));
            let edges = edges()
                .map(|(step, from)| {
                    let stride = if reduction && from < 2 { 2 } else { 1 };
                    edge_ops(
                        &mut specs,
                        &format!("{prefix}.edges.{step}<-{from}"),
                        c,
                        stride,
                    )
                })
                .collect();
            let kind = if reduction {
                CellType::Reduce
            } else {
                CellType::Normal
            };
            cells.push(Cell {
                kind,
                preprocess: [pre0, pre1],
                edges,
            });
            (c_prev_prev, c_prev, reduction_prev) = (c_prev, STEPS * c, reduction);
        }
        let last_bn = specs.bn("lastact.bn".into(), c_prev);
        let classifier = specs.linear("classifier".into(), config.num_classes, c_prev);
        DartsNet {
            config,
            specs,
            stem,
            cells,
            last_bn,
            classifier,
        }
    }

    pub fn config(&self) -> &DartsNetConfig {
        &self.config
    }
}

impl SpaceNet for DartsNet {
    type Mask = DartsMask;

    fn specs(&self) -> &ParamSpecs {
        &self.specs
    }

    fn forward(&self, tape: &mut Tape, input: Tensor, mask: &DartsMask) -> Result<Var> {
        let mut x = tape.input(input);
        if let Some((conv, bn)) = self.stem {
            x = tape.conv(x, conv, ConvCfg::same(3))?;
            x = tape.batch_norm(x, bn)?;
        }
        let (mut s0, mut s1) = (x, x);
        for cell in &self.cells {
            let out = cell_forward(tape, cell, s0, s1, mask)?;
            (s0, s1) = (s1, out);
        }
        let x = tape.batch_norm(s1, self.last_bn)?;
        let x = tape.relu(x)?;
        let x = tape.global_avg_pool(x)?;
        tape.linear(x, self.classifier)
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_unit(
    specs: &mut ParamSpecs,
    name: &str,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    depthwise: bool,
) -> ConvUnit {
    let spatial = ConvCfg {
        stride,
        padding: dilation * (kernel - 1) / 2,
        dilation,
        groups: 1,
    };
    if depthwise {
        ConvUnit {
            depthwise: Some((
                specs.conv(format!("{name}.depthwise"), cin, 1, kernel),
                ConvCfg {
                    groups: cin,
                    ..spatial
                },
            )),
            conv: specs.conv(format!("{name}.pointwise"), cout, cin, 1),
            conv_cfg: ConvCfg::same(1),
            bn: specs.bn(format!("{name}.bn"), cout),
        }
    } else {
        ConvUnit {
            depthwise: None,
            conv: specs.conv(format!("{name}.conv"), cout, cin, kernel),
            conv_cfg: spatial,
            bn: specs.bn(format!("{name}.bn"), cout),
        }
    }
}

fn factorized_reduce(
    specs: &mut ParamSpecs,
    name: &str,
    cin: usize,
    cout: usize,
) -> FactorizedReduce {
    let halves = [cout / 2, cout - cout / 2];
    FactorizedReduce {
        convs: [0, 1].map(|i| specs.conv(format!("{name}.convs.{i}"), halves[i], cin, 1)),
        bn: specs.bn(format!("{name}.bn"), cout),
    }
}

fn edge_ops(specs: &mut ParamSpecs, prefix: &str, c: usize, stride: usize) -> EdgeOps {
    let sep = |specs: &mut ParamSpecs, op: Op, k: usize| {
        let name = format!("{prefix}.{}", op.name());
        [
            conv_unit(specs, &format!("{name}.a"), c, c, k, stride, 1, true),
            conv_unit(specs, &format!("{name}.b"), c, c, k, 1, 1, true),
        ]
    };
    let sep3 = sep(specs, Op::SepConv3x3, 3);
    let sep5 = sep(specs, Op::SepConv5x5, 5);
    let mut dil = |op: Op, k: usize| {
        conv_unit(
            specs,
            &format!("{prefix}.{}", op.name()),
            c,
            c,
            k,
            stride,
            2,
            true,
        )
    };
    let (dil3, dil5) = (dil(Op::DilConv3x3, 3), dil(Op::DilConv5x5, 5));
    let reduce = (stride == 2)
        .then(|| factorized_reduce(specs, &format!("{prefix}.{}", Op::SkipConnect.name()), c, c));
    EdgeOps {
        stride,
        sep3,
        sep5,
        dil3,
        dil5,
        reduce,
    }
}

/// A node's ReLU, recorded once and shared by every op that starts with it (same values, same
/// gradients, same activation patterns).
struct Relus(Vec<Option<Var>>);

impl Relus {
    fn of(&mut self, tape: &mut Tape, nodes: &[Var], i: usize) -> Result<Var> {
        match self.0[i] {
            Some(r) => Ok(r),
            None => Ok(*self.0[i].insert(tape.relu(nodes[i])?)),
        }
    }
}

/// The conv → BN part of a unit whose input ReLU is `relu`.
fn after_relu(tape: &mut Tape, relu: Var, unit: &ConvUnit) -> Result<Var> {
    let mut x = relu;
    if let Some((dw, cfg)) = unit.depthwise {
        x = tape.conv(x, dw, cfg)?;
    }
    let x = tape.conv(x, unit.conv, unit.conv_cfg)?;
    tape.batch_norm(x, unit.bn)
}

fn reduce_after_relu(tape: &mut Tape, relu: Var, fr: &FactorizedReduce) -> Result<Var> {
    let stride2 = ConvCfg {
        stride: 2,
        ..ConvCfg::same(1)
    };
    let a = tape.conv(relu, fr.convs[0], stride2)?;
    let shifted = tape.shift(relu)?;
    let b = tape.conv(shifted, fr.convs[1], stride2)?;
    let cat = tape.concat(vec![a, b])?;
    tape.batch_norm(cat, fr.bn)
}

fn preprocess(tape: &mut Tape, x: Var, p: &Preprocess) -> Result<Var> {
    let relu = tape.relu(x)?;
    match p {
        Preprocess::Conv(unit) => after_relu(tape, relu, unit),
        Preprocess::Reduce(fr) => reduce_after_relu(tape, relu, fr),
    }
}

fn cell_forward(tape: &mut Tape, cell: &Cell, s0: Var, s1: Var, mask: &DartsMask) -> Result<Var> {
    let active = mask.cell(cell.kind);
    let mut nodes = vec![
        preprocess(tape, s0, &cell.preprocess[0])?,
        preprocess(tape, s1, &cell.preprocess[1])?,
    ];
    let mut relus = Relus(vec![None; 2 + STEPS]);
    let mut edge_index = 0;
    for _ in 0..STEPS {
        let mut terms = Vec::new();
        for from in 0..nodes.len() {
            let (ops, row) = (&cell.edges[edge_index], &active[edge_index]);
            edge_index += 1;
            let k = row.iter().filter(|&&a| a).count();
            for op in (0..NUM_OPS).filter(|&o| row[o]) {
                if let Some(out) = op_forward(tape, ops, Op::ALL[op], &nodes, from, &mut relus)? {
                    terms.push((out, 1.0 / k as f64));
                }
            }
        }
        let node = if terms.is_empty() {
            // No active input edge: the node is a zero map of the cell's output size.
            let zeros = step_zeros(tape, cell, nodes[1])?;
            tape.input(zeros)
        } else {
            tape.weighted_sum(terms)?
        };
        nodes.push(node);
    }
    tape.concat(nodes[2..].to_vec())
}

fn op_forward(
    tape: &mut Tape,
    ops: &EdgeOps,
    op: Op,
    nodes: &[Var],
    from: usize,
    relus: &mut Relus,
) -> Result<Option<Var>> {
    let x = nodes[from];
    let out = match op {
        Op::None => return Ok(None),
        Op::SkipConnect => match &ops.reduce {
            None => x,
            Some(fr) => {
                let relu = relus.of(tape, nodes, from)?;
                reduce_after_relu(tape, relu, fr)?
            }
        },
        Op::AvgPool3x3 => tape.avg_pool3(x, ops.stride)?,
        Op::MaxPool3x3 => tape.max_pool3(x, ops.stride)?,
        Op::SepConv3x3 | Op::SepConv5x5 => {
            let [a, b] = if op == Op::SepConv3x3 {
                &ops.sep3
            } else {
                &ops.sep5
            };
            let relu = relus.of(tape, nodes, from)?;
            let mid = after_relu(tape, relu, a)?;
            let mid = tape.relu(mid)?;
            after_relu(tape, mid, b)?
        }
        Op::DilConv3x3 | Op::DilConv5x5 => {
            let unit = if op == Op::DilConv3x3 {
                &ops.dil3
            } else {
                &ops.dil5
            };
            let relu = relus.of(tape, nodes, from)?;
            after_relu(tape, relu, unit)?
        }
    };
    Ok(Some(out))
}

fn step_zeros(tape: &Tape, cell: &Cell, input: Var) -> Result<Tensor> {
    let (b, c, h, w) = tape.value(input).dims4()?;
    let shape = match cell.kind {
        CellType::Normal => (b, c, h, w),
        CellType::Reduce => (b, c, h.div_ceil(2), w.div_ceil(2)),
    };
    Ok(Tensor::zeros(
        shape,
        tape.value(input).dtype(),
        tape.value(input).device(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::params::InitScheme;
    use crate::space::darts_arch::NUM_EDGES;
    use crate::test_support::assert_jacobian_matches_fd;
    use candle_core::{DType, Device};

    /// f64 central differences against the stacked backward on weights of every op kind, on
    /// an odd-sized input so the stride-2 edges see a ragged last row and column.
    #[test]
    fn jacobian_matches_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let net = DartsNet::new(DartsNetConfig::supernet(2, 1, 3));
        let params = net
            .specs()
            .init(InitScheme::KaimingFanOut, 9, &dev)?
            .to_dtype(DType::F64)?;
        let x = Tensor::randn(0f64, 1.0, (3, 3, 7, 7), &dev)?;
        let mut mask = DartsMask::initial();
        mask.ops[0][4][Op::SepConv5x5.index()] = false;
        mask.ops[1][9] = [false; NUM_OPS];
        let names = [
            "stem.conv",
            "cells.0.preprocess0.conv",
            "cells.0.edges.1<-2.sep_conv_3x3.b.depthwise",
            "cells.0.edges.3<-4.dil_conv_5x5.pointwise",
            "cells.1.preprocess1.bn",
            "cells.1.edges.0<-1.skip_connect.convs.1",
            "cells.1.edges.2<-0.sep_conv_5x5.a.depthwise",
            "cells.1.edges.3<-1.dil_conv_3x3.depthwise",
            "classifier",
        ];
        let grads = assert_jacobian_matches_fd(&net, &params, &x, &mask, &names)?;
        // The emptied reduction edge has no gradients.
        assert!(grads
            .iter()
            .all(|(id, _)| !params.spec(*id).name.starts_with("cells.1.edges.3<-0.")));
        Ok(())
    }

    /// The CPU row-wise backward agrees with the stacked one on the whole supernet.
    #[test]
    fn row_backward_matches_stacked_backward() -> Result<()> {
        let dev = Device::Cpu;
        let net = DartsNet::new(DartsNetConfig::supernet(1, 1, 10));
        let params = net.specs().init(InitScheme::TorchDefault, 4, &dev)?;
        let x = Tensor::randn(0f32, 1.0, (4, 3, 9, 9), &dev)?;
        let mut tape = Tape::new(&params);
        let logits = net.forward(&mut tape, x, &DartsMask::initial())?;
        let cot = Tensor::ones((1, 4, 10), DType::F32, &dev)?;
        let cot = Tensor::eye(4, DType::F32, &dev)?
            .unsqueeze(2)?
            .broadcast_mul(&cot)?
            .contiguous()?;
        let rows = tape.backward(logits, &cot)?;
        let stacked = tape.backward_stacked(logits, &cot)?;
        assert_eq!(rows.len(), stacked.len());
        // One scale for all: BN scales feeding another BN have gradients that are zero up to
        // rounding, so a per-tensor relative bound would compare noise.
        let mut scale = 0f32;
        for (_, s) in &stacked {
            scale = scale.max(s.abs()?.max_all()?.to_scalar::<f32>()?);
        }
        for ((id, r), (_, s)) in rows.iter().zip(&stacked) {
            let diff = (r - s)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff <= 1e-4 * scale,
                "{}: {diff} (scale {scale})",
                params.spec(*id).name
            );
        }
        Ok(())
    }

    #[test]
    fn shapes_and_parameter_inventory() -> Result<()> {
        let dev = Device::Cpu;
        let net = DartsNet::new(DartsNetConfig::supernet(1, 1, 10));
        let specs = net.specs().specs();
        // Two cells of 14 edges; the reduction cell's 8 stride-2 edges (from nodes 0 and 1)
        // hold a FactorizedReduce.
        let reduce_convs = specs
            .iter()
            .filter(|s| s.name.contains("skip_connect.convs.0"))
            .count();
        assert_eq!(reduce_convs, 8);
        assert_eq!(
            specs
                .iter()
                .filter(|s| s.name.ends_with("sep_conv_3x3.a.depthwise"))
                .count(),
            2 * NUM_EDGES
        );
        // Normal cell out 4·C = 4 channels, reduction cell out 4·2C = 8: the classifier's input.
        assert_eq!(specs.last().unwrap().shape, vec![10, 8]);
        let params = net.specs().init(InitScheme::TorchDefault, 1, &dev)?;
        let mut tape = Tape::new(&params);
        let logits = net.forward(
            &mut tape,
            Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &dev)?,
            &DartsMask::initial(),
        )?;
        assert_eq!(tape.value(logits).dims(), &[2, 10]);

        let thin = DartsNet::new(DartsNetConfig::thin(10));
        assert!(thin
            .specs()
            .specs()
            .iter()
            .all(|s| !s.name.starts_with("stem")));
        let params = thin.specs().init(InitScheme::TorchDefault, 1, &dev)?;
        let mut tape = Tape::new(&params);
        let crops = Tensor::randn(0f32, 1.0, (5, thin.config().input_channels(), 3, 3), &dev)?;
        let logits = thin.forward(&mut tape, crops, &DartsMask::initial())?;
        assert_eq!(tape.value(logits).dims(), &[5, 10]);
        // The reduction cell maps 3x3 to 2x2 on every path, FactorizedReduce included.
        assert!(tape.relu_outputs().any(|r| r.dims()[2..] == [2, 2]));
        Ok(())
    }
}
