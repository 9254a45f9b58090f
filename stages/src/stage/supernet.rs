//! The `supernet` stage: fixes the search space, its networks and how they are initialised,
//! and writes both networks with one initialisation as safetensors files.
//!
//! The weight files hold every parameter of the NTK supernet and of the thin net, drawn once
//! from `init_seed` by the configured scheme, for loading in other tools and for inspection.
//! The prune and correlation stages build their networks from the configs recorded here,
//! check them against the files' names and shapes, and draw their weights themselves from the
//! run seed, per round, repeat and candidate, as the method needs.
use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::{check_range, input, params, read_json, write_json};
use crate::error::{Error, Result};
use tenas_core::net::init::TensorInit;
use tenas_core::net::params::InitMode;
use tenas_core::net::params::InitScheme;
use tenas_core::seeds;
use tenas_core::space::darts_net::{DartsNet, DartsNetConfig};
use tenas_core::space::nb201_net::{Nb201Net, NetConfig};
use tenas_core::space::{Space, SpaceNet};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupernetParams {
    /// Search space: `nb201` or `darts`.
    pub space: Space,
    /// Channels of the NTK supernet's first stage (C).
    pub channels: usize,
    /// Cells per stage (N).
    pub layers: usize,
    pub init: InitMode,
    /// Seed of the weight files (the search draws its own weights from the run seed).
    pub init_seed: u64,
}

impl Default for SupernetParams {
    fn default() -> Self {
        SupernetParams {
            space: Space::Nb201,
            channels: 3,
            layers: 1,
            init: InitMode::Reference,
            init_seed: 0,
        }
    }
}

/// The stage's output, read by the prune and correlation stages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SupernetOutput {
    pub space: Space,
    pub channels: usize,
    pub layers: usize,
    pub init: InitMode,
    pub init_seed: u64,
    pub ntk_net: Inventory,
    pub thin_net: Inventory,
}

impl SupernetOutput {
    pub const FILE: &'static str = "supernet.json";
    /// The NTK supernet's initial weights.
    pub const NTK_WEIGHTS: &'static str = "supernet.safetensors";
    /// The thin net's initial weights.
    pub const THIN_WEIGHTS: &'static str = "thin.safetensors";

    /// The networks of `params` with a classifier of `num_classes` outputs.
    pub fn new(params: &SupernetParams, num_classes: usize) -> SupernetOutput {
        let (ntk_scheme, thin_scheme) = params.init.schemes();
        let seed = |net: &str| seeds::derive(params.init_seed, &[&"supernet", &net]);
        let ntk = Drawing {
            file: Self::NTK_WEIGHTS,
            scheme: ntk_scheme,
            seed: seed("ntk-weights"),
        };
        let thin = Drawing {
            file: Self::THIN_WEIGHTS,
            scheme: thin_scheme,
            seed: seed("thin-weights"),
        };
        let (channels, layers) = (params.channels, params.layers);
        let (ntk_net, thin_net) = match params.space {
            Space::Darts => (
                ntk.inventory(
                    DartsNetConfig::supernet(channels, layers, num_classes),
                    DartsNet::new,
                ),
                thin.inventory(DartsNetConfig::thin(num_classes), DartsNet::new),
            ),
            Space::Nb201 => {
                let config = NetConfig {
                    channels,
                    layers,
                    num_classes,
                    thin: false,
                };
                (
                    ntk.inventory(config, Nb201Net::new),
                    thin.inventory(NetConfig::thin(num_classes), Nb201Net::new),
                )
            }
        };
        SupernetOutput {
            space: params.space,
            channels: params.channels,
            layers: params.layers,
            init: params.init,
            init_seed: params.init_seed,
            ntk_net,
            thin_net,
        }
    }

    /// Writes the record and both weight files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        match self.space {
            Space::Nb201 => self.write_weights(dir, Nb201Net::new)?,
            Space::Darts => self.write_weights(dir, DartsNet::new)?,
        }
        write_json(&dir.join(Self::FILE), self)
    }

    fn write_weights<N: SpaceNet, C: DeserializeOwned>(
        &self,
        dir: &Path,
        build: impl Fn(C) -> N,
    ) -> Result<()> {
        for inventory in [&self.ntk_net, &self.thin_net] {
            inventory.write_weights(&inventory.network(dir, &build)?, dir)?;
        }
        Ok(())
    }

    /// The NTK and thin networks of the artifact in `dir`, built from the recorded configs and
    /// checked against the weight files' names and shapes, for a dataset of `num_classes`.
    pub fn networks<N: SpaceNet, C: DeserializeOwned>(
        &self,
        dir: &Path,
        num_classes: usize,
        build: impl Fn(C) -> N,
    ) -> Result<(N, N)> {
        let [ntk, thin] = [&self.ntk_net, &self.thin_net].map(|inventory| {
            let classes = &inventory.config["num_classes"];
            if classes != num_classes {
                return Err(Error::data(
                    dir.join(Self::FILE),
                    format!("the networks have {classes} classes, the dataset {num_classes}"),
                ));
            }
            let net = inventory.network(dir, &build)?;
            inventory.check_weights(&net, dir)?;
            Ok(net)
        });
        Ok((ntk?, thin?))
    }
}

