//! The NAS-Bench-201 supernet (every op on every edge, masked) and its thin variant.
//!
//! Structure as in the spec: stem Conv3x3+BN, stages `[C]*N, ResBlock(2C), [2C]*N,
//! ResBlock(4C), [4C]*N`, then BN+ReLU, global average pool and a linear classifier (no bias:
//! it changes no score). The thin net has no stem and only the first cell. Every active op on
//! an edge carries weight 1/k for the k active ops (a softmax over the unpruned alphas).
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::nb201_arch::{Mask, Op, EDGES, NUM_OPS};
use super::SpaceNet;
use crate::error::Result;
use crate::net::params::{ParamId, ParamSpecs};
use crate::net::tape::{ConvCfg, Tape, Var};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Channels of the first stage.
    pub channels: usize,
    /// Cells per stage.
    pub layers: usize,
    pub num_classes: usize,
    /// The linear-region net: no stem, only the first cell, `channels` input channels.
    pub thin: bool,
}

impl NetConfig {
    /// The NTK supernet TE-NAS uses on NAS-Bench-201 (C=3, N=1).
    pub fn supernet(num_classes: usize) -> Self {
        NetConfig {
            channels: 3,
            layers: 1,
            num_classes,
            thin: false,
        }
    }

    /// The thin linear-region net (C=1, one cell, no stem).
    pub fn thin(num_classes: usize) -> Self {
        NetConfig {
            channels: 1,
            layers: 1,
            num_classes,
            thin: true,
        }
    }

