//! The network NAS-Bench-201 trained, built for one cell with candle ops, so that candle's
//! autograd gives the single-cotangent gradients the proxies need (the tape stays for
//! TE-NAS's many-cotangent NTK). Its layout and sizes are in [`super::nb201_benchmark`].
//!
//! Batch norms normalise with the batch's statistics, as a network in train mode does. A
//! forward pass leaves a [`Trace`] of what the proxies read: the block outputs, every ReLU's
//! input, every convolution's output and every batch norm's batch variance.
use candle_core::{DType, Device, Tensor, Var, D};

use super::nb201_arch::{Arch, Op};
use super::nb201_benchmark::BenchmarkNet;
use crate::error::{Error, Result};
use crate::net::batch_norm::batch_norm;
use crate::net::conv;
use crate::net::params::{InitScheme, ParamId, ParamKind, ParamSpecs, Params};

/// The batch norms' epsilon (PyTorch's default).
const BN_EPS: f64 = 1e-5;

/// A convolution followed by an affine batch norm.
#[derive(Clone, Copy, Debug)]
struct ConvBn {
    conv: ParamId,
    gamma: ParamId,
    beta: ParamId,
    stride: usize,
    padding: usize,
}

/// What one cell edge computes.
#[derive(Clone, Copy, Debug)]
enum Edge {
    /// `x · 0`: a real multiply, so a NaN or an infinity in `x` stays one.
    Zero,
    Identity,
    /// 3×3 average pooling, stride 1, dividing by the in-image pixels of each window.
    AvgPool,
    /// ReLU, convolution, batch norm.
    Conv(ConvBn),
}

/// One of the network's blocks: a cell, or a residual reduction to twice the channels.
#[derive(Clone, Debug)]
enum Block {
    /// The cell's edges, indexed like [`Arch`]'s six ops.
    Cell([Edge; 6]),
    Reduction {
        a: ConvBn,
        b: ConvBn,
        shortcut: ParamId,
    },
}

/// The benchmark's network for one cell: its parameter list and blocks.
#[derive(Clone, Debug)]
pub struct BenchmarkNetwork {
    config: BenchmarkNet,
    arch: Arch,
    specs: ParamSpecs,
    stem: ConvBn,
    blocks: Vec<Block>,
    last_gamma: ParamId,
    last_beta: ParamId,
    classifier: ParamId,
    classifier_bias: ParamId,
}

/// What the network's parameters are set to, one candle [`Var`] per parameter so that
/// gradients reach them, unless [frozen](Weights::frozen).
pub struct Weights {
    vars: Vec<Var>,
    /// What a forward pass reads: the vars themselves, or constants sharing their storage.
    values: Vec<Tensor>,
    kinds: Vec<ParamKind>,
}

impl Weights {
    fn new(vars: Vec<Var>, kinds: Vec<ParamKind>) -> Weights {
        let values = vars.iter().map(|v| v.as_tensor().clone()).collect();
        Weights {
            vars,
            values,
            kinds,
        }
    }

    fn get(&self, id: ParamId) -> &Tensor {
        &self.values[id.0]
    }

