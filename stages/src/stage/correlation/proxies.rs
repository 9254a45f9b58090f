//! The proxies a correlation study runs: TE-NAS's κ and regions on the supernet's networks,
//! and the cell proxies of `tenas_core::proxy` on NAS-Bench-201's network; the network size
//! they run at; and the cached unit that holds one cell's cell-proxy components.
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_core::data::pool::ImagePool;
use tenas_core::proxy::{all_proxies, evaluate, proxy_named, CellInput, CellProxy, LabelledBatch};
use tenas_core::space::benchmark_net::BenchmarkNetwork;
use tenas_core::space::nb201_arch::Arch;
use tenas_core::space::nb201_benchmark::BenchmarkNet;
use tenas_pipeline::ParamError;

use crate::error::{Error, Result};

/// TE-NAS's pair (κ and regions) in a study's `proxies` list.
pub const TENAS: &str = "tenas";

/// TE-NAS's predictors, which the `tenas` entry adds to a study.
pub const TENAS_PREDICTORS: [&str; 3] = ["-kappa", "regions", "-rank_sum"];

/// The network size every proxy of a study runs at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyNetwork {
    /// The supernet stage's channels and cells per stage (TE-NAS's C=3, N=1).
    #[default]
    Tenas,
    /// The network NAS-Bench-201 trained: C=16, N=5.
    Benchmark,
}

impl ProxyNetwork {
    /// The (channels, cells per stage) of the network, given the supernet's.
    pub fn size(self, supernet: (usize, usize)) -> (usize, usize) {
        match self {
            ProxyNetwork::Tenas => supernet,
            ProxyNetwork::Benchmark => {
                let b = BenchmarkNet::default();
                (b.channels, b.layers)
            }
        }
    }
}

/// A study's `proxies`, split into TE-NAS's pair and the cell proxies (in the order named).
pub struct ProxySelection {
    pub tenas: bool,
    pub cell: Vec<Box<dyn CellProxy>>,
}

impl ProxySelection {
    /// The selection `names` declares; unknown, repeated or no names are errors of `proxies`.
    pub fn parse(names: &[String]) -> std::result::Result<Self, ParamError> {
        let fail = |message: String| ParamError::new("proxies", message);
        if names.is_empty() {
            return Err(fail("names no proxy".into()));
        }
        let mut selection = ProxySelection {
            tenas: false,
            cell: Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(fail(format!("names {name:?} twice")));
            }
            if name == TENAS {
                selection.tenas = true;
                continue;
            }
            let proxy = proxy_named(name).map_err(|_| {
                let known: Vec<&str> = std::iter::once(TENAS)
                    .chain(all_proxies().iter().map(|p| p.name()))
                    .collect();
                fail(format!(
                    "unknown proxy {name:?} (known: {})",
                    known.join(", ")
                ))
            })?;
            selection.cell.push(proxy);
        }
        Ok(selection)
    }

    /// Every predictor the selection yields, in table order: TE-NAS's, then each cell
    /// proxy's components.
    pub fn predictors(&self) -> Vec<&'static str> {
        let tenas = self.tenas.then_some(TENAS_PREDICTORS).into_iter().flatten();
        tenas
            .chain(
                self.cell
                    .iter()
                    .flat_map(|p| p.components().iter().copied()),
            )
            .collect()
    }

    /// The cell proxies' components, in the order a [`ProxyUnit`] holds them.
    pub fn components(&self) -> Vec<&'static str> {
        self.cell
            .iter()
            .flat_map(|p| p.components().iter().copied())
            .collect()
    }

    /// How many real batches the hungriest cell proxy reads.
    pub fn data_batches(&self) -> usize {
        self.cell
            .iter()
            .map(|p| p.data_batches())
            .max()
            .unwrap_or(0)
    }

    /// What determines one cell's cell-proxy unit besides the stage's seed and inputs: each
    /// proxy's name, version and input kind, the network (with its arithmetic's version) and
    /// the batch.
    pub fn descriptor(&self, network: &BenchmarkNet, batch: usize, arch: &Arch) -> Value {
        let proxies: Vec<Value> = self
            .cell
            .iter()
            .map(|p| {
                json!({
                    "name": p.name(),
                    "version": p.version(),
                    "input": format!("{:?}", p.input()),
                })
            })
            .collect();
        json!({
            "proxies": proxies,
            "network": {
                "version": BenchmarkNetwork::VERSION,
                "channels": network.channels,
                "layers": network.layers,
                "num_classes": network.num_classes,
                "side": network.side,
            },
            "batch": batch,
            "arch": arch.to_string(),
        })
    }
}

/// What the cell proxies compute on, shared by every cell of a study: the network size, the
/// batch, the real batches (the same for every cell) and the device.
pub struct ProxyBench {
    pub network: BenchmarkNet,
    pub batch: usize,
    pub seed: u64,
    pub data: Vec<LabelledBatch>,
    pub device: Device,
}

