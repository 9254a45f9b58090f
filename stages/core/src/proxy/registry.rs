//! The proxies a study can name, by name.
use super::az_nas::AzNas;
use super::cell_proxy::CellProxy;
use super::fisher::Fisher;
use super::flops::Flops;
use super::grad_norm::GradNorm;
use super::grasp::Grasp;
use super::jacov::Jacov;
use super::naswot::Naswot;
use super::params::Params;
use super::snip::Snip;
use super::synflow::Synflow;
use super::zen::Zen;
use super::zico::Zico;
use crate::error::{Error, Result};

/// Every proxy, in the order tables list them.
pub fn all_proxies() -> Vec<Box<dyn CellProxy>> {
    vec![
        Box::new(AzNas),
        Box::new(Zico),
        Box::new(Naswot),
        Box::new(Synflow),
        Box::new(Snip),
        Box::new(Grasp),
        Box::new(GradNorm),
        Box::new(Zen),
        Box::new(Jacov),
        Box::new(Fisher),
        Box::new(Params),
        Box::new(Flops),
    ]
}

/// The proxy called `name`, or an error listing the known ones.
pub fn proxy_named(name: &str) -> Result<Box<dyn CellProxy>> {
    let proxies = all_proxies();
    let known: Vec<&str> = proxies.iter().map(|p| p.name()).collect();
    let known = known.join(", ");
    proxies
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| Error::Invalid(format!("unknown proxy {name:?} (known: {known})")))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::proxy::cell_proxy::{evaluate, CellInput, LabelledBatch};
    use crate::space::benchmark_net::BenchmarkNetwork;
    use crate::space::nb201_arch::Arch;
    use crate::space::nb201_benchmark::BenchmarkNet;

    const BATCH: usize = 6;
    const MIXED: &str =
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
    const ALL_NONE: &str = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
    /// Exactly the identity: node 1 is zero, so node 3 = node 2 = node 0.
    const IDENTITY: &str =
        "|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|";

    fn tiny() -> BenchmarkNet {
        BenchmarkNet {
            channels: 4,
            layers: 1,
            num_classes: 5,
            side: 8,
        }
    }

    /// Two generated labelled batches (not CIFAR: the values only need to vary).
    fn data() -> Vec<LabelledBatch> {
        (0..2)
            .map(|b| {
                let n = BATCH * 3 * 8 * 8;
                let v: Vec<f32> = (0..n)
                    .map(|i| (((i + 31 * b) * 7919 % 211) as f32 - 105.0) / 60.0)
                    .collect();
                let labels: Vec<u32> = (0..BATCH as u32).map(|i| (i + b as u32) % 5).collect();
                LabelledBatch {
                    images: Tensor::from_vec(v, (BATCH, 3, 8, 8), &Device::Cpu).unwrap(),
                    labels: Tensor::from_vec(labels, BATCH, &Device::Cpu).unwrap(),
                }
            })
            .collect()
    }

    fn scores(arch: &str, seed: u64) -> Vec<(String, f64)> {
        let network = BenchmarkNetwork::new(tiny(), Arch::parse(arch).unwrap()).unwrap();
        let data = data();
        let input = CellInput {
            network: &network,
            seed,
            batch: BATCH,
            device: &Device::Cpu,
            data: &data,
        };
        all_proxies()
            .iter()
            .flat_map(|p| {
                let values = evaluate(p.as_ref(), &input).unwrap();
                assert_eq!(values.len(), p.components().len(), "{}", p.name());
                p.components()
                    .iter()
                    .map(|c| c.to_string())
                    .zip(values)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn value(scores: &[(String, f64)], component: &str) -> f64 {
        scores.iter().find(|(c, _)| c == component).unwrap().1
    }

    #[test]
    fn every_proxy_scores_a_healthy_cell_finitely_and_reproducibly() {
        let a = scores(MIXED, 0);
        assert!(a.iter().all(|(_, v)| v.is_finite()), "{a:?}");
        assert_eq!(a, scores(MIXED, 0));
        let b = scores(MIXED, 1);
        for name in ["naswot", "grad_norm", "zen", "expressivity", "snip", "zico"] {
            assert_ne!(value(&a, name), value(&b, name), "{name} ignores its seed");
        }
        // Arch-only values do not depend on the seed.
        for name in ["params", "flops", "complexity"] {
            assert_eq!(value(&a, name), value(&b, name));
        }
        assert!(value(&a, "synflow") > 0.0 && value(&a, "snip") > 0.0);
        assert!(value(&a, "trainability") <= 0.0, "2 − σ − 1/σ peaks at 0");
    }

    /// The degenerate values the published code gives on an all-`none` cell, NaN as −∞.
    #[test]
    fn an_all_none_cell_gets_the_defined_degenerate_values() {
        let s = scores(ALL_NONE, 0);
        assert!(s.iter().all(|(_, v)| !v.is_nan()), "{s:?}");
        for name in ["expressivity", "progressivity", "naswot", "zen", "jacov"] {
            assert_eq!(value(&s, name), f64::NEG_INFINITY, "{name}");
        }
        for name in ["synflow", "snip", "zico", "grasp"] {
            assert_eq!(value(&s, name), 0.0, "{name}");
        }
        // The classifier's bias still gets a gradient.
        assert!(value(&s, "grad_norm") > 0.0);
        assert!(value(&s, "trainability").is_finite());
    }

    #[test]
    fn an_identity_cell_has_minus_infinite_trainability() {
        let s = scores(IDENTITY, 0);
        assert_eq!(value(&s, "trainability"), f64::NEG_INFINITY);
        assert!(value(&s, "expressivity").is_finite());
    }

    /// More convolutions mean more parameters and FLOPs, and the all-3×3 cell beats the
    /// all-none one on every gradient proxy.
    #[test]
    fn proxies_order_an_obviously_richer_cell_first() {
        let rich = scores("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 0);
        let poor = scores(ALL_NONE, 0);
        for name in [
            "params",
            "flops",
            "synflow",
            "snip",
            "naswot",
            "zen",
            "expressivity",
        ] {
            assert!(value(&rich, name) > value(&poor, name), "{name}");
        }
    }

    #[test]
    fn proxies_are_found_by_name_and_an_unknown_one_is_an_error() {
        for proxy in all_proxies() {
            assert_eq!(proxy_named(proxy.name()).unwrap().name(), proxy.name());
        }
        let err = proxy_named("vkdnw").err().unwrap().to_string();
        assert!(err.contains("vkdnw") && err.contains("az_nas"), "{err}");
    }

    /// A proxy that needs real images says so when none are given.
    #[test]
    fn a_data_proxy_without_data_is_an_error() {
        let network = BenchmarkNetwork::new(tiny(), Arch::parse(MIXED).unwrap()).unwrap();
        let input = CellInput {
            network: &network,
            seed: 0,
            batch: BATCH,
            device: &Device::Cpu,
            data: &[],
        };
        let err = evaluate(proxy_named("snip").unwrap().as_ref(), &input)
            .err()
            .unwrap();
        assert!(err.to_string().contains("snip needs 1 real batch"), "{err}");
    }
}
