//! Reading a dataset's training images from the official layout under a data root, and which
//! files they are (their content keys the dataset stage).
use std::path::{Path, PathBuf};

use super::dataset::Dataset;
use super::pool::ImagePool;
use super::{cifar, download, imagenet16};
use crate::error::{Error, Result};

/// Loads the training images of `dataset` from the official layout under `root`.
pub fn load_dataset(root: &Path, dataset: Dataset) -> Result<ImagePool> {
    match dataset {
        Dataset::Cifar10 => cifar::load_cifar10(root),
        Dataset::Cifar100 => cifar::load_cifar100(root),
        Dataset::ImageNet16_120 => imagenet16::load_imagenet16_120(root, true),
        Dataset::ImageNet1k => Err(Error::Invalid(
            "ImageNet-1k is sampled from its folder by the dataset stage, never loaded whole"
                .into(),
        )),
    }
}

/// The training files of `dataset` under `root`, in reading order; empty when it is missing.
pub fn source_files(root: &Path, dataset: Dataset) -> Vec<PathBuf> {
    match dataset {
        Dataset::ImageNet16_120 => imagenet16::batch_paths(root)
            .into_iter()
            .map(|(path, _)| path)
            .collect(),
        _ if !download::is_present(root, dataset) => vec![],
        Dataset::Cifar10 => cifar::cifar10_batch_paths(root),
        Dataset::Cifar100 => vec![root.join(cifar::CIFAR100_DIR).join(cifar::CIFAR100_TRAIN)],
        Dataset::ImageNet1k => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_a_missing_or_unloadable_dataset_says_why() {
        let root = tempfile::tempdir().unwrap();
        let err = load_dataset(root.path(), Dataset::ImageNet16_120)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ImageNet16") && err.contains("train_data_batch_1"),
            "{err}"
        );
        let err = load_dataset(root.path(), Dataset::Cifar100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cifar-100-binary/train.bin"), "{err}");
        let err = load_dataset(root.path(), Dataset::ImageNet1k)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never loaded whole"), "{err}");
    }
}
