//! Readers for the official CIFAR-10 and CIFAR-100 binary training files.
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dataset::Dataset;
use super::pool::ImagePool;
use crate::error::{Error, Result};
use crate::hashing::hex;

/// Bytes of one 32×32 RGB image, stored as three 1024-byte planes (R, G, B).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
pub const CIFAR10_DIR: &str = "cifar-10-batches-bin";
pub const CIFAR100_DIR: &str = "cifar-100-binary";
pub const CIFAR100_TRAIN: &str = "train.bin";
const CIFAR10_RECORD: usize = 1 + IMAGE_BYTES;
const CIFAR100_RECORD: usize = 2 + IMAGE_BYTES;
const CIFAR10_BATCHES: usize = 5;

/// `data_batch_1..5.bin` paths under `root` that exist, in order.
pub fn cifar10_batch_paths(root: &Path) -> Vec<PathBuf> {
    (1..=CIFAR10_BATCHES)
        .map(|i| root.join(CIFAR10_DIR).join(format!("data_batch_{i}.bin")))
        .filter(|p| p.is_file())
        .collect()
}

/// Reads whichever CIFAR-10 training batches exist (at least one).
pub fn load_cifar10(root: &Path) -> Result<ImagePool> {
    let paths = cifar10_batch_paths(root);
    if paths.is_empty() {
        return Err(Error::missing_file(
            root.join(CIFAR10_DIR),
            "no CIFAR-10 training batch (data_batch_1.bin .. data_batch_5.bin) found",
        ));
    }
    let mut pool = empty_pool(Dataset::Cifar10);
    for path in paths {
        read_records(root, &path, 1, &mut pool)?;
    }
    Ok(pool)
}

/// Reads `cifar-100-binary/train.bin`, keeping the fine labels.
pub fn load_cifar100(root: &Path) -> Result<ImagePool> {
    let path = root.join(CIFAR100_DIR).join(CIFAR100_TRAIN);
    if !path.is_file() {
        return Err(Error::missing_file(
            &path,
            "CIFAR-100 training file not found",
        ));
    }
    let mut pool = empty_pool(Dataset::Cifar100);
    read_records(root, &path, 2, &mut pool)?;
    Ok(pool)
}

fn empty_pool(dataset: Dataset) -> ImagePool {
    ImagePool {
        dataset,
        images: Vec::new(),
        labels: Vec::new(),
        n: 0,
        source_files: Vec::new(),
    }
}