    /// The same values as constants: a backward pass computes no gradient for them, which
    /// saves a third of every convolution's backward for the proxies that differentiate only
    /// with respect to inputs or activations. [`Self::vars`] then gets no gradients.
    pub fn frozen(self) -> Weights {
        let values = self.vars.iter().map(|v| v.as_tensor().detach()).collect();
        Weights { values, ..self }
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The convolution and linear weights, in declaration order (what most proxies sum over).
    pub fn layer_weights(&self) -> impl Iterator<Item = &Var> {
        self.vars
            .iter()
            .zip(&self.kinds)
            .filter(|(_, kind)| matches!(kind, ParamKind::Weight { .. }))
            .map(|(var, _)| var)
    }

    /// The weights with `scale · direction[i]` added to the i-th conv or linear weight (in
    /// [`Self::layer_weights`] order); the other parameters unchanged.
    pub fn moved_along(&self, direction: &[Tensor], scale: f64) -> Result<Weights> {
        let mut steps = direction.iter();
        let vars = self
            .vars
            .iter()
            .zip(&self.kinds)
            .map(|(v, kind)| {
                let t = v.as_tensor();
                let moved = match kind {
                    ParamKind::Weight { .. } => {
                        let step = steps.next().ok_or_else(|| {
                            Error::Invalid("fewer directions than layer weights".into())
                        })?;
                        (t + (step * scale)?)?
                    }
                    _ => t.clone(),
                };
                Ok(Var::from_tensor(&moved)?)
            })
            .collect::<Result<_>>()?;
        Ok(Weights::new(vars, self.kinds.clone()))
    }

    /// The weights with every value replaced by its absolute value (synflow).
    pub fn abs(&self) -> Result<Weights> {
        self.map(|t| t.abs())
    }

    /// The same values in `dtype`.
    pub fn to_dtype(&self, dtype: DType) -> Result<Weights> {
        self.map(|t| t.to_dtype(dtype))
    }

    /// Fresh trainable weights holding `f` of each value.
    fn map(&self, f: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Result<Weights> {
        let vars = self
            .vars
            .iter()
            .map(|v| Ok(Var::from_tensor(&f(v.as_tensor())?)?))
            .collect::<Result<_>>()?;
        Ok(Weights::new(vars, self.kinds.clone()))
    }
}

/// How a forward pass treats the batch norms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Normalise with the batch's statistics (train mode).
    Batch,
    /// Leave the batch norms out (synflow).
    Identity,
}

/// What one forward pass computed, for the proxies to read.
#[derive(Debug)]
pub struct Trace {
    /// The stem's output, then every block's output in forward order (18 at N=5).
    pub features: Vec<Tensor>,
    /// The input of every ReLU, in forward order (each conv edge has its own).
    pub relu_inputs: Vec<Tensor>,
    /// Every convolution's output (before its batch norm) and the linear layer's, in
    /// declaration order of their weights.
    pub layer_outputs: Vec<Tensor>,
    /// Every batch norm's biased batch variance per channel and its sample count B·H·W.
    pub bn_variances: Vec<(Tensor, usize)>,
    /// The final BN + ReLU's output, before the global pooling.
    pub pre_pool: Tensor,
    pub logits: Tensor,
}

/// Records the trace while the forward pass runs.
struct Recorder<'a> {
    weights: &'a Weights,
    norm: Norm,
    /// Added to each layer's output (zero), so that its gradient is the output's (fisher).
    probes: Option<&'a [Var]>,
    trace: Trace,
}

impl BenchmarkNetwork {
    /// Raised whenever the network's arithmetic changes (an op, its sum order), so that
    /// cached proxy values computed on it are recomputed. 2: the CPU convolutions are im2col +
    /// GEMM and the batch norms one op with f64 statistics.
    pub const VERSION: u32 = 2;

    /// The network of `config` with `arch` in every cell.
    pub fn new(config: BenchmarkNet, arch: Arch) -> Result<BenchmarkNetwork> {
        if config.channels == 0 || config.layers == 0 || config.num_classes == 0 {
            return Err(Error::Invalid(format!(
                "the benchmark network needs channels, layers and classes above zero, got {config:?}"
            )));
        }
        if !config.side.is_multiple_of(4) {
            return Err(Error::Invalid(format!(
                "the image side must be a multiple of 4 (two reductions), got {}",
                config.side
            )));
        }
        let mut specs = ParamSpecs::default();
        let c = config.channels;
        let stem = conv_bn(&mut specs, "stem", 3, c, 3, 1);
        let mut blocks = Vec::new();
        for stage in 0..3 {
            let width = c << stage;
            if stage > 0 {
                let name = format!("reduction{stage}");
                let a = conv_bn(&mut specs, &format!("{name}.a"), width / 2, width, 3, 2);
                let b = conv_bn(&mut specs, &format!("{name}.b"), width, width, 3, 1);
                let shortcut = specs.conv(format!("{name}.shortcut"), width, width / 2, 1);
                blocks.push(Block::Reduction { a, b, shortcut });
            }
            for layer in 0..config.layers {
                let edges = std::array::from_fn(|edge| {
                    let k = match arch.ops[edge] {
                        Op::None => return Edge::Zero,
                        Op::SkipConnect => return Edge::Identity,
                        Op::AvgPool3x3 => return Edge::AvgPool,
                        Op::NorConv3x3 => 3,
                        Op::NorConv1x1 => 1,
                    };
                    let name = format!("cell{stage}.{layer}.edge{edge}");
                    Edge::Conv(conv_bn(&mut specs, &name, width, width, k, 1))
                });
                blocks.push(Block::Cell(edges));
            }
        }
        let top = c << 2;
        let last_gamma = specs.bn("lastact.gamma".into(), top);
        let last_beta = specs.bn_shift("lastact.beta".into(), top);
        let classifier = specs.linear("classifier.weight".into(), config.num_classes, top);
        let classifier_bias = specs.bias("classifier.bias".into(), config.num_classes, top);
        Ok(BenchmarkNetwork {
            config,
            arch,
            specs,
            stem,
            blocks,
            last_gamma,
            last_beta,
            classifier,
            classifier_bias,
        })
    }

