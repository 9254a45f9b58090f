//! Readers for the official CIFAR binary batches, and a checksummed pool file so a stage can
//! keep the decoded images as an artifact.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::imagenet16;
use super::sample::Augment;
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
            Dataset::ImageNet16_120 => imagenet16::SIDE,
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

    fn code(self) -> u8 {
        match self {
            Dataset::Cifar10 => 0,
            Dataset::Cifar100 => 1,
            Dataset::ImageNet16_120 => 2,
            Dataset::ImageNet1k => 3,
        }
    }

    fn from_code(code: u8) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.code() == code)
    }
}

fn per_255(values: [f64; 3]) -> [f64; 3] {
    values.map(|v| v / 255.0)
}

/// Decoded training images: `images` holds `n` images of the dataset's `image_bytes()`, CHW
/// planes as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePool {
    pub dataset: Dataset,
    pub images: Vec<u8>,
    /// Class per image (CIFAR-100: the fine label).
    pub labels: Vec<u16>,
    pub n: usize,
    /// (path relative to the data root, sha256 hex) of every file read, in reading order.
    pub source_files: Vec<(String, String)>,
}

impl ImagePool {
    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.dataset.image_bytes();
        &self.images[i * len..(i + 1) * len]
    }

    /// sha256 (hex) of the pixel bytes followed by the labels as little-endian u16: the data's
    /// identity by content, whatever files it came from.
    pub fn content_sha256(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(&self.images);
        for label in &self.labels {
            hasher.update(label.to_le_bytes());
        }
        hex(&hasher.finalize())
    }
}

impl ImagePool {
    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.n);
        self.images.truncate(n * self.dataset.image_bytes());
        self.labels.truncate(n);
        self.n = n;
    }

    pub fn load(path: &std::path::Path) -> Result<ImagePool> {
        load_pool(path)
    }

    /// The pool as the samplers see it, NTK batches augmented as the dataset's default.
    pub fn view(&self) -> crate::data::sample::PoolView<'_> {
        self.view_augmented(self.dataset.augmentation())
    }

    /// The pool as the samplers see it, NTK batches augmented by `augment`.
    pub fn view_augmented(&self, augment: Option<Augment>) -> crate::data::sample::PoolView<'_> {
        let f = |v: [f64; 3]| v.map(|x| x as f32);
        crate::data::sample::PoolView {
            pixels: &self.images,
            side: self.dataset.side(),
            mean: f(self.dataset.mean()),
            std: f(self.dataset.std()),
            augment,
        }
    }

    /// The view a score config asks for: its `augment` choice, else the dataset's default.
    pub fn view_for(
        &self,
        choice: Option<crate::prune::score::Augmentation>,
    ) -> crate::data::sample::PoolView<'_> {
        use crate::prune::score::Augmentation;
        match choice {
            None => self.view(),
            Some(Augmentation::Reference) => {
                self.view_augmented(self.dataset.reference_augmentation())
            }
            Some(Augmentation::None) => self.view_augmented(None),
        }
    }
}