/// Appends the records of one file; each record is `label_bytes` bytes (the last is the label
/// kept) and then the image.
fn read_records(root: &Path, path: &Path, label_bytes: usize, pool: &mut ImagePool) -> Result<()> {
    let bytes = fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let record = label_bytes + IMAGE_BYTES;
    debug_assert!(record == CIFAR10_RECORD || record == CIFAR100_RECORD);
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::data(
            path,
            format!(
                "size {} is not a positive multiple of the {record}-byte record",
                bytes.len()
            ),
        ));
    }
    let classes = pool.dataset.num_classes();
    pool.images.reserve(bytes.len() / record * IMAGE_BYTES);
    for (i, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = chunk[label_bytes - 1] as usize;
        if label >= classes {
            return Err(Error::data(
                path,
                format!("record {i} has label {label}, expected < {classes}"),
            ));
        }
        pool.labels.push(label as u16);
        pool.images.extend_from_slice(&chunk[label_bytes..]);
    }
    pool.n = pool.labels.len();
    pool.source_files
        .push((relative_name(root, path), hex(&Sha256::digest(&bytes))));
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::cifar10_records;
    use crate::test_support::test_data_root;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn write(root: &Path, relative: &str, bytes: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_existing_cifar10_batches_in_order() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_3.bin",
            &cifar10_records(2, 7),
        );
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_1.bin",
            &cifar10_records(3, 1),
        );
        let pool = load_cifar10(root.path()).unwrap();
        assert_eq!(pool.n, 5);
        assert_eq!(pool.labels, vec![1, 2, 3, 7, 8]);
        assert_eq!(pool.images.len(), 5 * IMAGE_BYTES);
        assert!(pool.image(3) == &cifar10_records(1, 7)[1..]);
        let names: Vec<&str> = pool.source_files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "cifar-10-batches-bin/data_batch_1.bin",
                "cifar-10-batches-bin/data_batch_3.bin"
            ]
        );
        assert_eq!(
            pool.source_files[0].1,
            hex(&Sha256::digest(cifar10_records(3, 1)))
        );
    }

    #[test]
    fn bad_files_are_errors_naming_them() {
        let root = tempfile::tempdir().unwrap();
        let err = load_cifar10(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("cifar-10-batches-bin") && err.contains("data_batch_1.bin"),
            "{err}"
        );

        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_2.bin",
            &cifar10_records(2, 0)[..5000],
        );
        let err = load_cifar10(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_2.bin") && err.contains("3073"),
            "{err}"
        );

        let mut bad_label = cifar10_records(1, 0);
        bad_label[0] = 10;
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_2.bin",
            &bad_label,
        );
        let err = load_cifar10(root.path()).unwrap_err().to_string();
        assert!(err.contains("label 10"), "{err}");

        let err = load_cifar100(root.path()).unwrap_err().to_string();
        assert!(err.contains("train.bin"), "{err}");
        write(root.path(), "cifar-100-binary/train.bin", &[0u8; 3073]);
        let err = load_cifar100(root.path()).unwrap_err().to_string();
        assert!(err.contains("train.bin") && err.contains("3074"), "{err}");
    }

    #[test]
    fn cifar100_keeps_the_fine_label() {
        let root = tempfile::tempdir().unwrap();
        let mut bytes = vec![4u8, 0]; // coarse 4, fine 0 (apple)
        bytes.extend(std::iter::repeat_n(200u8, IMAGE_BYTES));
        bytes.extend([1u8, 99]);
        bytes.extend(std::iter::repeat_n(100u8, IMAGE_BYTES));
        write(root.path(), "cifar-100-binary/train.bin", &bytes);
        let pool = load_cifar100(root.path()).unwrap();
        assert_eq!((pool.n, pool.labels.clone()), (2, vec![0, 99]));
        assert!(pool.image(1).iter().all(|&p| p == 100));
    }

    /// Pixel `p` of record `r` in the generated CIFAR-100 file: the first two bytes hold `r`
    /// (little-endian), the rest run on from it, so every record's image is its own.
    fn cifar100_pixel(record: usize, p: usize) -> u8 {
        match p {
            0 | 1 => (record as u16).to_le_bytes()[p],
            _ => (record + p) as u8,
        }
    }

    /// A full-size `train.bin` as the official archive has it: 50 000 records of (coarse label,
    /// fine label, 3072 pixels), 500 per fine class in a seeded shuffled order (not the
    /// fixture's interleaving), five fine classes per coarse one and never coarse == fine.
    /// Returns the file and the fine labels in order.
    fn official_size_cifar100(seed: u64) -> (Vec<u8>, Vec<u16>) {
        const RECORDS: usize = 50_000;
        let mut fine: Vec<u16> = (0..RECORDS).map(|r| (r % 100) as u16).collect();
        fine.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut bytes = Vec::with_capacity(RECORDS * CIFAR100_RECORD);
        for (record, &label) in fine.iter().enumerate() {
            bytes.push(((label + 1) % 20) as u8);
            bytes.push(label as u8);
            bytes.extend((0..IMAGE_BYTES).map(|p| cifar100_pixel(record, p)));
        }
        (bytes, fine)
    }

    #[test]
    fn cifar100_official_size_file_in_the_official_order() {
        let (bytes, fine) = official_size_cifar100(100);
        assert!(
            fine.iter().enumerate().any(|(r, &l)| l as usize != r % 100),
            "the generated order must not be the fixture's interleaving"
        );
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "cifar-100-binary/train.bin", &bytes);
        let mut pool = load_cifar100(root.path()).unwrap();

        assert_eq!((pool.dataset, pool.n), (Dataset::Cifar100, 50_000));
        assert_eq!(pool.images.len(), 50_000 * IMAGE_BYTES);
        assert_eq!(pool.labels, fine);
        let mut per_class = [0usize; 100];
        for &l in &pool.labels {
            per_class[l as usize] += 1;
        }
        assert!(per_class.iter().all(|&c| c == 500), "{per_class:?}");
        for record in 0..pool.n {
            let image = pool.image(record);
            assert_eq!(
                usize::from(u16::from_le_bytes([image[0], image[1]])),
                record
            );
            assert!(
                image
                    .iter()
                    .enumerate()
                    .all(|(p, &b)| b == cifar100_pixel(record, p)),
                "record {record}"
            );
        }
        assert_eq!(
            pool.source_files,
            [(
                "cifar-100-binary/train.bin".to_string(),
                hex(&Sha256::digest(&bytes))
            )]
        );

        // The dataset stage's `limit` keeps the first N records.
        let whole = pool.clone();
        pool.truncate(1234);
        assert_eq!(pool.n, 1234);
        assert_eq!(pool.labels, fine[..1234]);
        assert_eq!(pool.images, whole.images[..1234 * IMAGE_BYTES]);
        pool.truncate(60_000);
        assert_eq!(pool.n, 1234, "a limit above the size keeps them all");
    }

    #[test]
    fn real_cifar10_batch_1() {
        let pool = load_cifar10(&test_data_root()).unwrap();
        assert_eq!(
            pool.source_files[0].0,
            "cifar-10-batches-bin/data_batch_1.bin"
        );
        assert_eq!(
            pool.source_files[0].1,
            "8da035fc1631e8ce5f25904206b8993b0f3ad02a504c0584d662e806fd76c12b"
        );
        assert_eq!(pool.n, 10_000 * pool.source_files.len());
        let mut counts = [0usize; 10];
        for &l in &pool.labels[..10_000] {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
        );
    }

    #[test]
    fn real_cifar100_train_is_class_interleaved() {
        let pool = load_cifar100(&test_data_root()).unwrap();
        assert_eq!(pool.n, 10_000);
        assert_eq!(
            pool.source_files[0].1,
            "5fec12d6e68347311ca8f84c7a367c047fef0f20da69555644da4ede75748f55"
        );
        assert!(pool
            .labels
            .iter()
            .enumerate()
            .all(|(r, &l)| l as usize == r % 100));
        // Official train[0] (cattle) starts 255,255,255 and ends 10,59,79.
        let cattle = pool.image(19);
        assert_eq!(&cattle[..3], &[255, 255, 255]);
        assert_eq!(&cattle[IMAGE_BYTES - 3..], &[10, 59, 79]);
    }
}