    pub fn config(&self) -> &BenchmarkNet {
        &self.config
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn specs(&self) -> &ParamSpecs {
        &self.specs
    }

    /// How many blocks follow the stem (3N + 2).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Draws the weights with `scheme` from `seed` (through candle-nn's `VarBuilder`).
    pub fn init(&self, scheme: InitScheme, seed: u64, device: &Device) -> Result<Weights> {
        self.weights(&self.specs.init(scheme, seed, device)?)
    }

    /// Trainable copies of `params`, which must come from this network's specs.
    pub fn weights(&self, params: &Params) -> Result<Weights> {
        let vars = params
            .ids()
            .map(|id| Ok(Var::from_tensor(params.tensor(id))?))
            .collect::<Result<_>>()?;
        let kinds = params
            .ids()
            .map(|id| params.spec(id).kind.clone())
            .collect();
        Ok(Weights::new(vars, kinds))
    }

    /// Zero tensors shaped like every layer output of a batch of `batch` (see
    /// [`Self::forward_probed`]).
    pub fn probes(&self, batch: usize, dtype: DType, device: &Device) -> Result<Vec<Var>> {
        let mut out = Vec::new();
        let (c, side) = (self.config.channels, self.config.side);
        let conv = |out: &mut Vec<Var>, width: usize, side: usize| -> Result<()> {
            out.push(Var::zeros((batch, width, side, side), dtype, device)?);
            Ok(())
        };
        conv(&mut out, c, side)?;
        for (stage, blocks) in self.stage_blocks().into_iter().enumerate() {
            let (width, side) = (c << stage, side >> stage);
            for block in blocks {
                match block {
                    Block::Reduction { .. } => {
                        (0..3).try_for_each(|_| conv(&mut out, width, side))?;
                    }
                    Block::Cell(edges) => {
                        for edge in edges {
                            if let Edge::Conv(_) = edge {
                                conv(&mut out, width, side)?;
                            }
                        }
                    }
                }
            }
        }
        out.push(Var::zeros((batch, self.config.num_classes), dtype, device)?);
        Ok(out)
    }

    fn stage_blocks(&self) -> [&[Block]; 3] {
        let n = self.config.layers;
        [
            &self.blocks[..n],
            &self.blocks[n..2 * n + 1],
            &self.blocks[2 * n + 1..],
        ]
    }

    /// The forward pass of a batch `(B, 3, side, side)`, recording its [`Trace`].
    pub fn forward(&self, weights: &Weights, input: &Tensor, norm: Norm) -> Result<Trace> {
        self.run(weights, input, norm, None, None)
    }

    /// The forward pass with every block's input a fresh [`Var`] holding the previous output
    /// (returned in block order): a backward pass from a block's output stops at its own input,
    /// so one pass gives the trace and every block's Jacobian products (AZ-NAS).
    pub fn forward_cut(
        &self,
        weights: &Weights,
        input: &Tensor,
        norm: Norm,
    ) -> Result<(Trace, Vec<Var>)> {
        let mut cuts = Vec::with_capacity(self.blocks.len());
        let trace = self.run(weights, input, norm, None, Some(&mut cuts))?;
        Ok((trace, cuts))
    }

    /// The forward pass with `probes` (from [`Self::probes`]) added to the layer outputs, so
    /// that a backward pass gives each layer output's gradient as its probe's.
    pub fn forward_probed(
        &self,
        weights: &Weights,
        input: &Tensor,
        probes: &[Var],
    ) -> Result<Trace> {
        self.run(weights, input, Norm::Batch, Some(probes), None)
    }

    fn run(
        &self,
        weights: &Weights,
        input: &Tensor,
        norm: Norm,
        probes: Option<&[Var]>,
        mut cuts: Option<&mut Vec<Var>>,
    ) -> Result<Trace> {
        let mut rec = Recorder::new(weights, norm, probes, input);
        let mut x = rec.conv_bn(input, self.stem)?;
        rec.trace.features.push(x.clone());
        for block in &self.blocks {
            if let Some(cuts) = cuts.as_deref_mut() {
                let cut = Var::from_tensor(&x.detach())?;
                x = cut.as_tensor().clone();
                cuts.push(cut);
            }
            x = rec.block(block, &x)?;
            rec.trace.features.push(x.clone());
        }
        let x = rec.batch_norm(&x, self.last_gamma, self.last_beta)?;
        rec.trace.relu_inputs.push(x.clone());
        let x = x.relu()?;
        rec.trace.pre_pool = x.clone();
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        let logits = pooled
            .matmul(&weights.get(self.classifier).t()?)?
            .broadcast_add(weights.get(self.classifier_bias))?;
        let logits = rec.probe(logits)?;
        rec.trace.logits = logits;
        Ok(rec.trace)
    }
}

/// 3×3 average pooling with stride 1 and padding 1 that divides each window by its in-image
/// pixels (PyTorch's `count_include_pad=False`), as a sum of nine shifted views so that
/// candle's autograd can differentiate it.
fn avg_pool3(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let mut sum: Option<Tensor> = None;
    for dy in 0..3 {
        for dx in 0..3 {
            let view = padded.narrow(2, dy, h)?.narrow(3, dx, w)?;
            sum = Some(match sum {
                None => view,
                Some(s) => (s + view)?,
            });
        }
    }
    let counts = |n: usize| (0..n).map(move |i| 3.0 - f64::from(i == 0) - f64::from(i + 1 == n));
    let inverse: Vec<f64> = counts(h)
        .flat_map(|a| counts(w).map(move |b| 1.0 / (a * b)))
        .collect();
    let inverse = Tensor::from_vec(inverse, (1, 1, h, w), x.device())?.to_dtype(x.dtype())?;
    Ok(sum.expect("nine views").broadcast_mul(&inverse)?)
}

fn conv_bn(
    specs: &mut ParamSpecs,
    name: &str,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
) -> ConvBn {
    ConvBn {
        conv: specs.conv(format!("{name}.conv"), c_out, c_in, k),
        gamma: specs.bn(format!("{name}.gamma"), c_out),
        beta: specs.bn_shift(format!("{name}.beta"), c_out),
        stride,
        padding: k / 2,
    }
}

impl<'a> Recorder<'a> {
    /// An empty trace; `pre_pool` and `logits` hold `input` until the pass sets them.
    fn new(weights: &'a Weights, norm: Norm, probes: Option<&'a [Var]>, input: &Tensor) -> Self {
        Recorder {
            weights,
            norm,
            probes,
            trace: Trace {
                features: Vec::new(),
                relu_inputs: Vec::new(),
                layer_outputs: Vec::new(),
                bn_variances: Vec::new(),
                pre_pool: input.clone(),
                logits: input.clone(),
            },
        }
    }

