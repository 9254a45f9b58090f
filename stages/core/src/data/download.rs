//! Where the official CIFAR archives come from, where they unpack to, and the provenance a
//! download leaves; the fetching itself is in `fetch` (feature `download`).
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cifar::{CIFAR100_DIR, CIFAR100_TRAIN, CIFAR10_DIR};
use super::dataset::Dataset;
use crate::error::{Error, Result};

/// Where an archive comes from and its published md5 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSource {
    pub url: String,
    pub md5: String,
}

impl ArchiveSource {
    /// The official archive of `dataset` (Krizhevsky's site, with its published md5).
    pub fn official(dataset: Dataset) -> Result<ArchiveSource> {
        let (url, md5) = match dataset {
            Dataset::Cifar10 => (
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
            Dataset::Cifar100 => (
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
            Dataset::ImageNet16_120 => {
                return Err(Error::Invalid(
                    "ImageNet16-120 has no downloadable archive here (its official batches are on Google Drive)"
                        .into(),
                ))
            }
            Dataset::ImageNet1k => {
                return Err(Error::Invalid(
                    "ImageNet-1k cannot be downloaded (it needs an image-net.org account); point the data root at a folder with train/<wnid>/*.JPEG"
                        .into(),
                ))
            }
        };
        Ok(ArchiveSource {
            url: url.into(),
            md5: md5.into(),
        })
    }

    /// The same archive file from another server: `base` replaces the URL up to its file name.
    pub fn mirrored(self, base: &str) -> ArchiveSource {
        let file = self.url.rsplit('/').next().unwrap_or_default();
        ArchiveSource {
            url: format!("{}/{file}", base.trim_end_matches('/')),
            md5: self.md5,
        }
    }
}

/// What a download leaves beside the files it unpacked: the archive they came from and the
/// sha256 of each training file. A data root that holds it and files that still match it is
/// the archive's content, so the dataset is keyed by the archive alike before and after the
/// download, and planning needs neither the files nor the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The archive's file name (not its URL: a mirror serves the same archive).
    pub archive: String,
    pub md5: String,
    /// (file name, sha256) of each training file, in reading order.
    pub files: Vec<(String, String)>,
}

/// The provenance file's name inside the dataset's folder.
pub const PROVENANCE_FILE: &str = ".tenas-archive.json";

impl Provenance {
    /// The archive's file name in `source`'s URL.
    pub fn archive_name(source: &ArchiveSource) -> &str {
        source.url.rsplit('/').next().unwrap_or_default()
    }

    /// The provenance a download of `dataset` left under `root`, if any (an unreadable one
    /// counts as none: the files are then keyed by their content).
    pub fn read(root: &Path, dataset: Dataset) -> Option<Provenance> {
        let path = root.join(dataset_dir(dataset).ok()?).join(PROVENANCE_FILE);
        serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
    }
}

/// The folder the archive unpacks to, relative to the data root.
pub fn dataset_dir(dataset: Dataset) -> Result<&'static str> {
    match dataset {
        Dataset::Cifar10 => Ok(CIFAR10_DIR),
        Dataset::Cifar100 => Ok(CIFAR100_DIR),
        Dataset::ImageNet16_120 | Dataset::ImageNet1k => Err(Error::Invalid(format!(
            "{} has no CIFAR archive layout",
            dataset.name()
        ))),
    }
}

/// The training file whose presence means the dataset is there; a download moves it into
/// place last.
pub(super) fn marker_file(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::Cifar100 => CIFAR100_TRAIN,
        _ => "data_batch_1.bin",
    }
}

/// Whether `dataset`'s training files are under `root`.
pub fn is_present(root: &Path, dataset: Dataset) -> bool {
    dataset_dir(dataset).is_ok_and(|dir| root.join(dir).join(marker_file(dataset)).is_file())
}