/// One network: its config, parameters and how its weight file was drawn.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inventory {
    /// The space's network config.
    pub config: Value,
    pub parameters: usize,
    /// The safetensors file of its initial weights, beside `supernet.json`.
    pub weights: String,
    pub scheme: InitScheme,
    /// Seed of the ChaCha8 stream the tensors are drawn from, one after another as listed.
    pub seed: u64,
    pub tensors: Vec<TensorRecord>,
}

/// One parameter tensor of a network and how its values are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorRecord {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: TensorInit,
}

/// How one network's weight file is drawn.
struct Drawing {
    file: &'static str,
    scheme: InitScheme,
    seed: u64,
}

impl Drawing {
    /// The record of the network `build` makes of `config`.
    fn inventory<C: Serialize + Copy, N: SpaceNet>(
        self,
        config: C,
        build: impl Fn(C) -> N,
    ) -> Inventory {
        let tensors: Vec<TensorRecord> = build(config)
            .specs()
            .specs()
            .iter()
            .map(|s| TensorRecord {
                name: s.name.clone(),
                shape: s.shape.clone(),
                init: self.scheme.tensor_init(&s.kind),
            })
            .collect();
        Inventory {
            config: serde_json::to_value(config).expect("plain config serializes"),
            parameters: tensors
                .iter()
                .map(|t| t.shape.iter().product::<usize>())
                .sum(),
            weights: self.file.to_string(),
            scheme: self.scheme,
            seed: self.seed,
            tensors,
        }
    }
}

impl Inventory {
    /// The network of the recorded config.
    fn network<N, C: DeserializeOwned>(&self, dir: &Path, build: impl Fn(C) -> N) -> Result<N> {
        let config = serde_json::from_value(self.config.clone()).map_err(|e| {
            Error::data(
                dir.join(SupernetOutput::FILE),
                format!("the config of {} is malformed: {e}", self.weights),
            )
        })?;
        Ok(build(config))
    }

    /// Draws `net`'s weights as recorded and saves them (candle-nn `VarMap`, safetensors).
    fn write_weights<N: SpaceNet>(&self, net: &N, dir: &Path) -> Result<()> {
        let path = dir.join(&self.weights);
        let params = net.specs().init(self.scheme, self.seed, &Device::Cpu)?;
        params
            .var_map()?
            .save(&path)
            .map_err(|e| Error::data(&path, format!("cannot write the weights: {e}")))?;
        readable_by_all(&path)
    }

    /// Checks that the weight file in `dir` holds exactly `net`'s parameter names and shapes.
    fn check_weights<N: SpaceNet>(&self, net: &N, dir: &Path) -> Result<()> {
        let path = dir.join(&self.weights);
        let stored = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| Error::data(&path, format!("not a readable safetensors file: {e}")))?;
        let stored: BTreeMap<&str, &[usize]> =
            stored.iter().map(|(n, t)| (n.as_str(), t.dims())).collect();
        let expected: BTreeMap<&str, &[usize]> = net
            .specs()
            .specs()
            .iter()
            .map(|s| (s.name.as_str(), s.shape.as_slice()))
            .collect();
        match first_difference(&stored, &expected) {
            None => Ok(()),
            Some(what) => Err(Error::data(
                &path,
                format!(
                    "does not hold the parameters of the network recorded in {}: {what}",
                    SupernetOutput::FILE
                ),
            )),
        }
    }
}

/// `VarMap::save` writes through a temporary file, created private (0600); the weights are
/// as readable as the stage's other files.
fn readable_by_all(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))?;
    }
    Ok(())
}

