//! Decoded training images (`ImagePool`), the views the samplers draw score inputs from, and
//! the checksummed pool file a stage keeps them in as an artifact.
use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::dataset::Dataset;
use super::sample::Augmentation;
use super::sample::{Augment, PoolView};
use crate::error::{Error, Result};
use crate::hashing::hex;

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

    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.n);
        self.images.truncate(n * self.dataset.image_bytes());
        self.labels.truncate(n);
        self.n = n;
    }

    pub fn load(path: &Path) -> Result<ImagePool> {
        load_pool(path)
    }

    /// The pool as the samplers see it, NTK batches augmented as the dataset's default.
    pub fn view(&self) -> PoolView<'_> {
        self.view_augmented(self.dataset.augmentation())
    }

    /// The pool as the samplers see it, NTK batches augmented by `augment`.
    pub fn view_augmented(&self, augment: Option<Augment>) -> PoolView<'_> {
        let f = |v: [f64; 3]| v.map(|x| x as f32);
        PoolView {
            pixels: &self.images,
            side: self.dataset.side(),
            mean: f(self.dataset.mean()),
            std: f(self.dataset.std()),
            augment,
        }
    }

    /// The view a score config asks for: its `augment` choice, else the dataset's default.
    pub fn view_for(&self, choice: Option<Augmentation>) -> PoolView<'_> {
        match choice {
            None => self.view(),
            Some(Augmentation::Reference) => {
                self.view_augmented(self.dataset.reference_augmentation())
            }
            Some(Augmentation::None) => self.view_augmented(None),
        }
    }
}

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
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place, so
/// a reader never sees half a file; a failed write leaves nothing behind.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    fs::create_dir_all(parent).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads a pool file written by [`save_pool`], checking its sha256 first.
pub fn load_pool(path: &Path) -> Result<ImagePool> {
    let bytes = fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let corrupt =
        |what: &str| Error::corrupt_artifact(path, format!("corrupt image-pool file: {what}"));
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
mod tests {
    use super::*;
    use crate::data::cifar::{load_cifar10, CIFAR10_DIR};
    use crate::test_support::cifar10_records;

    /// A CIFAR-10 pool of `count` generated records, read from a file in a fresh data root
    /// (kept alive with the pool).
    fn cifar10_pool(count: usize, seed: u8) -> (tempfile::TempDir, ImagePool) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(CIFAR10_DIR);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("data_batch_1.bin"), cifar10_records(count, seed)).unwrap();
        let pool = load_cifar10(root.path()).unwrap();
        (root, pool)
    }

    #[test]
    fn content_hash_ignores_the_source_files_but_not_the_labels() {
        let (_root, mut pool) = cifar10_pool(3, 1);
        let hash = pool.content_sha256();
        pool.source_files.clear();
        assert_eq!(pool.content_sha256(), hash);
        pool.labels[0] = 9;
        assert_ne!(pool.content_sha256(), hash);
    }

    #[test]
    fn augment_choice_picks_the_reference_padding_or_none() {
        let (_root, pool) = cifar10_pool(8, 3);
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
    fn pool_file_round_trips_and_detects_corruption() {
        let (root, pool) = cifar10_pool(4, 3);
        let path = root.path().join("pool.bin");
        save_pool(&pool, &path).unwrap();
        assert_eq!(load_pool(&path).unwrap(), pool);
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
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
}