    fn block(&mut self, block: &Block, x: &Tensor) -> Result<Tensor> {
        match block {
            Block::Cell(edges) => self.cell(edges, x),
            Block::Reduction { a, b, shortcut } => {
                let h = self.relu_conv_bn(x, *a)?;
                let h = self.relu_conv_bn(&h, *b)?;
                let pooled = x.avg_pool2d(2)?;
                let s = self.conv(&pooled, *shortcut, 1, 0)?;
                Ok((s + h)?)
            }
        }
    }

    /// Node i = Σ_{j<i} op_{j→i}(node j), summed in source order; the output is node 3.
    fn cell(&mut self, edges: &[Edge; 6], input: &Tensor) -> Result<Tensor> {
        let mut nodes = vec![input.clone()];
        let mut edges = edges.iter();
        for to in 1..4 {
            let mut sum: Option<Tensor> = None;
            for node in nodes.iter().take(to) {
                let edge = *edges.next().expect("six edges");
                let y = self.edge(edge, node)?;
                sum = Some(match sum {
                    None => y,
                    Some(s) => (s + y)?,
                });
            }
            nodes.push(sum.expect("every node has an incoming edge"));
        }
        Ok(nodes.pop().expect("four nodes"))
    }

    fn edge(&mut self, edge: Edge, x: &Tensor) -> Result<Tensor> {
        match edge {
            Edge::Zero => Ok((x * 0.0)?),
            Edge::Identity => Ok(x.clone()),
            Edge::AvgPool => avg_pool3(x),
            Edge::Conv(op) => self.relu_conv_bn(x, op),
        }
    }