    /// Channels of the network's input images.
    pub fn input_channels(&self) -> usize {
        if self.thin {
            self.channels
        } else {
            3
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ConvBn {
    conv: ParamId,
    bn: ParamId,
    kernel: usize,
}

#[derive(Clone, Debug)]
enum Block {
    Cell {
        edges: Vec<[Option<ConvBn>; NUM_OPS]>,
    },
    Res {
        conv_a: ConvBn,
        conv_b: ConvBn,
        shortcut: ParamId,
    },
}

/// A built network: parameter declarations plus the wiring that uses them.
#[derive(Clone, Debug)]
pub struct Nb201Net {
    config: NetConfig,
    specs: ParamSpecs,
    stem: Option<(ParamId, ParamId)>,
    blocks: Vec<Block>,
    last_bn: ParamId,
    classifier: ParamId,
}

impl Nb201Net {
    pub fn new(config: NetConfig) -> Self {
        let mut specs = ParamSpecs::default();
        let c = config.channels;
        let stem = (!config.thin).then(|| {
            (
                specs.conv("stem.conv".into(), c, 3, 3),
                specs.bn("stem.bn".into(), c),
            )
        });
        let mut blocks = Vec::new();
        let mut c_prev = c;
        for (i, (c_curr, reduction)) in stage_layout(&config).into_iter().enumerate() {
            let prefix = format!("cells.{i}");
            blocks.push(if reduction {
                Block::Res {
                    conv_a: conv_bn(&mut specs, format!("{prefix}.conv_a"), c_curr, c_prev, 3),
                    conv_b: conv_bn(&mut specs, format!("{prefix}.conv_b"), c_curr, c_curr, 3),
                    shortcut: specs.conv(format!("{prefix}.shortcut.conv"), c_curr, c_prev, 1),
                }
            } else {
                Block::Cell {
                    edges: cell_edges(&mut specs, &prefix, c_curr),
                }
            });
            c_prev = c_curr;
        }
        let last_bn = specs.bn("lastact.bn".into(), c_prev);
        let classifier = specs.linear("classifier".into(), config.num_classes, c_prev);
        Nb201Net {
            config,
            specs,
            stem,
            blocks,
            last_bn,
            classifier,
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    pub fn specs(&self) -> &ParamSpecs {
        &self.specs
    }

    /// Records the forward pass of `input` through the network with the ops of `mask`;
    /// returns the logits.
    pub fn forward(&self, tape: &mut Tape, input: Tensor, mask: &Mask) -> Result<Var> {
        let mut x = tape.input(input);
        if let Some((conv, bn)) = self.stem {
            x = tape.conv(x, conv, ConvCfg::same(3))?;
            x = tape.batch_norm(x, bn)?;
        }
        for block in &self.blocks {
            x = match block {
                Block::Cell { edges } => cell_forward(tape, x, edges, mask)?,
                Block::Res {
                    conv_a,
                    conv_b,
                    shortcut,
                } => {
                    let a = relu_conv_bn(tape, x, conv_a, 2)?;
                    let b = relu_conv_bn(tape, a, conv_b, 1)?;
                    let pooled = tape.avg_pool2(x)?;
                    let residual = tape.conv(pooled, *shortcut, ConvCfg::same(1))?;
                    tape.weighted_sum(vec![(residual, 1.0), (b, 1.0)])?
                }
            };
        }
        let x = tape.batch_norm(x, self.last_bn)?;
        let x = tape.relu(x)?;
        let x = tape.global_avg_pool(x)?;
        tape.linear(x, self.classifier)
    }
}

impl SpaceNet for Nb201Net {
    type Mask = Mask;

    fn specs(&self) -> &ParamSpecs {
        &self.specs
    }

    fn forward(&self, tape: &mut Tape, input: Tensor, mask: &Mask) -> Result<Var> {
        Nb201Net::forward(self, tape, input, mask)
    }
}

/// `(channels, is_reduction)` of each block; the thin net keeps only the first cell.
fn stage_layout(config: &NetConfig) -> Vec<(usize, bool)> {
    let (c, n) = (config.channels, config.layers);
    let mut layout = Vec::new();
    for (stage, mult) in [1, 2, 4].into_iter().enumerate() {
        if stage > 0 {
            layout.push((c * mult, true));
        }
        layout.extend(std::iter::repeat_n((c * mult, false), n));
    }
    if config.thin {
        layout.truncate(1);
    }
    layout
}

fn conv_bn(specs: &mut ParamSpecs, name: String, cout: usize, cin: usize, kernel: usize) -> ConvBn {
    ConvBn {
        conv: specs.conv(format!("{name}.conv"), cout, cin, kernel),
        bn: specs.bn(format!("{name}.bn"), cout),
        kernel,
    }
}

fn cell_edges(specs: &mut ParamSpecs, prefix: &str, c: usize) -> Vec<[Option<ConvBn>; NUM_OPS]> {
    EDGES
        .iter()
        .map(|(to, from)| {
            let mut ops = [None; NUM_OPS];
            for (op, kernel) in [(Op::NorConv1x1, 1), (Op::NorConv3x3, 3)] {
                let name = format!("{prefix}.edges.{to}<-{from}.{}", op.name());
                ops[op.index()] = Some(conv_bn(specs, name, c, c, kernel));
            }
            ops
        })
        .collect()
}

fn relu_conv_bn(tape: &mut Tape, x: Var, p: &ConvBn, stride: usize) -> Result<Var> {
    let r = tape.relu(x)?;
    conv_bn_after_relu(tape, r, p, stride)
}

fn conv_bn_after_relu(tape: &mut Tape, relu: Var, p: &ConvBn, stride: usize) -> Result<Var> {
    let cfg = ConvCfg {
        stride,
        ..ConvCfg::same(p.kernel)
    };
    let y = tape.conv(relu, p.conv, cfg)?;
    tape.batch_norm(y, p.bn)
}

fn cell_forward(
    tape: &mut Tape,
    input: Var,
    edges: &[[Option<ConvBn>; NUM_OPS]],
    mask: &Mask,
) -> Result<Var> {
    let mut nodes = vec![input];
    // One ReLU per node feeds all of its conv ops: same values, same gradients, same patterns.
    let mut relus: Vec<Option<Var>> = vec![None];
    for to in 1..4 {
        let mut terms = Vec::new();
        for (e, &(edge_to, from)) in EDGES.iter().enumerate() {
            if edge_to != to {
                continue;
            }
            let active = mask[e].iter().filter(|&&a| a).count();
            for (op_index, _) in mask[e].iter().enumerate().filter(|(_, &a)| a) {
                let weight = 1.0 / active as f64;
                let out = match Op::ALL[op_index] {
                    Op::None => continue,
                    Op::SkipConnect => nodes[from],
                    Op::AvgPool3x3 => tape.avg_pool3(nodes[from], 1)?,
                    Op::NorConv1x1 | Op::NorConv3x3 => {
                        let relu = match relus[from] {
                            Some(r) => r,
                            None => *relus[from].insert(tape.relu(nodes[from])?),
                        };
                        let p = edges[e][op_index]
                            .as_ref()
                            .expect("conv ops have parameters");
                        conv_bn_after_relu(tape, relu, p, 1)?
                    }
                };
                terms.push((out, weight));
            }
        }
        let node = if terms.is_empty() {
            // Every incoming edge is `none`: the node is a constant zero map.
            let zeros = tape.value(input).zeros_like()?;
            tape.input(zeros)
        } else {
            tape.weighted_sum(terms)?
        };
        nodes.push(node);
        relus.push(None);
    }
    Ok(nodes[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::params::InitScheme;
    use crate::space::nb201_arch::initial_mask;
    use crate::test_support::assert_jacobian_matches_fd;
    use candle_core::{DType, Device};

    /// Central differences in f64 against the multi-cotangent backward, on a few weights of
    /// every kind (stem, cell convs, BN scales, ResNet block, shortcut, classifier).
    #[test]
    fn jacobian_matches_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let net = Nb201Net::new(NetConfig {
            channels: 3,
            layers: 1,
            num_classes: 4,
            thin: false,
        });
        let params = net
            .specs()
            .init(InitScheme::KaimingFanOut, 5, &dev)?
            .to_dtype(DType::F64)?;
        let x = Tensor::randn(0f64, 1.0, (3, 3, 8, 8), &dev)?;
        let mut mask = initial_mask();
        mask[2][Op::AvgPool3x3.index()] = false;
        mask[4][Op::SkipConnect.index()] = false;
        let names = [
            "stem.conv",
            "stem.bn",
            "cells.0.edges.2<-1.nor_conv_3x3.conv",
            "cells.0.edges.3<-0.nor_conv_1x1.bn",
            "cells.1.conv_a.conv",
            "cells.1.shortcut.conv",
            "cells.4.edges.3<-2.nor_conv_3x3.conv",
            "lastact.bn",
            "classifier",
        ];
        assert_jacobian_matches_fd(&net, &params, &x, &mask, &names)?;
        Ok(())
    }

    #[test]
    fn pruned_ops_have_no_gradient_and_parameter_counts_are_right() -> Result<()> {
        let dev = Device::Cpu;
        let net = Nb201Net::new(NetConfig::supernet(10));
        let total: usize = net
            .specs()
            .specs()
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        // stem 81+3, three cells of 6 edges x (1x1 + 3x3 conv-BN), two ResNet blocks, head.
        let cell = |c: usize| 6 * (c * c + c + 9 * c * c + c);
        let res = |ci: usize, co: usize| 9 * ci * co + co + 9 * co * co + co + ci * co;
        assert_eq!(
            total,
            84 + cell(3) + res(3, 6) + cell(6) + res(6, 12) + cell(12) + 12 + 120
        );
        let params = net.specs().init(InitScheme::TorchDefault, 1, &dev)?;
        let mut mask = initial_mask();
        mask[0] = [false, false, false, true, false];
        let mut tape = Tape::new(&params);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
        let logits = net.forward(&mut tape, x, &mask)?;
        let cot = Tensor::ones((1, 2, 10), DType::F32, &dev)?;
        let names: Vec<String> = tape
            .backward(logits, &cot)?
            .iter()
            .map(|(id, _)| params.spec(*id).name.clone())
            .collect();
        assert!(names.contains(&"cells.0.edges.1<-0.nor_conv_3x3.conv".to_string()));
        assert!(!names.contains(&"cells.0.edges.1<-0.nor_conv_1x1.conv".to_string()));
        Ok(())
    }

    #[test]
    fn thin_net_is_one_cell_on_one_channel() -> Result<()> {
        let dev = Device::Cpu;
        let net = Nb201Net::new(NetConfig::thin(10));
        let params = net.specs().init(InitScheme::TorchDefault, 1, &dev)?;
        let mut tape = Tape::new(&params);
        let x = Tensor::randn(0f32, 1.0, (5, 1, 3, 3), &dev)?;
        let logits = net.forward(&mut tape, x, &initial_mask())?;
        assert_eq!(tape.value(logits).dims(), &[5, 10]);
        // One ReLU per cell node that feeds a conv (nodes 0, 1, 2) plus the head's.
        assert_eq!(tape.relu_outputs().count(), 4);
        assert!(net
            .specs()
            .specs()
            .iter()
            .all(|s| !s.name.starts_with("stem")));
        Ok(())
    }
}
