//! ImageNet-1k from its standard folder layout (`train/<wnid>/*.JPEG`). The scores need a few
//! thousand images, so the dataset stage draws a seeded sample of the file list and decodes
//! only those, each resized to 32x32 as the reference's `Resize((32, 32))` does.
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::cifar::IMAGE_BYTES;
use super::dataset::Dataset;
use super::pool::ImagePool;
use crate::error::{Error, Result};
use crate::hashing::sha256_hex;

/// The ImageNet folder under a data root (it holds `train/`).
pub const IMAGENET_DIR: &str = "imagenet-1k";
const SIDE: u32 = 32;
/// What torchvision's `ImageFolder` would pick up that this reader can decode.
const EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// One training image: its path relative to the ImageNet folder and its class index (the
/// position of its `<wnid>` folder in sorted order, as `ImageFolder` numbers classes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    pub relative: String,
    pub class: u16,
}

/// Every training image under `folder/train`, sorted by class folder, then file name.
pub fn list_train(folder: &Path) -> Result<Vec<ImageFile>> {
    let train = folder.join("train");
    let mut classes: Vec<PathBuf> = read_dir_sorted(&train)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(
            &train,
            "no class folders (expected train/<wnid>/*.JPEG)",
        ));
    }
    let mut files = Vec::new();
    for (class, dir) in classes.iter().enumerate() {
        let class = u16::try_from(class)
            .map_err(|_| Error::data(&train, "more than 65535 class folders"))?;
        let wnid = dir.file_name().expect("listed entry").to_string_lossy();
        for path in read_dir_sorted(dir)? {
            let is_image = path.extension().is_some_and(|e| {
                EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
            });
            if is_image && path.is_file() {
                let name = path.file_name().expect("listed entry").to_string_lossy();
                files.push(ImageFile {
                    relative: format!("train/{wnid}/{name}"),
                    class,
                });
            }
        }
    }
    if files.is_empty() {
        return Err(Error::data(
            &train,
            "no .JPEG/.jpg/.png images in the class folders",
        ));
    }
    Ok(files)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    paths.sort();
    Ok(paths)
}

/// `count` files (all of them when there are fewer) drawn without replacement with `seed`,
/// in listing order.
pub fn sample(files: &[ImageFile], count: usize, seed: u64) -> Vec<&ImageFile> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picks = index::sample(&mut rng, files.len(), count.min(files.len())).into_vec();
    picks.sort_unstable();
    picks.into_iter().map(|i| &files[i]).collect()
}

/// `(relative path, sha256)` of the sampled files: the sample's identity by content.
pub fn sample_digests(folder: &Path, count: usize, seed: u64) -> Result<Vec<(String, String)>> {
    let files = list_train(folder)?;
    sample(&files, count, seed)
        .par_iter()
        .map(|f| {
            let bytes = read(folder, f)?;
            Ok((f.relative.clone(), sha256_hex(&bytes)))
        })
        .collect()
}