impl ProxyBench {
    /// Loads the real batches: the pool's first `batches × batch` images, in stored order.
    pub fn new(
        network: BenchmarkNet,
        batch: usize,
        batches: usize,
        seed: u64,
        pool: &ImagePool,
        device: Device,
    ) -> Result<Self> {
        if batches * batch > pool.n {
            return Err(Error::invalid(format!(
                "the proxies read {batches} batch(es) of {batch} images, but the dataset's pool \
                 holds {} (raise [dataset] limit or lower proxy_batch)",
                pool.n
            )));
        }
        let data = (0..batches)
            .map(|b| LabelledBatch::from_pool(pool, b * batch, batch, &device))
            .collect::<tenas_core::Result<Vec<_>>>()?;
        Ok(ProxyBench {
            network,
            batch,
            seed,
            data,
            device,
        })
    }

    /// Every cell proxy of `selection` on the cell `arch`.
    pub fn score(&self, selection: &ProxySelection, arch: &Arch) -> Result<ProxyUnit> {
        let network = BenchmarkNetwork::new(self.network, *arch)?;
        let input = CellInput {
            network: &network,
            seed: self.seed,
            batch: self.batch,
            device: &self.device,
            data: &self.data,
        };
        let mut unit = ProxyUnit::default();
        for proxy in &selection.cell {
            let start = Instant::now();
            let values = evaluate(proxy.as_ref(), &input)?;
            unit.seconds
                .push((proxy.name().to_string(), start.elapsed().as_secs_f64()));
            for (component, value) in proxy.components().iter().zip(values) {
                unit.components.push(component.to_string());
                unit.values.push(Extended(value));
            }
        }
        Ok(unit)
    }
}

/// One cell's cell-proxy components as its unit stores them, with each proxy's seconds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProxyUnit {
    pub components: Vec<String>,
    pub values: Vec<Extended>,
    /// Wall seconds per proxy when the unit was computed (not part of any table).
    pub seconds: Vec<(String, f64)>,
}

impl ProxyUnit {
    pub const FILE: &'static str = "proxies.json";

    /// The values in the order of `components`; `None` if the unit holds other components.
    pub fn values_for(&self, components: &[&str]) -> Option<Vec<f64>> {
        (self
            .components
            .iter()
            .map(String::as_str)
            .eq(components.iter().copied()))
        .then(|| self.values.iter().map(|v| v.0).collect())
    }
}

/// An f64 that JSON keeps even when it is ±∞ or NaN (as the strings "inf", "-inf", "NaN").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extended(pub f64);

impl Serialize for Extended {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }
}

impl<'de> Deserialize<'de> for Extended {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(f64),
            Word(String),
        }
        match Text::deserialize(d)? {
            Text::Number(v) => Ok(Extended(v)),
            Text::Word(w) => match w.as_str() {
                "inf" => Ok(Extended(f64::INFINITY)),
                "-inf" => Ok(Extended(f64::NEG_INFINITY)),
                "NaN" => Ok(Extended(f64::NAN)),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a number"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_selection_lists_tenas_first_then_each_proxys_components() {
        let s = ProxySelection::parse(&names(&["zico", "tenas", "az_nas"])).unwrap();
        assert!(s.tenas);
        assert_eq!(
            s.predictors(),
            [
                "-kappa",
                "regions",
                "-rank_sum",
                "zico",
                "expressivity",
                "progressivity",
                "trainability",
                "complexity"
            ]
        );
        assert_eq!(s.data_batches(), 2, "zico reads two batches");
    }

    #[test]
    fn bad_selections_are_param_errors() {
        let err = ProxySelection::parse(&names(&["zico", "zen", "zico"]))
            .err()
            .unwrap();
        assert_eq!(err.message, "names \"zico\" twice");
        let err = ProxySelection::parse(&names(&["tenas", "bogus"]))
            .err()
            .unwrap();
        assert_eq!(err.key, "proxies");
        assert!(err
            .message
            .starts_with("unknown proxy \"bogus\" (known: tenas, az_nas, zico"));
        assert!(ProxySelection::parse(&[]).is_err());
    }

    #[test]
    fn non_finite_values_survive_json() {
        let values = [1.5, f64::NEG_INFINITY, f64::INFINITY].map(Extended);
        let text = serde_json::to_string(&values).unwrap();
        assert_eq!(text, r#"[1.5,"-inf","inf"]"#);
        let back: Vec<Extended> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, values);
        let nan: Extended = serde_json::from_str(r#""NaN""#).unwrap();
        assert!(nan.0.is_nan());
        assert!(serde_json::from_str::<Extended>(r#""many""#).is_err());
    }
}
