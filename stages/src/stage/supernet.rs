//! The `supernet` stage: fixes the search space, its networks and how they are initialised,
//! and records their parameter inventory.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::write_json;
use crate::prune::score::InitMode;
use crate::space::darts_net::{DartsNet, DartsNetConfig};
use crate::space::nb201_net::{Nb201Net, NetConfig};
use crate::space::SpaceNet;

/// The search spaces the stages know.
pub const SPACES: [&str; 2] = ["nb201", "darts"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupernetParams {
    /// Search space: `nb201` or `darts`.
    pub space: String,
    /// Channels of the NTK supernet's first stage (C).
    pub channels: usize,
    /// Cells per stage (N).
    pub layers: usize,
    pub init: InitMode,
}

impl Default for SupernetParams {
    fn default() -> Self {
        SupernetParams {
            space: "nb201".into(),
            channels: 3,
            layers: 1,
            init: InitMode::Reference,
        }
    }
}

/// The stage's output, read by the prune stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SupernetOutput {
    pub space: String,
    pub channels: usize,
    pub layers: usize,
    pub init: InitMode,
    pub ntk_net: Inventory,
    pub thin_net: Inventory,
}

impl SupernetOutput {
    pub const FILE: &'static str = "supernet.json";
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
    fn default_inputs(&self) -> Vec<&'static str> {
        vec![]
    }
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
    }
    fn resolve_params(&self, params: &toml::Table) -> Result<Value, ParamError> {
        let value = resolve_params_as::<SupernetParams>(params)?;
        let p: SupernetParams = serde_json::from_value(value.clone()).expect("just resolved");
        if !SPACES.contains(&p.space.as_str()) {
            return Err(ParamError::new(
                "space",
                format!(
                    "unknown search space `{}` (known: {})",
                    p.space,
                    SPACES.join(", ")
                ),
            ));
        }
        if p.channels == 0 || p.layers == 0 {
            return Err(ParamError::new(
                if p.channels == 0 {
                    "channels"
                } else {
                    "layers"
                },
                "must be at least 1",
            ));
        }
        Ok(value)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        let p: SupernetParams = ctx.params_as()?;
        // Class count only sizes the classifier; the inventory reports it for CIFAR-10.
        let (ntk_net, thin_net) = match p.space.as_str() {
            "darts" => {
                let ntk = DartsNetConfig::supernet(p.channels, p.layers, 10);
                let thin = DartsNetConfig::thin(10);
                (
                    inventory(&DartsNet::new(ntk), ntk),
                    inventory(&DartsNet::new(thin), thin),
                )
            }
            _ => {
                let ntk = NetConfig {
                    channels: p.channels,
                    layers: p.layers,
                    num_classes: 10,
                    thin: false,
                };
                let thin = NetConfig::thin(10);
                (
                    inventory(&Nb201Net::new(ntk), ntk),
                    inventory(&Nb201Net::new(thin), thin),
                )
            }
        };
        let output = SupernetOutput {
            space: p.space,
            channels: p.channels,
            layers: p.layers,
            init: p.init,
            ntk_net,
            thin_net,
        };
        ctx.progress().log(format!(
            "supernet: {} parameters (NTK net), {} (thin net), init {:?}",
            output.ntk_net.parameters, output.thin_net.parameters, output.init
        ));
        Ok(write_json(
            &ctx.out_dir().join(SupernetOutput::FILE),
            &output,
        )?)
    }
}