    fn relu_conv_bn(&mut self, x: &Tensor, op: ConvBn) -> Result<Tensor> {
        self.trace.relu_inputs.push(x.clone());
        self.conv_bn(&x.relu()?, op)
    }

    fn conv_bn(&mut self, x: &Tensor, op: ConvBn) -> Result<Tensor> {
        let y = self.conv(x, op.conv, op.stride, op.padding)?;
        self.batch_norm(&y, op.gamma, op.beta)
    }

    fn conv(
        &mut self,
        x: &Tensor,
        weight: ParamId,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let y = conv::conv2d(x, self.weights.get(weight), padding, stride)?;
        self.probe(y)
    }

    /// Records a layer's output, with its probe added when the pass is probed.
    fn probe(&mut self, y: Tensor) -> Result<Tensor> {
        let y = match self.probes {
            Some(probes) => {
                let probe = probes.get(self.trace.layer_outputs.len()).ok_or_else(|| {
                    Error::Invalid("fewer probes than the network has layers".into())
                })?;
                (y + probe.as_tensor())?
            }
            None => y,
        };
        self.trace.layer_outputs.push(y.clone());
        Ok(y)
    }

    fn batch_norm(&mut self, x: &Tensor, gamma: ParamId, beta: ParamId) -> Result<Tensor> {
        if self.norm == Norm::Identity {
            return Ok(x.clone());
        }
        let (b, _, h, w) = x.dims4()?;
        let (gamma, beta) = (self.weights.get(gamma), self.weights.get(beta));
        let (y, variance) = batch_norm(x, gamma, beta, BN_EPS)?;
        self.trace.bn_variances.push((variance, b * h * w));
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201_benchmark::BenchmarkNet;

    fn tiny() -> BenchmarkNet {
        BenchmarkNet {
            channels: 4,
            layers: 1,
            num_classes: 5,
            side: 8,
        }
    }

    fn arch(text: &str) -> Arch {
        Arch::parse(text).unwrap()
    }

    const MIXED: &str =
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";

    fn noise(shape: (usize, usize, usize, usize), dtype: DType) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 101) as f64 - 50.0) / 25.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    /// The declared parameters are exactly what the benchmark's size model counts, at
    /// NAS-Bench-201's own width and depth.
    #[test]
    fn parameters_match_the_benchmarks_count() {
        for text in [MIXED, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"] {
            let config = BenchmarkNet::default();
            let net = BenchmarkNetwork::new(config, arch(text)).unwrap();
            let declared: usize = net
                .specs()
                .specs()
                .iter()
                .map(|s| s.shape.iter().product::<usize>())
                .sum();
            assert_eq!(declared as u64, config.size(&arch(text)).params, "{text}");
        }
    }

