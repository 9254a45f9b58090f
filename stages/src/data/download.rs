//! Fetches the official CIFAR archives when they are missing: download, md5 check, unpack into
//! a staging folder inside the data root, then rename into place, so the root never holds a
//! half-written file.
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use md5::{Digest, Md5};

use super::cifar::{cifar10_batch_paths, Dataset, CIFAR100_DIR, CIFAR100_TRAIN, CIFAR10_DIR};
use crate::error::{Error, Result};
use crate::hashing::hex;

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

/// The file whose absence means "not there": CIFAR-10 needs at least `data_batch_1.bin`'s
/// folder to hold one batch; CIFAR-100 needs `train.bin`.
fn is_present(root: &Path, dataset: Dataset) -> bool {
    match dataset {
        Dataset::Cifar10 => !cifar10_batch_paths(root).is_empty(),
        Dataset::Cifar100 => root.join(CIFAR100_DIR).join(CIFAR100_TRAIN).is_file(),
        Dataset::ImageNet16_120 | Dataset::ImageNet1k => false,
    }
}

fn expected_file(root: &Path, dataset: Dataset) -> PathBuf {
    match dataset {
        Dataset::Cifar100 => root.join(CIFAR100_DIR).join(CIFAR100_TRAIN),
        _ => root.join(CIFAR10_DIR).join("data_batch_1.bin"),
    }
}

/// Makes sure the training files of `dataset` are under `root`, downloading `source` if they
/// are missing and `allow_download` is set.
pub fn ensure_cifar(
    root: &Path,
    dataset: Dataset,
    allow_download: bool,
    source: &ArchiveSource,
) -> Result<()> {
    let top_dir = dataset_dir(dataset)?;
    if is_present(root, dataset) {
        return Ok(());
    }
    if !allow_download {
        return Err(Error::data(
            expected_file(root, dataset),
            format!(
                "{} training data is missing; set TENAS_DATA to a data root that holds {top_dir}/, \
                 or enable downloading (it fetches {})",
                dataset.name(),
                source.url
            ),
        ));
    }
    fs::create_dir_all(root)
        .map_err(|e| Error::io(format!("creating data root {}", root.display()), e))?;
    let staging = Staging::create(root, dataset)?;
    let archive = staging.path.join("archive.tar.gz");
    let md5 = download(&source.url, &archive)?;
    if !md5.eq_ignore_ascii_case(&source.md5) {
        return Err(Error::data(
            &source.url,
            format!(
                "md5 mismatch: got {md5}, expected {} (nothing was unpacked)",
                source.md5
            ),
        ));
    }
    let unpacked = staging.path.join("unpacked");
    unpack(&archive, &unpacked)?;
    move_into_place(&unpacked.join(top_dir), &root.join(top_dir), &source.url)?;
    if !is_present(root, dataset) {
        return Err(Error::data(
            &source.url,
            format!("archive unpacked but {top_dir}/ lacks the training files"),
        ));
    }
    Ok(())
}

/// A scratch folder inside the data root, removed when dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(root: &Path, dataset: Dataset) -> Result<Staging> {
        let path = root.join(format!(
            ".download-{}-{}",
            dataset.name(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path); // a leftover of this same process id
        fs::create_dir(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Streams `url` into `dest`, returning the md5 (hex) of what was received.
fn download(url: &str, dest: &Path) -> Result<String> {
    let response = ureq::get(url)
        .call()
        .map_err(|e| Error::data(url, format!("download failed: {e}")))?;
    let mut body = response.into_body().into_reader();
    let mut file =
        fs::File::create(dest).map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = body
            .read(&mut buffer)
            .map_err(|e| Error::io(format!("downloading {url}"), e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])
            .map_err(|e| Error::io(format!("writing {}", dest.display()), e))?;
    }
    file.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dest.display()), e))?;
    Ok(hex(&hasher.finalize()))
}

/// Unpacks a .tar.gz; `tar` refuses entries that would escape `dest`.
fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let file = fs::File::open(archive)
        .map_err(|e| Error::io(format!("opening {}", archive.display()), e))?;
    tar::Archive::new(GzDecoder::new(io::BufReader::new(file)))
        .unpack(dest)
        .map_err(|e| Error::io(format!("unpacking {}", archive.display()), e))
}

