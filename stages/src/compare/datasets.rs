//! The three NAS-Bench-201 datasets as a comparison reports them: table-column prefix,
//! printed name, the paper's TE-NAS result and the found cell's accuracy.
use crate::stage::bench::ResultRow;
use tenas_core::data::dataset::Dataset;

/// One NB201 dataset in a comparison.
#[derive(Clone, Copy, Debug)]
pub struct Nb201Dataset {
    pub dataset: Dataset,
    /// Prefix of this dataset's Parquet columns and plot files.
    pub key: &'static str,
    pub title: &'static str,
    /// TE-NAS on NAS-Bench-201 in the paper: test accuracy mean and std, %.
    pub paper: (f64, f64),
    /// The found cell's test accuracy on this dataset, as the run recorded it.
    pub accuracy: fn(&ResultRow) -> f64,
}

pub const DATASETS: [Nb201Dataset; 3] = [
    Nb201Dataset {
        dataset: Dataset::Cifar10,
        key: "cifar10",
        title: "CIFAR-10",
        paper: (93.9, 0.47),
        accuracy: |r| r.cifar10,
    },
    Nb201Dataset {
        dataset: Dataset::Cifar100,
        key: "cifar100",
        title: "CIFAR-100",
        paper: (71.24, 0.56),
        accuracy: |r| r.cifar100,
    },
    Nb201Dataset {
        dataset: Dataset::ImageNet16_120,
        key: "imagenet16_120",
        title: "ImageNet16-120",
        paper: (42.38, 0.46),
        accuracy: |r| r.imagenet16_120,
    },
];