/// The first parameter where a weight file and a network disagree, said in words.
fn first_difference(
    stored: &BTreeMap<&str, &[usize]>,
    expected: &BTreeMap<&str, &[usize]>,
) -> Option<String> {
    for (name, shape) in expected {
        match stored.get(name) {
            None => return Some(format!("`{name}` is missing")),
            Some(s) if s != shape => {
                return Some(format!("`{name}` has shape {s:?}, the network {shape:?}"))
            }
            Some(_) => {}
        }
    }
    stored
        .keys()
        .find(|name| !expected.contains_key(*name))
        .map(|name| format!("`{name}` is not a parameter of the network"))
}

pub struct SupernetStage;

impl Stage for SupernetStage {
    fn kind(&self) -> &'static str {
        "supernet"
    }
    /// 2: writes the weight files; records seeds and per-tensor inits.
    fn version(&self) -> u32 {
        2
    }
    /// The dataset fixes the classifier's size.
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["dataset"]
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<SupernetParams>(params)?;
        let p: SupernetParams = serde_json::from_value(value.clone()).expect("just resolved");
        check_range("channels", p.channels, 1..)?;
        check_range("layers", p.layers, 1..)?;
        Ok(value)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let params: SupernetParams = params(ctx)?;
    let data: DatasetOutput = read_json(&input(ctx, "dataset")?.join(DatasetOutput::FILE))?;
    let output = SupernetOutput::new(&params, data.num_classes);
    ctx.progress().log(format!(
        "{} parameters (NTK net), {} (thin net), {} classes, init {:?} (seed {})",
        output.ntk_net.parameters,
        output.thin_net.parameters,
        data.num_classes,
        output.init,
        output.init_seed
    ));
    let dir = ctx.out_dir();
    output.write(dir)?;
    // Copies for the run's results folder (`results/<experiment>/<run>/supernet/`).
    for file in [
        SupernetOutput::FILE,
        SupernetOutput::NTK_WEIGHTS,
        SupernetOutput::THIN_WEIGHTS,
    ] {
        let report = ctx.report_path(file);
        std::fs::copy(dir.join(file), &report)
            .map_err(|e| Error::io(format!("writing {}", report.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use std::collections::HashMap;
    use std::process::Command;

    fn resolve(src: &str) -> std::result::Result<SupernetParams, ParamError> {
        let value = SupernetStage.resolve_params(&src.parse().expect("TOML"))?;
        Ok(serde_json::from_value(value).expect("resolved params"))
    }

    #[test]
    fn the_space_is_parsed_once_and_an_unknown_one_is_named() {
        assert_eq!(resolve("space = \"darts\"").unwrap().space, Space::Darts);
        assert_eq!(resolve("").unwrap().space, Space::Nb201);
        let err = resolve("space = \"nas101\"").unwrap_err();
        assert_eq!(err.key, "space");
        for needle in ["nas101", "nb201", "darts"] {
            assert!(err.message.contains(needle), "{}", err.message);
        }
        let err = resolve("channels = 0").unwrap_err();
        assert_eq!(err.key, "channels");
        assert!(err.message.contains("at least 1, got 0"), "{}", err.message);
    }

    /// The recorded classifier has the dataset's classes (CIFAR-100: 100), on both spaces.
    #[test]
    fn the_inventory_sizes_the_classifier_for_the_dataset() {
        for space in [Space::Nb201, Space::Darts] {
            let params = SupernetParams {
                space,
                ..SupernetParams::default()
            };
            let (ten, hundred) = (
                SupernetOutput::new(&params, 10),
                SupernetOutput::new(&params, 100),
            );
            for net in [&hundred.ntk_net, &hundred.thin_net] {
                let last = net.tensors.last().expect("tensors");
                assert_eq!(
                    (last.name.as_str(), last.shape[0]),
                    ("classifier", 100),
                    "{space:?}"
                );
                assert_eq!(net.config["num_classes"], 100, "{space:?}");
            }
            // Only the classifier grows: 90 more rows of its input width.
            let width = hundred.ntk_net.tensors.last().expect("classifier").shape[1];
            assert_eq!(
                hundred.ntk_net.parameters - ten.ntk_net.parameters,
                90 * width,
                "{space:?}"
            );
        }
    }

    fn params(space: Space, init: InitMode, init_seed: u64) -> SupernetParams {
        SupernetParams {
            space,
            init,
            init_seed,
            ..SupernetParams::default()
        }
    }

    /// The artifact of `params` for 10 classes, written into a fresh folder.
    fn written(params: &SupernetParams) -> (tempfile::TempDir, SupernetOutput) {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = SupernetOutput::new(params, 10);
        output.write(dir.path()).expect("artifact written");
        (dir, output)
    }

    fn load(path: &Path) -> HashMap<String, Tensor> {
        candle_core::safetensors::load(path, &Device::Cpu).expect("safetensors loads")
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("f32 values")
    }

    const ALL: [(Space, InitMode); 4] = [
        (Space::Nb201, InitMode::Reference),
        (Space::Nb201, InitMode::Kaiming),
        (Space::Darts, InitMode::Reference),
        (Space::Darts, InitMode::Kaiming),
    ];

    /// Each file holds its network's parameters under the inventory's names and shapes, with
    /// the values the search's own generator gives for the recorded scheme and seed.
    #[test]
    fn weight_files_hold_the_inventory_drawn_as_recorded() -> Result<()> {
        for (space, init) in ALL {
            let (dir, output) = written(&params(space, init, 0));
            let (ntk_scheme, thin_scheme) = init.schemes();
            assert_eq!(
                (output.ntk_net.scheme, output.thin_net.scheme),
                (ntk_scheme, thin_scheme)
            );
            assert_ne!(output.ntk_net.seed, output.thin_net.seed);
            let rebuilt = |inventory: &Inventory| -> Result<tenas_core::net::params::Params> {
                let specs = match space {
                    Space::Nb201 => inventory
                        .network(dir.path(), Nb201Net::new)?
                        .specs()
                        .clone(),
                    Space::Darts => inventory
                        .network(dir.path(), DartsNet::new)?
                        .specs()
                        .clone(),
                };
                Ok::<_, Error>(specs.init(inventory.scheme, inventory.seed, &Device::Cpu)?)
            };
            for inventory in [&output.ntk_net, &output.thin_net] {
                let path = dir.path().join(&inventory.weights);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&path).expect("file").permissions().mode();
                    assert_eq!(mode & 0o444, 0o444, "{}: readable by all", path.display());
                }
                let stored = load(&path);
                assert_eq!(stored.len(), inventory.tensors.len(), "{space:?}");
                let params = rebuilt(inventory)?;
                for (id, record) in params.ids().zip(&inventory.tensors) {
                    let tensor = &stored[&record.name];
                    assert_eq!(tensor.dims(), record.shape.as_slice(), "{}", record.name);
                    assert_eq!(tensor.dtype(), candle_core::DType::F32);
                    let drawn = params.tensor(id);
                    assert_eq!(values(tensor), values(drawn), "{}", record.name);
                }
            }
        }
        Ok(())
    }

    /// (fan_in, fan_out) of a conv or linear weight, as PyTorch computes them.
    fn fans(shape: &[usize]) -> (usize, usize) {
        let receptive: usize = shape[2..].iter().product();
        (shape[1] * receptive, shape[0] * receptive)
    }

    /// Reference: weights in ±1/√fan_in, spread over the range; Kaiming: weights scaled by
    /// √(2/fan_out) (NTK net) or √(2/fan_in) (thin net) are standard normal; BN scales are 1.
    #[test]
    fn weight_statistics_match_the_scheme() {
        for (space, init) in ALL {
            let (dir, output) = written(&params(space, init, 3));
            for (inventory, fan_out) in [(&output.ntk_net, true), (&output.thin_net, false)] {
                let stored = load(&dir.path().join(&inventory.weights));
                let mut z = Vec::new();
                for (name, tensor) in &stored {
                    let v = values(tensor);
                    if tensor.dims().len() == 1 {
                        assert!(v.iter().all(|&g| g == 1.0), "{name}: BN scale is 1");
                        continue;
                    }
                    let (fan_in, fan_out_n) = fans(tensor.dims());
                    match init {
                        InitMode::Reference => {
                            let bound = 1.0 / (fan_in as f32).sqrt();
                            assert!(v.iter().all(|x| x.abs() < bound), "{name}");
                            z.extend(v.iter().map(|x| f64::from(x / bound)));
                        }
                        InitMode::Kaiming => {
                            let fan = if fan_out { fan_out_n } else { fan_in };
                            let std = (2.0 / fan as f64).sqrt();
                            z.extend(v.iter().map(|&x| f64::from(x) / std));
                        }
                    }
                }
                let n = z.len() as f64;
                let mean = z.iter().sum::<f64>() / n;
                let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                // Scaled uniform on (-1, 1): variance 1/3; scaled normal: 1.
                let expected = match init {
                    InitMode::Reference => 1.0 / 3.0,
                    InitMode::Kaiming => 1.0,
                };
                let what = format!("{space:?} {init:?} {}: {n} values", inventory.weights);
                assert!(mean.abs() < 4.0 / n.sqrt(), "{what}: mean {mean}");
                assert!(
                    (var / expected - 1.0).abs() < 0.15,
                    "{what}: variance {var}"
                );
            }
        }
    }

    #[test]
    fn same_params_write_the_same_bytes_and_each_choice_changes_them() {
        let read = |dir: &Path| {
            [
                SupernetOutput::FILE,
                SupernetOutput::NTK_WEIGHTS,
                SupernetOutput::THIN_WEIGHTS,
            ]
            .map(|f| std::fs::read(dir.join(f)).expect("artifact file"))
        };
        let base = params(Space::Nb201, InitMode::Reference, 0);
        let (a, _) = written(&base);
        let (b, _) = written(&base);
        assert_eq!(read(a.path()), read(b.path()), "byte-identical artifacts");
        for changed in [
            params(Space::Nb201, InitMode::Kaiming, 0),
            params(Space::Nb201, InitMode::Reference, 1),
        ] {
            let (c, _) = written(&changed);
            let (x, y) = (read(a.path()), read(c.path()));
            assert_ne!(x[1], y[1], "{changed:?}: NTK weights");
            assert_ne!(x[2], y[2], "{changed:?}: thin weights");
        }
    }

    /// The prune stage refuses a weight file that is not its network's, naming the file and
    /// the parameter, and a supernet sized for another dataset.
    #[test]
    fn networks_are_checked_against_the_weight_files() {
        let (dir, output) = written(&params(Space::Nb201, InitMode::Reference, 0));
        let networks = || output.networks(dir.path(), 10, Nb201Net::new).map(|_| ());
        networks().expect("a fresh artifact matches");
        let classes = output
            .networks(dir.path(), 100, Nb201Net::new)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(classes.contains("10 classes, the dataset 100"), "{classes}");

        let ntk = dir.path().join(SupernetOutput::NTK_WEIGHTS);
        let thin = dir.path().join(SupernetOutput::THIN_WEIGHTS);
        std::fs::copy(&thin, &ntk).expect("copy");
        let err = networks().unwrap_err().to_string();
        assert!(
            err.starts_with(&ntk.display().to_string()) && err.contains("`cells.0.edges"),
            "{err}"
        );
        // One tensor reshaped.
        let mut tensors = load(&thin);
        let classifier = tensors["classifier"].reshape((5, 2, 1)).expect("reshape");
        tensors.insert("classifier".into(), classifier);
        candle_core::safetensors::save(&tensors, &thin).expect("save");
        let thin_net = Nb201Net::new(NetConfig::thin(10));
        let err = output
            .thin_net
            .check_weights(&thin_net, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`classifier` has shape [5, 2, 1]"), "{err}");
        std::fs::write(&thin, b"not safetensors").expect("write");
        let err = output
            .thin_net
            .check_weights(&thin_net, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&thin.display().to_string()) && err.contains("not a readable"),
            "{err}"
        );
    }

    /// Python's `safetensors` reads the files as Rust wrote them (names, shapes, f32 values);
    /// skipped, and said so, without python3 with safetensors and numpy.
    #[test]
    fn python_reads_the_weight_files() {
        let has_safetensors = Command::new("python3")
            .args(["-c", "import safetensors.numpy, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_safetensors {
            eprintln!(
                "SKIPPED python_reads_the_weight_files: python3 with safetensors and numpy not found"
            );
            return;
        }
        let script = r#"
import json, sys
from safetensors.numpy import load_file
tensors = load_file(sys.argv[1])
print(json.dumps({k: [list(v.shape), str(v.dtype), v.ravel()[:3].view('uint32').tolist()]
                  for k, v in tensors.items()}))
"#;
        let (dir, output) = written(&params(Space::Darts, InitMode::Kaiming, 0));
        for inventory in [&output.ntk_net, &output.thin_net] {
            let path = dir.path().join(&inventory.weights);
            let out = Command::new("python3")
                .args(["-c", script])
                .arg(&path)
                .output()
                .expect("python3 runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The first values' bits: exact, where decimal text need not round-trip.
            let seen: HashMap<String, (Vec<usize>, String, Vec<u32>)> =
                serde_json::from_slice(&out.stdout).expect("python prints JSON");
            let stored = load(&path);
            assert_eq!(seen.len(), inventory.tensors.len());
            for record in &inventory.tensors {
                let (shape, dtype, head) = &seen[&record.name];
                assert_eq!((shape, dtype.as_str()), (&record.shape, "float32"));
                let ours: Vec<u32> = values(&stored[&record.name])
                    .iter()
                    .take(3)
                    .map(|x| x.to_bits())
                    .collect();
                assert_eq!(head, &ours, "{}", record.name);
            }
        }
    }
}
