//! Published Kendall τ of training-free proxies on all 15,625 NAS-Bench-201 cells, to set a
//! study's τ beside: CIFAR-10, CIFAR-100, ImageNet16-120 (`None` where a source gives none).

/// One published τ: the predictor name a study reports it under, and where it comes from.
pub struct PublishedTau {
    pub predictor: &'static str,
    pub tau: [Option<f64>; 3],
    pub source: &'static str,
}

/// The published values tenas's predictors are compared with.
pub const PUBLISHED: &[PublishedTau] = &[
    PublishedTau {
        predictor: "az_nas",
        tau: [Some(0.741), Some(0.723), Some(0.710)],
        source: "AZ-NAS (CVPR 2024), NB201/tss_general.ipynb",
    },
    PublishedTau {
        predictor: "zico",
        tau: [Some(0.589), Some(0.620), Some(0.614)],
        source: "ZiCo (ICLR 2023)",
    },
    PublishedTau {
        predictor: "params",
        tau: [Some(0.576), Some(0.552), Some(0.519)],
        source: "#params, as AZ-NAS reports it",
    },
    PublishedTau {
        predictor: "synflow",
        tau: [Some(0.571), Some(0.562), Some(0.553)],
        source: "synflow, as AZ-NAS reports it",
    },
    PublishedTau {
        predictor: "naswot",
        tau: [Some(0.557), Some(0.579), Some(0.573)],
        source: "NASWOT (ICML 2021), as AZ-NAS reports it",
    },
    PublishedTau {
        predictor: "-rank_sum",
        tau: [Some(0.536), None, None],
        source: "TE-NAS, as others measure it",
    },
];

/// The best published ranking, VKDNW_agg (CVPR 2025): the line a study is measured against.
pub const BEST_PUBLISHED: PublishedTau = PublishedTau {
    predictor: "VKDNW_agg",
    tau: [Some(0.750), Some(0.753), Some(0.743)],
    source: "VKDNW (CVPR 2025), paper table 1",
};

/// The published τ of `predictor` on dataset `d` (0 CIFAR-10, 1 CIFAR-100, 2 ImageNet16-120).
pub fn published_tau(predictor: &str, d: usize) -> Option<f64> {
    PUBLISHED
        .iter()
        .find(|p| p.predictor == predictor)
        .and_then(|p| p.tau[d])
}
