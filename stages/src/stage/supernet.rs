//! The `supernet` stage: fixes the search space, its networks and how they are initialised,
//! and records their parameter inventory for the dataset's class count.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::{check_range, input, params, read_json, write_json};
use crate::error::Result;
use crate::prune::score::InitMode;
use crate::space::darts_net::{DartsNet, DartsNetConfig};
use crate::space::nb201_net::{Nb201Net, NetConfig};
use crate::space::{Space, SpaceNet};

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
}

impl Default for SupernetParams {
    fn default() -> Self {
        SupernetParams {
            space: Space::Nb201,
            channels: 3,
            layers: 1,
            init: InitMode::Reference,
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
    pub ntk_net: Inventory,
    pub thin_net: Inventory,
}

impl SupernetOutput {
    pub const FILE: &'static str = "supernet.json";

    /// The networks of `params` with a classifier of `num_classes` outputs.
    pub fn new(params: &SupernetParams, num_classes: usize) -> SupernetOutput {
        let (ntk_net, thin_net) = match params.space {
            Space::Darts => {
                let ntk = DartsNetConfig::supernet(params.channels, params.layers, num_classes);
                let thin = DartsNetConfig::thin(num_classes);
                (
                    inventory(&DartsNet::new(ntk), ntk),
                    inventory(&DartsNet::new(thin), thin),
                )
            }
            Space::Nb201 => {
                let ntk = NetConfig {
                    channels: params.channels,
                    layers: params.layers,
                    num_classes,
                    thin: false,
                };
                let thin = NetConfig::thin(num_classes);
                (
                    inventory(&Nb201Net::new(ntk), ntk),
                    inventory(&Nb201Net::new(thin), thin),
                )
            }
        };
        SupernetOutput {
            space: params.space,
            channels: params.channels,
            layers: params.layers,
            init: params.init,
            ntk_net,
            thin_net,
        }
    }
}

/// Parameter names and sizes of one network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inventory {
    /// The space's network config.
    pub config: Value,
    pub parameters: usize,
    pub tensors: Vec<(String, Vec<usize>)>,
}

fn inventory<N: SpaceNet>(net: &N, config: impl Serialize) -> Inventory {
    let tensors: Vec<(String, Vec<usize>)> = net
        .specs()
        .specs()
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    let parameters = tensors
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    Inventory {
        config: serde_json::to_value(config).expect("plain config serializes"),
        parameters,
        tensors,
    }
}

pub struct SupernetStage;

impl Stage for SupernetStage {
    fn kind(&self) -> &'static str {
        "supernet"
    }
    fn version(&self) -> u32 {
        1
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
        "{} parameters (NTK net), {} (thin net), {} classes, init {:?}",
        output.ntk_net.parameters, output.thin_net.parameters, data.num_classes, output.init
    ));
    write_json(&ctx.out_dir().join(SupernetOutput::FILE), &output)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let (name, shape) = net.tensors.last().expect("tensors");
                assert_eq!((name.as_str(), shape[0]), ("classifier", 100), "{space:?}");
                assert_eq!(net.config["num_classes"], 100, "{space:?}");
            }
            // Only the classifier grows: 90 more rows of its input width.
            let width = hundred.ntk_net.tensors.last().expect("classifier").1[1];
            assert_eq!(
                hundred.ntk_net.parameters - ten.ntk_net.parameters,
                90 * width,
                "{space:?}"
            );
        }
    }
}