/// Renames the unpacked folder into the root; if the folder already exists (say with only the
/// metadata file), renames in just the files it lacks.
fn move_into_place(unpacked: &Path, target: &Path, url: &str) -> Result<()> {
    if !unpacked.is_dir() {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Error::data(
            url,
            format!("archive does not contain {name}/"),
        ));
    }
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to)
            .map_err(|e| Error::io(format!("moving {} into place", to.display()), e))
    };
    if !target.exists() {
        return rename(unpacked, target);
    }
    let entries = fs::read_dir(unpacked)
        .map_err(|e| Error::io(format!("listing {}", unpacked.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", unpacked.display()), e))?;
        let destination = target.join(entry.file_name());
        if !destination.exists() {
            rename(&entry.path(), &destination)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::{load_cifar10, tests::cifar10_records};
    use flate2::{write::GzEncoder, Compression};
    use std::io::BufRead;
    use std::net::TcpListener;

    fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// Serves `body` to every GET on a fresh local port; returns the URL.
    fn serve(body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream
                    .write_all(header.as_bytes())
                    .and_then(|_| stream.write_all(&body));
            }
        });
        format!("http://{address}/cifar-10-binary.tar.gz")
    }

    fn md5_hex(bytes: &[u8]) -> String {
        hex(&Md5::digest(bytes))
    }

    fn root_entries(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn downloads_verifies_and_unpacks_a_served_archive() {
        let records = cifar10_records(3, 5);
        let archive = tar_gz(&[
            ("cifar-10-batches-bin/data_batch_1.bin", records.clone()),
            (
                "cifar-10-batches-bin/batches.meta.txt",
                b"airplane\n".to_vec(),
            ),
        ]);
        let source = ArchiveSource {
            url: serve(archive.clone()),
            md5: md5_hex(&archive),
        };
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("data");
        ensure_cifar(&data_root, Dataset::Cifar10, true, &source).unwrap();
        assert_eq!(root_entries(&data_root), ["cifar-10-batches-bin"]);
        let pool = load_cifar10(&data_root).unwrap();
        assert_eq!(pool.n, 3);
        assert!(pool.image(0) == &records[1..3073]);
        // Present now: a second call neither downloads nor fails, even with download off.
        ensure_cifar(&data_root, Dataset::Cifar10, false, &source).unwrap();
    }

    #[test]
    fn a_wrong_checksum_is_an_error_that_leaves_nothing_behind() {
        let archive = tar_gz(&[(
            "cifar-10-batches-bin/data_batch_1.bin",
            cifar10_records(2, 1),
        )]);
        let source = ArchiveSource {
            url: serve(archive),
            md5: "0".repeat(32),
        };
        let root = tempfile::tempdir().unwrap();
        let err = ensure_cifar(root.path(), Dataset::Cifar10, true, &source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("md5 mismatch"), "{err}");
        assert!(
            root_entries(root.path()).is_empty(),
            "{:?}",
            root_entries(root.path())
        );
    }

    #[test]
    fn an_archive_without_the_dataset_folder_is_an_error_that_leaves_nothing_behind() {
        let archive = tar_gz(&[("other/data_batch_1.bin", cifar10_records(1, 1))]);
        let source = ArchiveSource {
            url: serve(archive.clone()),
            md5: md5_hex(&archive),
        };
        let root = tempfile::tempdir().unwrap();
        let err = ensure_cifar(root.path(), Dataset::Cifar10, true, &source)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not contain cifar-10-batches-bin"),
            "{err}"
        );
        assert!(root_entries(root.path()).is_empty());
    }

    #[test]
    fn fills_in_a_folder_that_holds_only_metadata() {
        let archive = tar_gz(&[(
            "cifar-10-batches-bin/data_batch_1.bin",
            cifar10_records(2, 1),
        )]);
        let source = ArchiveSource {
            url: serve(archive.clone()),
            md5: md5_hex(&archive),
        };
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join(CIFAR10_DIR)).unwrap();
        fs::write(
            root.path().join(CIFAR10_DIR).join("batches.meta.txt"),
            "mine",
        )
        .unwrap();
        ensure_cifar(root.path(), Dataset::Cifar10, true, &source).unwrap();
        assert_eq!(load_cifar10(root.path()).unwrap().n, 2);
        let meta =
            fs::read_to_string(root.path().join(CIFAR10_DIR).join("batches.meta.txt")).unwrap();
        assert_eq!(meta, "mine");
        assert_eq!(root_entries(root.path()), ["cifar-10-batches-bin"]);
    }

    #[test]
    fn missing_files_with_download_disabled_say_how_to_fix_it() {
        let root = tempfile::tempdir().unwrap();
        let source = ArchiveSource::official(Dataset::Cifar100).unwrap();
        let err = ensure_cifar(root.path(), Dataset::Cifar100, false, &source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cifar-100-binary/train.bin"), "{err}");
        assert!(
            err.contains("TENAS_DATA") && err.contains("enable downloading"),
            "{err}"
        );
        assert!(root_entries(root.path()).is_empty());
        let err = ensure_cifar(root.path(), Dataset::Cifar10, false, &source)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cifar-10-batches-bin/data_batch_1.bin"),
            "{err}"
        );
    }

    #[test]
    fn official_sources_carry_the_published_checksums() {
        let c10 = ArchiveSource::official(Dataset::Cifar10).unwrap();
        assert_eq!(c10.md5, "c32a1d4ab5d03f1284b67883e8d87530");
        assert!(c10.url.ends_with("cifar-10-binary.tar.gz"));
        assert!(ArchiveSource::official(Dataset::ImageNet16_120).is_err());
        assert!(ensure_cifar(
            Path::new("/nonexistent"),
            Dataset::ImageNet16_120,
            false,
            &c10
        )
        .is_err());
    }

    #[test]
    fn present_real_data_needs_no_download() {
        let source = ArchiveSource {
            url: "http://127.0.0.1:9/unused".into(),
            md5: String::new(),
        };
        let root = crate::test_support::test_data_root();
        ensure_cifar(&root, Dataset::Cifar10, false, &source).unwrap();
        ensure_cifar(&root, Dataset::Cifar100, false, &source).unwrap();
    }
}