    #[test]
    fn a_forward_pass_traces_every_block_relu_layer_and_batch_norm() {
        let net = BenchmarkNetwork::new(tiny(), arch(MIXED)).unwrap();
        let w = net.init(InitScheme::KaimingFanIn, 1, &Device::Cpu).unwrap();
        let t = net
            .forward(&w, &noise((3, 3, 8, 8), DType::F32), Norm::Batch)
            .unwrap();
        assert_eq!(net.block_count(), 5);
        assert_eq!(t.features.len(), 6);
        assert_eq!(t.features[5].dims(), &[3, 16, 2, 2]);
        assert_eq!(t.pre_pool.dims(), &[3, 16, 2, 2]);
        assert_eq!(t.logits.dims(), &[3, 5]);
        // 3 conv edges per cell, 3 convs per reduction, the stem and the classifier.
        assert_eq!(t.layer_outputs.len(), 1 + 3 * 3 + 2 * 3 + 1);
        // Batch norms: stem, conv edges, two per reduction, the last one.
        assert_eq!(t.bn_variances.len(), 1 + 9 + 4 + 1);
        // ReLUs: one per conv edge and reduction conv, and the last one.
        assert_eq!(t.relu_inputs.len(), 9 + 4 + 1);
        let probes = net.probes(3, DType::F32, &Device::Cpu).unwrap();
        let shapes: Vec<_> = probes
            .iter()
            .map(|p| p.as_tensor().dims().to_vec())
            .collect();
        let traced: Vec<_> = t.layer_outputs.iter().map(|o| o.dims().to_vec()).collect();
        assert_eq!(shapes, traced);
    }

    /// Batch norm in train mode leaves each channel with mean β = 0 and variance ≈ 1.
    #[test]
    fn batch_norm_uses_the_batch_statistics() {
        let net = BenchmarkNetwork::new(tiny(), arch(MIXED)).unwrap();
        let w = net.init(InitScheme::TorchDefault, 2, &Device::Cpu).unwrap();
        let t = net.forward(&w, &noise((4, 3, 8, 8), DType::F64), Norm::Batch);
        assert!(
            t.is_err(),
            "f32 weights with an f64 input are refused, not mixed"
        );
        let w = w.to_dtype(DType::F64).unwrap();
        let t = net
            .forward(&w, &noise((4, 3, 8, 8), DType::F64), Norm::Batch)
            .unwrap();
        let stem = &t.features[0];
        let mean = stem
            .mean_keepdim(3)
            .unwrap()
            .mean_keepdim(2)
            .unwrap()
            .mean_keepdim(0)
            .unwrap();
        for m in mean.flatten_all().unwrap().to_vec1::<f64>().unwrap() {
            assert!(m.abs() < 1e-12, "{m}");
        }
    }