/// Loads the training images of `dataset` from the official layout under `root`.
pub fn load_dataset(root: &Path, dataset: Dataset) -> Result<ImagePool> {
    match dataset {
        Dataset::Cifar10 => load_cifar10(root),
        Dataset::Cifar100 => load_cifar100(root),
        Dataset::ImageNet16_120 => imagenet16::load_imagenet16_120(root, true),
        Dataset::ImageNet1k => Err(Error::Invalid(
            "ImageNet-1k is sampled from its folder by the dataset stage, never loaded whole"
                .into(),
        )),
    }
}

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
        return Err(Error::data(
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
        return Err(Error::data(&path, "CIFAR-100 training file not found"));
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

// ---- pool files --------------------------------------------------------------------------
//
// Layout (little-endian): magic "TENASPL\n", u32 version, u8 dataset, u64 n, u32 number of
// source files, each as (u32 len, name, u32 len, sha), then n images of the dataset's
// `image_bytes()` (3072 for 32×32, 768 for ImageNet16), n u16 labels,
// and finally the sha256 of everything before it.

const POOL_MAGIC: &[u8; 8] = b"TENASPL\n";
const POOL_VERSION: u32 = 1;
const SHA_LEN: usize = 32;

/// Writes the pool atomically (temporary file in the same folder, then rename).
pub fn save_pool(pool: &ImagePool, path: &Path) -> Result<()> {
    let mut bytes = Vec::with_capacity(pool.images.len() + 2 * pool.n + 256);
    bytes.extend_from_slice(POOL_MAGIC);
    bytes.extend_from_slice(&POOL_VERSION.to_le_bytes());
    bytes.push(pool.dataset.code());
    bytes.extend_from_slice(&(pool.n as u64).to_le_bytes());
    bytes.extend_from_slice(&(pool.source_files.len() as u32).to_le_bytes());
    for (name, sha) in &pool.source_files {
        for text in [name, sha] {
            bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    bytes.extend_from_slice(&pool.images);
    for label in &pool.labels {
        bytes.extend_from_slice(&label.to_le_bytes());
    }
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    write_atomically(path, &bytes)
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let context = |what: &str| format!("{what} {}", temp.display());
    let result = (|| {
        let mut file = fs::File::create(&temp).map_err(|e| Error::io(context("creating"), e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io(context("writing"), e))?;
        file.sync_all()
            .map_err(|e| Error::io(context("syncing"), e))?;
        fs::rename(&temp, path).map_err(|e| Error::io(format!("renaming to {}", path.display()), e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp); // best effort: never leave a half-written file
    }
    result
}

/// Reads a pool file written by [`save_pool`], checking its sha256 first.
pub fn load_pool(path: &Path) -> Result<ImagePool> {
    let bytes = fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let corrupt = |what: &str| Error::data(path, format!("corrupt image-pool file: {what}"));
    if bytes.len() < POOL_MAGIC.len() + SHA_LEN || &bytes[..POOL_MAGIC.len()] != POOL_MAGIC {
        return Err(corrupt("not an image-pool file (bad magic or too short)"));
    }
    let (body, stored) = bytes.split_at(bytes.len() - SHA_LEN);
    if Sha256::digest(body).as_slice() != stored {
        return Err(corrupt("sha256 mismatch"));
    }
    let mut reader = ByteReader {
        bytes: body,
        at: POOL_MAGIC.len(),
    };
    let version = reader.u32().ok_or_else(|| corrupt("truncated header"))?;
    if version != POOL_VERSION {
        return Err(corrupt(&format!(
            "version {version}, this build reads {POOL_VERSION}"
        )));
    }
    let dataset = reader
        .take(1)
        .and_then(|b| Dataset::from_code(b[0]))
        .ok_or_else(|| corrupt("unknown dataset code"))?;
    let n = reader.u64().ok_or_else(|| corrupt("truncated header"))? as usize;
    let sources = reader.u32().ok_or_else(|| corrupt("truncated header"))?;
    let mut source_files = Vec::new();
    for _ in 0..sources {
        let name = reader
            .string()
            .ok_or_else(|| corrupt("bad source-file entry"))?;
        let sha = reader
            .string()
            .ok_or_else(|| corrupt("bad source-file entry"))?;
        source_files.push((name, sha));
    }
    let images = reader
        .take(n.saturating_mul(dataset.image_bytes()))
        .ok_or_else(|| corrupt("truncated images"))?
        .to_vec();
    let labels: Vec<u16> = reader
        .take(n.saturating_mul(2))
        .ok_or_else(|| corrupt("truncated labels"))?
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    if reader.at != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(ImagePool {
        dataset,
        images,
        labels,
        n,
        source_files,
    })
}

struct ByteReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Some(slice)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::test_data_root;

    /// `count` CIFAR-10 records whose label is `(seed + i) % 10` and pixels a simple pattern.
    pub(crate) fn cifar10_records(count: usize, seed: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..count {
            bytes.push((seed as usize + i) as u8 % 10);
            bytes.extend(
                (0..IMAGE_BYTES).map(|p| (p as u8).wrapping_mul(seed).wrapping_add(i as u8)),
            );
        }
        bytes
    }

    fn write(root: &Path, relative: &str, bytes: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn dataset_names_and_constants() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::from_name(d.name()).unwrap(), d);
        }
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
    fn content_hash_ignores_the_source_files_but_not_the_labels() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_1.bin",
            &cifar10_records(3, 1),
        );
        let mut pool = load_cifar10(root.path()).unwrap();
        let hash = pool.content_sha256();
        pool.source_files.clear();
        assert_eq!(pool.content_sha256(), hash);
        pool.labels[0] = 9;
        assert_ne!(pool.content_sha256(), hash);
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

        let err = load_dataset(root.path(), Dataset::ImageNet16_120)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ImageNet16") && err.contains("train_data_batch_1"),
            "{err}"
        );
    }

    #[test]
    fn augment_choice_picks_the_reference_padding_or_none() {
        use crate::prune::score::Augmentation;
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_1.bin",
            &cifar10_records(8, 3),
        );
        let pool = load_cifar10(root.path()).unwrap();
        assert_eq!(
            pool.view_for(None).augment,
            None,
            "CIFAR as stored by default"
        );
        assert_eq!(
            pool.view_for(Some(Augmentation::Reference)).augment,
            Some(Augment { pad: 4 })
        );
        assert_eq!(pool.view_for(Some(Augmentation::None)).augment, None);
        let device = candle_core::Device::Cpu;
        let plain = pool.view_for(None).image_batch(4, 7, &device).unwrap();
        let augmented = pool
            .view_for(Some(Augmentation::Reference))
            .image_batch(4, 7, &device)
            .unwrap();
        let differ = (plain - augmented)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert!(differ.to_scalar::<f32>().unwrap() > 0.0);
        assert_eq!(
            Dataset::ImageNet16_120.reference_augmentation(),
            Dataset::ImageNet16_120.augmentation()
        );
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

    #[test]
    fn pool_file_round_trips_and_detects_corruption() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "cifar-10-batches-bin/data_batch_1.bin",
            &cifar10_records(4, 3),
        );
        let pool = load_cifar10(root.path()).unwrap();
        let path = root.path().join("pool.bin");
        save_pool(&pool, &path).unwrap();
        assert_eq!(load_pool(&path).unwrap(), pool);
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());

        let mut bytes = fs::read(&path).unwrap();
        bytes[200] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = load_pool(&path).unwrap_err().to_string();
        assert!(
            err.contains("pool.bin") && err.contains("sha256 mismatch"),
            "{err}"
        );

        fs::write(&path, b"not a pool").unwrap();
        let err = load_pool(&path).unwrap_err().to_string();
        assert!(err.contains("pool.bin") && err.contains("magic"), "{err}");
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
