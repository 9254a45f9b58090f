//! The downsampled ImageNet 16×16 training files that NAS-Bench-201 and TE-NAS read
//! (`ImageNet16/train_data_batch_1` .. `train_data_batch_10`), and ImageNet16-120: the records
//! of classes 1..=120, labelled 0..119. Each file is a pickled dict: `data`, a uint8 numpy
//! array (N, 768) of 3×16×16 channel-major images; `labels`, a list of N ints in 1..=1000;
//! and `mean`, which is not used.
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use rayon::prelude::*;
use sha2::Sha256;

use super::dataset::{Dataset, IMAGENET16_SIDE as SIDE};
use super::pickle;
use super::pool::ImagePool;
use crate::error::{Error, Result};
use crate::hashing::hex;

/// The folder under a data root that holds the batches.
pub const IMAGENET16_DIR: &str = "ImageNet16";
/// Bytes of one image: three 16×16 planes (R, G, B).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
/// Labels in the files run from 1 to this.
pub const FILE_CLASSES: i64 = 1000;

/// The training batches and their published md5 (NAS-Bench-201's `DownsampledImageNet.py`,
/// which TE-NAS ships unchanged).
pub const TRAIN_BATCHES: [(&str, &str); 10] = [
    ("train_data_batch_1", "27846dcaa50de8e21a7d1a35f30f0e91"),
    ("train_data_batch_2", "c7254a054e0e795c69120a5727050e3f"),
    ("train_data_batch_3", "4333d3df2e5ffb114b05d2ffc19b1e87"),
    ("train_data_batch_4", "1620cdf193304f4a92677b695d70d10f"),
    ("train_data_batch_5", "348b3c2fdbb3940c4e9e834affd3b18d"),
    ("train_data_batch_6", "6e765307c242a1b3d7d5ef9139b48945"),
    ("train_data_batch_7", "564926d8cbf8fc4818ba23d2faac7564"),
    ("train_data_batch_8", "f4755871f718ccb653440b9dd0ebac66"),
    ("train_data_batch_9", "bb6dd660c38c58552125b1a92f86b5d4"),
    ("train_data_batch_10", "8f03f34ac4b42271a294f91bf480f29b"),
];

/// The training batches under `root/ImageNet16/` that exist, in order, with their md5.
pub fn batch_paths(root: &Path) -> Vec<(PathBuf, &'static str)> {
    TRAIN_BATCHES
        .iter()
        .map(|&(name, md5)| (root.join(IMAGENET16_DIR).join(name), md5))
        .filter(|(p, _)| p.is_file())
        .collect()
}

/// The names of the training batches that do not exist under `root/ImageNet16/`.
pub fn missing_batches(root: &Path) -> Vec<&'static str> {
    TRAIN_BATCHES
        .iter()
        .map(|&(name, _)| name)
        .filter(|name| !root.join(IMAGENET16_DIR).join(name).is_file())
        .collect()
}

/// Reads whichever training batches exist (at least one) and keeps ImageNet16-120's records.
/// With `verify`, each file must have its published md5.
pub fn load_imagenet16_120(root: &Path, verify: bool) -> Result<ImagePool> {
    let dataset = Dataset::ImageNet16_120;
    let paths = batch_paths(root);
    if paths.is_empty() {
        return Err(Error::missing_file(
            root.join(IMAGENET16_DIR),
            "no ImageNet16 training batch (train_data_batch_1 .. train_data_batch_10) found",
        ));
    }
    let classes = dataset.num_classes() as i64;
    let batches = paths
        .par_iter()
        .map(|(path, md5)| read_batch(path, verify.then_some(*md5), classes))
        .collect::<Result<Vec<_>>>()?;
    let kept: usize = batches.iter().map(|b| b.labels.len()).sum();
    let mut pool = ImagePool {
        dataset,
        images: Vec::with_capacity(kept * IMAGE_BYTES),
        labels: Vec::with_capacity(kept),
        n: kept,
        source_files: Vec::with_capacity(batches.len()),
    };
    for ((path, _), batch) in paths.iter().zip(batches) {
        pool.images.extend_from_slice(&batch.images);
        pool.labels.extend_from_slice(&batch.labels);
        let name = path.file_name().expect("a batch file").to_string_lossy();
        pool.source_files
            .push((format!("{IMAGENET16_DIR}/{name}"), batch.sha256));
    }
    Ok(pool)
}