    /// candle's autograd through the whole network (BN, pooling, residuals) agrees with
    /// central differences in f64.
    #[test]
    fn gradients_match_finite_differences() {
        let net = BenchmarkNetwork::new(tiny(), arch(MIXED)).unwrap();
        let params = net
            .specs()
            .init(InitScheme::KaimingFanIn, 3, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let x = noise((3, 3, 8, 8), DType::F64);
        let loss = |p: &Params| -> (Tensor, Weights) {
            let w = net.weights(p).unwrap();
            let t = net.forward(&w, &x, Norm::Batch).unwrap();
            (t.logits.sqr().unwrap().sum_all().unwrap(), w)
        };
        let (l, w) = loss(&params);
        let grads = l.backward().unwrap();
        for id in params.ids().step_by(7) {
            let analytic = grads.get(w.vars()[id.0].as_tensor()).unwrap();
            let values = params
                .tensor(id)
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let shape = params.tensor(id).shape().clone();
            let g = analytic.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let h = 1e-5;
            let at = |v: f64| {
                let mut changed = values.clone();
                changed[0] = v;
                let t = Tensor::from_vec(changed, &shape, &Device::Cpu).unwrap();
                let (l, _) = loss(&params.with_tensor(id, t));
                l.to_scalar::<f64>().unwrap()
            };
            let numeric = (at(values[0] + h) - at(values[0] - h)) / (2.0 * h);
            let scale = numeric.abs().max(g[0].abs()).max(1e-3);
            assert!(
                (numeric - g[0]).abs() < 1e-5 * scale,
                "{}: {numeric} vs {}",
                params.spec(id).name,
                g[0]
            );
        }
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    }

    /// Frozen weights leave the forward values and the input gradient exactly as they were,
    /// and get no gradients themselves.
    #[test]
    fn frozen_weights_change_no_input_gradient_and_get_none() {
        let net = BenchmarkNetwork::new(tiny(), arch(MIXED)).unwrap();
        let x = Var::from_tensor(&noise((3, 3, 8, 8), DType::F32)).unwrap();
        let run = |w: &Weights| {
            let t = net.forward(w, x.as_tensor(), Norm::Batch).unwrap();
            let grads = t.logits.sum_all().unwrap().backward().unwrap();
            let weight_grads = w.vars().iter().filter(|v| grads.get(v).is_some()).count();
            let input = values(grads.get(x.as_tensor()).unwrap());
            (values(&t.logits), input, weight_grads)
        };
        let w = net.init(InitScheme::KaimingFanIn, 4, &Device::Cpu).unwrap();
        let (logits, input, weight_grads) = run(&w);
        assert_eq!(weight_grads, w.vars().len());
        let frozen = w.frozen();
        assert_eq!(run(&frozen), (logits, input, 0));
    }

    /// A cut pass gives the uncut pass's features, and a backward pass from a block's output
    /// gives exactly the Jacobian product of that block run alone on a copy of its input.
    #[test]
    fn a_cut_pass_gives_each_blocks_own_jacobian_product() {
        let net = BenchmarkNetwork::new(tiny(), arch(MIXED)).unwrap();
        let w = net
            .init(InitScheme::KaimingFanIn, 5, &Device::Cpu)
            .unwrap()
            .frozen();
        let x = noise((3, 3, 8, 8), DType::F32);
        let whole = net.forward(&w, &x, Norm::Batch).unwrap();
        let (cut, inputs) = net.forward_cut(&w, &x, Norm::Batch).unwrap();
        assert_eq!(inputs.len(), net.block_count());
        for (a, b) in whole.features.iter().zip(&cut.features) {
            assert_eq!(values(a), values(b));
        }
        for (index, block) in net.blocks.iter().enumerate() {
            let alone = Var::from_tensor(&whole.features[index].detach()).unwrap();
            let mut rec = Recorder::new(&w, Norm::Batch, None, alone.as_tensor());
            let output = rec.block(block, alone.as_tensor()).unwrap();
            let vjp = |out: &Tensor, input: &Var| {
                let grads = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                values(grads.get(input.as_tensor()).unwrap())
            };
            let from_cut = vjp(&cut.features[index + 1], &inputs[index]);
            assert_eq!(from_cut, vjp(&output, &alone), "block {index}");
            assert!(from_cut.iter().any(|v| *v != 0.0));
        }
    }

    /// The 3×3 average pooling divides corners by 4, edges by 6 and the inside by 9.
    #[test]
    fn average_pooling_counts_only_pixels_inside_the_image() {
        let x = Tensor::ones((1, 1, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let y = avg_pool3(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-6), "{y:?}");
        let ramp = Tensor::arange(0f32, 9.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap();
        let y = avg_pool3(&ramp)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Corner (0,0): mean of 0, 1, 3, 4; centre: mean of all nine.
        assert!(
            (y[0] - 2.0).abs() < 1e-6 && (y[4] - 4.0).abs() < 1e-6,
            "{y:?}"
        );
    }

    /// An all-`none` cell outputs zeros, so every later cell does too.
    #[test]
    fn an_all_none_cell_zeroes_its_stage() {
        let none = arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        let net = BenchmarkNetwork::new(tiny(), none).unwrap();
        let w = net.init(InitScheme::KaimingFanIn, 1, &Device::Cpu).unwrap();
        let t = net
            .forward(&w, &noise((2, 3, 8, 8), DType::F32), Norm::Batch)
            .unwrap();
        let max = t.features[1]
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(max, 0.0);
    }

    #[test]
    fn an_unusable_configuration_is_an_error() {
        let mut bad = tiny();
        bad.side = 6;
        assert!(BenchmarkNetwork::new(bad, arch(MIXED)).is_err());
        bad = tiny();
        bad.channels = 0;
        assert!(BenchmarkNetwork::new(bad, arch(MIXED)).is_err());
    }
}