fn read(folder: &Path, file: &ImageFile) -> Result<Vec<u8>> {
    let path = folder.join(&file.relative);
    std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Decodes an image and resizes it to 32x32 RGB, as three planes (the pool's layout).
/// The triangle filter widens with the scale factor: PIL's antialiased bilinear resize.
pub fn decode_32(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let image = image::load_from_memory(bytes)
        .map_err(|e| Error::data(path, format!("cannot decode image: {e}")))?
        .to_rgb8();
    let small = image::imageops::resize(&image, SIDE, SIDE, FilterType::Triangle);
    let plane = (SIDE * SIDE) as usize;
    let mut planes = vec![0u8; IMAGE_BYTES];
    for (i, pixel) in small.pixels().enumerate() {
        for c in 0..3 {
            planes[c * plane + i] = pixel[c];
        }
    }
    Ok(planes)
}

/// The seeded sample of `count` training images under `folder`, decoded and resized.
pub fn load_sample(folder: &Path, count: usize, seed: u64) -> Result<ImagePool> {
    let files = list_train(folder)?;
    let picked = sample(&files, count, seed);
    let decoded = picked
        .par_iter()
        .map(|f| {
            let bytes = read(folder, f)?;
            let planes = decode_32(&bytes, &folder.join(&f.relative))?;
            Ok((planes, sha256_hex(&bytes)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut images = Vec::with_capacity(picked.len() * IMAGE_BYTES);
    let mut source_files = Vec::with_capacity(picked.len());
    for (f, (planes, sha)) in picked.iter().zip(decoded) {
        images.extend_from_slice(&planes);
        source_files.push((f.relative.clone(), sha));
    }
    Ok(ImagePool {
        dataset: Dataset::ImageNet1k,
        images,
        labels: picked.iter().map(|f| f.class).collect(),
        n: picked.len(),
        source_files,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A train/ folder of `classes` x `per_class` JPEGs of different sizes; pixel values
    /// encode the class so a decoded image can be traced back.
    pub(crate) fn write_folder(root: &Path, classes: usize, per_class: usize) {
        for c in 0..classes {
            let dir = root.join("train").join(format!("n{:08}", 1000 + c));
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let (w, h) = (40 + 7 * i as u32, 30 + 5 * c as u32);
                let img = image::RgbImage::from_fn(w, h, |x, _| {
                    image::Rgb([(40 * c) as u8, (x * 255 / w) as u8, 200])
                });
                img.save(dir.join(format!("n{:08}_{i}.JPEG", 1000 + c)))
                    .unwrap();
            }
        }
        std::fs::write(root.join("train").join("README.txt"), "not a class").unwrap();
    }

    #[test]
    fn lists_classes_in_order_and_samples_by_seed() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 3, 4);
        let files = list_train(dir.path()).unwrap();
        assert_eq!(files.len(), 12);
        assert_eq!(files[0].relative, "train/n00001000/n00001000_0.JPEG");
        assert_eq!(files[11].class, 2);
        let a = sample(&files, 5, 7);
        assert_eq!(a.len(), 5);
        assert_eq!(a, sample(&files, 5, 7));
        assert_ne!(a, sample(&files, 5, 8));
        assert_eq!(sample(&files, 50, 7).len(), 12);
    }

    #[test]
    fn decodes_only_the_sample_at_32x32() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 3, 4);
        let pool = load_sample(dir.path(), 6, 1).unwrap();
        assert_eq!((pool.n, pool.images.len()), (6, 6 * IMAGE_BYTES));
        let digests = sample_digests(dir.path(), 6, 1).unwrap();
        assert_eq!(pool.source_files, digests);
        for i in 0..pool.n {
            let class = pool.labels[i] as usize;
            assert!(pool.source_files[i]
                .0
                .contains(&format!("n{:08}", 1000 + class)));
            // Red is flat per class and blue flat everywhere, through JPEG and resizing.
            let red = pool.image(i)[..1024].iter().map(|&v| v as f64).sum::<f64>() / 1024.0;
            assert!(
                (red - 40.0 * class as f64).abs() < 4.0,
                "image {i}: red {red}"
            );
            let blue = pool.image(i)[2048..].iter().map(|&v| v as f64).sum::<f64>() / 1024.0;
            assert!((blue - 200.0).abs() < 4.0, "image {i}: blue {blue}");
        }
    }

    #[test]
    fn errors_name_the_folder_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = list_train(dir.path()).unwrap_err().to_string();
        assert!(err.contains("train"), "{err}");
        write_folder(dir.path(), 1, 2);
        let bad = dir.path().join("train/n00001000/n00001000_1.JPEG");
        std::fs::write(&bad, b"not a jpeg").unwrap();
        let err = load_sample(dir.path(), 2, 0).unwrap_err().to_string();
        assert!(
            err.contains("n00001000_1.JPEG") && err.contains("decode"),
            "{err}"
        );
    }
}