/// The records of one file whose label is in 1..=`classes`, labelled from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    /// sha256 (hex) of the file.
    pub sha256: String,
}

/// Reads one batch file, checks its md5 against `expected_md5` when given, and keeps the
/// records of classes 1..=`classes`.
pub fn read_batch(path: &Path, expected_md5: Option<&str>, classes: i64) -> Result<Batch> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if let Some(expected) = expected_md5 {
        let md5 = hex(&Md5::digest(&bytes));
        if md5 != expected {
            return Err(Error::data(
                path,
                format!(
                    "md5 {md5} is not the published {expected}: not the official file (set the \
                     dataset param `verify = false` to read generated or re-packed copies)"
                ),
            ));
        }
    }
    let (images, labels) = filter_classes(&bytes, path, classes)?;
    Ok(Batch {
        images,
        labels,
        sha256: hex(&Sha256::digest(&bytes)),
    })
}

/// Decodes a batch's pickle and keeps the records of classes 1..=`classes`, labelled from 0.
fn filter_classes(bytes: &[u8], path: &Path, classes: i64) -> Result<(Vec<u8>, Vec<u16>)> {
    let bad = |what: String| Error::data(path, what);
    let pickle = pickle::parse(bytes, path)?;
    let root = pickle.root();
    let field = |key: &str| {
        pickle
            .dict_get(root, key)
            .ok_or_else(|| bad(format!("no `{key}` entry in the pickled dict")))
    };
    let data = pickle
        .ndarray(field("data")?)
        .map_err(|e| bad(format!("`data`: {e}")))?;
    let n = match data.shape.as_slice() {
        [n, IMAGE_BYTES] if data.dtype == "u1" && !data.fortran_order => *n,
        _ => {
            return Err(bad(format!(
                "`data` is a {} array of shape {:?}{}, expected uint8 (`u1`) of shape \
                 (N, {IMAGE_BYTES}): 3×{SIDE}×{SIDE} images in C order",
                data.dtype,
                data.shape,
                if data.fortran_order {
                    " in Fortran order"
                } else {
                    ""
                }
            )))
        }
    };
    if data.data.len() != n * IMAGE_BYTES {
        return Err(bad(format!(
            "`data` holds {} bytes, its shape ({n}, {IMAGE_BYTES}) needs {}",
            data.data.len(),
            n * IMAGE_BYTES
        )));
    }
    let labels_id = field("labels")?;
    let labels = pickle.items(labels_id).ok_or_else(|| {
        bad(format!(
            "`labels` is {}, expected a list",
            pickle.describe(labels_id)
        ))
    })?;
    if labels.len() != n {
        return Err(bad(format!("{n} images but {} labels", labels.len())));
    }
    let mut kept_images = Vec::new();
    let mut kept_labels = Vec::new();
    for (i, (&label, image)) in labels
        .iter()
        .zip(data.data.chunks_exact(IMAGE_BYTES))
        .enumerate()
    {
        let value = pickle
            .int(label)
            .filter(|l| (1..=FILE_CLASSES).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "record {i} has label {}, expected 1..={FILE_CLASSES}",
                    pickle.describe(label)
                ))
            })?;
        if value <= classes {
            kept_labels.push((value - 1) as u16);
            kept_images.extend_from_slice(image);
        }
    }
    Ok((kept_images, kept_labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::imagenet16_writer::{batch_pickle, write_batch, Protocol};
    use crate::data::pool::{load_pool, save_pool};

    /// The committed batches `make_fixture.py` wrote with Python and numpy: the protocol-2 one
    /// under `ImageNet16/`, the same content in the other folders.
    fn python_fixture_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imagenet16")
    }

    /// The folders of the Python fixtures: Python 3 at protocols 2, 1 and 0, and Python 2's
    /// `pickle.dump(batch, f)` (protocol 0).
    const PYTHON_FIXTURES: [&str; 4] = [
        "ImageNet16",
        "py3-protocol1",
        "py3-protocol0",
        "py2-protocol0",
    ];

    /// The fixture's labels, as `make_fixture.py` has them.
    const FIXTURE_LABELS: [u16; 6] = [1, 120, 121, 1000, 60, 2];

    /// Image `i` of the Python fixture: byte `p` is `(7 i + 3 p) % 256`.
    fn fixture_image(i: usize) -> Vec<u8> {
        (0..IMAGE_BYTES)
            .map(|p| ((7 * i + 3 * p) % 256) as u8)
            .collect()
    }

    /// `count` images whose bytes encode the image's number and labels cycling through
    /// 1..=1000 from `first_label`.
    fn generated(count: usize, first_label: u16) -> (Vec<u8>, Vec<u16>) {
        let images = (0..count)
            .flat_map(|i| (0..IMAGE_BYTES).map(move |p| (i * 31 + p) as u8))
            .collect();
        let labels = (0..count as u16)
            .map(|i| (first_label - 1 + i) % 1000 + 1)
            .collect();
        (images, labels)
    }

    fn batch_path(root: &Path, k: usize) -> PathBuf {
        let dir = root.join(IMAGENET16_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(format!("train_data_batch_{k}"))
    }

    #[test]
    fn reads_the_python_written_batch_keeping_classes_1_to_120() {
        let pool = load_imagenet16_120(&python_fixture_root(), false).unwrap();
        // Labels [1, 120, 121, 1000, 60, 2]: records 2 and 3 are outside ImageNet16-120.
        assert_eq!(pool.dataset, Dataset::ImageNet16_120);
        assert_eq!((pool.n, pool.labels.clone()), (4, vec![0, 119, 59, 1]));
        for (kept, record) in [0, 1, 4, 5].into_iter().enumerate() {
            assert_eq!(
                pool.image(kept),
                fixture_image(record).as_slice(),
                "record {record}"
            );
        }
        assert_eq!(
            pool.source_files,
            [(
                "ImageNet16/train_data_batch_1".to_string(),
                "e5e9f51661af3a566d55afdf68252dfad32d91581dfc231d9d9d71541e19b027".to_string()
            )]
        );
    }

    #[test]
    fn python_written_batches_read_the_same_under_protocols_0_1_and_2() {
        let images: Vec<u8> = [0, 1, 4, 5].into_iter().flat_map(fixture_image).collect();
        for folder in PYTHON_FIXTURES {
            let path = python_fixture_root()
                .join(folder)
                .join("train_data_batch_1");
            let batch = read_batch(&path, None, 120).unwrap();
            assert_eq!(batch.labels, [0, 119, 59, 1], "{folder}");
            assert!(batch.images == images, "{folder}: pixels differ");
        }
    }

    #[test]
    fn the_rust_writer_writes_what_python_2_pickle_writes_at_protocol_0() {
        let images: Vec<u8> = (0..6).flat_map(fixture_image).collect();
        let labels = FIXTURE_LABELS.map(i64::from);
        let written = batch_pickle(&[6, IMAGE_BYTES], &images, &labels, Protocol::Text0);
        let python = std::fs::read(
            python_fixture_root()
                .join("py2-protocol0")
                .join("train_data_batch_1"),
        )
        .unwrap();
        assert!(
            written == python,
            "the Rust writer's protocol 0 differs from Python 2's"
        );
    }

    #[test]
    fn rust_written_batches_read_the_same_under_protocols_0_1_and_2() {
        // Pixels take every byte value, so every escape is exercised at protocol 0.
        let (images, labels) = generated(300, 101);
        let expected_images = images[..20 * IMAGE_BYTES].to_vec();
        let expected_labels: Vec<u16> = (100..120).collect();
        let root = tempfile::tempdir().unwrap();
        for protocol in Protocol::ALL {
            let path = root.path().join(format!("{protocol:?}"));
            write_batch(&path, &images, &labels, protocol).unwrap();
            let batch = read_batch(&path, None, 120).unwrap();
            assert_eq!(batch.labels, expected_labels, "{protocol:?}");
            assert!(
                batch.images == expected_images,
                "{protocol:?}: pixels differ"
            );
        }
    }

    #[test]
    fn verification_rejects_a_file_without_the_published_md5() {
        let err = load_imagenet16_120(&python_fixture_root(), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train_data_batch_1")
                && err.contains("27846dcaa50de8e21a7d1a35f30f0e91")
                && err.contains("verify = false"),
            "{err}"
        );
    }

    #[test]
    fn rust_written_batches_are_read_in_order_and_filtered() {
        let root = tempfile::tempdir().unwrap();
        let (images_3, labels_3) = generated(300, 101);
        write_batch(
            &batch_path(root.path(), 3),
            &images_3,
            &labels_3,
            Protocol::Binary2,
        )
        .unwrap();
        let (images_1, labels_1) = generated(5, 118);
        write_batch(
            &batch_path(root.path(), 1),
            &images_1,
            &labels_1,
            Protocol::Text0,
        )
        .unwrap();

        let pool = load_imagenet16_120(root.path(), false).unwrap();
        // Batch 1: labels 118..=122 keep 3; batch 3: labels 101..=400 keep 101..=120.
        let expected: Vec<u16> = (117..120).chain(100..120).collect();
        assert_eq!(pool.labels, expected);
        assert_eq!(pool.n, 23);
        assert_eq!(pool.image(2), &images_1[2 * IMAGE_BYTES..3 * IMAGE_BYTES]);
        assert_eq!(pool.image(3), &images_3[..IMAGE_BYTES]);
        assert_eq!(
            pool.image(22),
            &images_3[19 * IMAGE_BYTES..20 * IMAGE_BYTES]
        );
        let names: Vec<&str> = pool.source_files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "ImageNet16/train_data_batch_1",
                "ImageNet16/train_data_batch_3"
            ]
        );
        let missing = missing_batches(root.path());
        assert_eq!(missing.len(), 8);
        assert!(
            !missing.contains(&"train_data_batch_3") && missing.contains(&"train_data_batch_10")
        );

        // A 16x16 pool survives its pool file.
        let file = root.path().join("pool.bin");
        save_pool(&pool, &file).unwrap();
        assert_eq!(load_pool(&file).unwrap(), pool);
    }

    #[test]
    fn bad_batches_are_errors_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        let err = load_imagenet16_120(root.path(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ImageNet16") && err.contains("train_data_batch_1"),
            "{err}"
        );

        let path = batch_path(root.path(), 2);
        let (images, labels) = generated(4, 1);
        let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
        let read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            let err = load_imagenet16_120(root.path(), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("train_data_batch_2"), "{err}");
            err
        };
        for protocol in Protocol::ALL {
            let pickle = |shape: &[usize], data: &[u8], labels: &[i64]| {
                batch_pickle(shape, data, labels, protocol)
            };
            let good = pickle(&[4, IMAGE_BYTES], &images, &labels);
            for cut in [1, 40, good.len() / 2, good.len() - 1] {
                let err = read(&good[..cut]);
                assert!(
                    err.contains("truncated pickle"),
                    "{protocol:?} cut at {cut}: {err}"
                );
            }
            let err = read(&pickle(&[1, 4 * IMAGE_BYTES], &images, &labels[..1]));
            assert!(
                err.contains("shape [1, 3072]") && err.contains("(N, 768)"),
                "{protocol:?}: {err}"
            );
            let err = read(&pickle(&[4, IMAGE_BYTES], &images[..IMAGE_BYTES], &labels));
            assert!(err.contains("holds 768 bytes"), "{protocol:?}: {err}");
            let err = read(&pickle(&[4, IMAGE_BYTES], &images, &labels[..3]));
            assert!(err.contains("4 images but 3 labels"), "{protocol:?}: {err}");
            for bad in [0, 1001, 1 << 40] {
                let err = read(&pickle(&[4, IMAGE_BYTES], &images, &[1, 2, bad, 3]));
                assert!(
                    err.contains(&format!("record 2 has label {bad}, expected 1..=1000")),
                    "{protocol:?}: {err}"
                );
            }
        }
        let err = read(b"\x80\x02}q\x00.");
        assert!(err.contains("no `data` entry"), "{err}");
    }
}
