//! The datasets the scores can be computed on: their names, class counts, image sides,
//! normalisation and augmentation, and which reader loads each one's training images.
use super::sample::Augment;
use crate::error::{Error, Result};

/// Side of ImageNet16-120's images, as stored in its batches.
pub const IMAGENET16_SIDE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Cifar10,
    Cifar100,
    ImageNet16_120,
    /// The full ImageNet-1k training set as a folder of JPEGs, resized to 32x32.
    ImageNet1k,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [
        Dataset::Cifar10,
        Dataset::Cifar100,
        Dataset::ImageNet16_120,
        Dataset::ImageNet1k,
    ];
    /// The datasets NAS-Bench-201 reports accuracies on.
    pub const NB201: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

    /// Accepts the names the reference's launcher uses (`cifar10`, `cifar100`, `imagenet16-120`,
    /// `imagenet-1k`), case-insensitively.
    pub fn from_name(name: &str) -> Result<Dataset> {
        match name.to_ascii_lowercase().as_str() {
            "cifar10" => Ok(Dataset::Cifar10),
            "cifar100" => Ok(Dataset::Cifar100),
            "imagenet16-120" => Ok(Dataset::ImageNet16_120),
            "imagenet-1k" => Ok(Dataset::ImageNet1k),
            _ => Err(Error::Invalid(format!(
                "unknown dataset {name:?} (expected cifar10, cifar100, imagenet16-120 or imagenet-1k)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageNet16_120 => "imagenet16-120",
            Dataset::ImageNet1k => "imagenet-1k",
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            Dataset::Cifar10 => 10,
            Dataset::Cifar100 => 100,
            Dataset::ImageNet16_120 => 120,
            Dataset::ImageNet1k => 1000,
        }
    }

    /// Per-channel normalisation mean (RGB, in [0, 1]), as the reference uses.
    pub fn mean(self) -> [f64; 3] {
        match self {
            Dataset::Cifar10 => per_255([125.3, 123.0, 113.9]),
            Dataset::Cifar100 => per_255([129.3, 124.1, 112.4]),
            Dataset::ImageNet16_120 => per_255([122.68, 116.66, 104.01]),
            Dataset::ImageNet1k => [0.485, 0.456, 0.406],
        }
    }

    /// Per-channel normalisation standard deviation (RGB, in [0, 1]).
    pub fn std(self) -> [f64; 3] {
        match self {
            Dataset::Cifar10 => per_255([63.0, 62.1, 66.7]),
            Dataset::Cifar100 => per_255([68.2, 65.4, 70.4]),
            Dataset::ImageNet16_120 => per_255([63.22, 61.26, 65.09]),
            Dataset::ImageNet1k => [0.229, 0.224, 0.225],
        }
    }

    /// Side of the square images (ImageNet16 is read as stored; the others are 32×32).
    pub fn side(self) -> usize {
        match self {
            Dataset::ImageNet16_120 => IMAGENET16_SIDE,
            _ => 32,
        }
    }

    /// Bytes of one image in the pool: three planes of `side × side`.
    pub fn image_bytes(self) -> usize {
        3 * self.side() * self.side()
    }

    /// The reference's training augmentation of the NTK batch images, where this crate applies
    /// it: ImageNet16 is flipped and cropped with padding 2 (`get_datasets`). CIFAR and
    /// ImageNet-1k batches are drawn as stored (the reference also flips them and crops with
    /// padding 4; applying that would change every CIFAR score, a change of its own).
    pub fn augmentation(self) -> Option<Augment> {
        match self {
            Dataset::ImageNet16_120 => Some(Augment { pad: 2 }),
            _ => None,
        }
    }

    /// The published code's training transform of this dataset's images (`get_datasets`):
    /// CIFAR padded by 4, ImageNet16 by 2. ImageNet-1k's resized crops are not reproduced.
    pub fn reference_augmentation(self) -> Option<Augment> {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => Some(Augment { pad: 4 }),
            Dataset::ImageNet16_120 => Some(Augment { pad: 2 }),
            Dataset::ImageNet1k => None,
        }
    }

    /// The dataset's byte in a pool file.
    pub(super) fn code(self) -> u8 {
        match self {
            Dataset::Cifar10 => 0,
            Dataset::Cifar100 => 1,
            Dataset::ImageNet16_120 => 2,
            Dataset::ImageNet1k => 3,
        }
    }

    pub(super) fn from_code(code: u8) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.code() == code)
    }
}

fn per_255(values: [f64; 3]) -> [f64; 3] {
    values.map(|v| v / 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_and_constants() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::from_name(d.name()).unwrap(), d);
            assert_eq!(Dataset::from_code(d.code()), Some(d));
        }
        assert_eq!(Dataset::from_code(4), None);
        assert_eq!(
            Dataset::from_name("ImageNet16-120").unwrap(),
            Dataset::ImageNet16_120
        );
        assert!(Dataset::from_name("mnist")
            .unwrap_err()
            .to_string()
            .contains("mnist"));
        assert_eq!(Dataset::ALL.map(Dataset::num_classes), [10, 100, 120, 1000]);
        assert_eq!(Dataset::Cifar10.mean()[0], 125.3 / 255.0);
        assert_eq!(Dataset::Cifar100.std()[2], 70.4 / 255.0);
        assert_eq!(Dataset::ImageNet16_120.mean()[1], 116.66 / 255.0);
        assert_eq!(Dataset::ImageNet16_120.std()[2], 65.09 / 255.0);
        assert_eq!(
            Dataset::ALL.map(Dataset::image_bytes),
            [3072, 3072, 768, 3072]
        );
    }
}
