//! Fetches the official CIFAR archives when they are missing: download with a progress bar,
//! md5 check, unpack into a staging folder inside the data root, then rename into place, so
//! the root never holds a half-written dataset. Nothing is written before the server answers,
//! and a lock file in the root keeps two processes from fetching into it at once.
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use ureq::http::Response;
use ureq::Body;

use super::dataset::Dataset;
use super::download::{
    dataset_dir, is_present, marker_file, ArchiveSource, Provenance, PROVENANCE_FILE,
};
use super::load::source_files;
use crate::error::{Error, Result};
use crate::hashing::{file_sha256, hex};

/// Makes sure the training files of `dataset` are under `root`, downloading `source` when they
/// are missing. Says on stderr what it fetches (with a progress bar on a terminal).
pub fn ensure_cifar(root: &Path, dataset: Dataset, source: &ArchiveSource) -> Result<()> {
    let top_dir = dataset_dir(dataset)?;
    if is_present(root, dataset) {
        return Ok(());
    }
    let failed = |e: ureq::Error| {
        Error::data(
            &source.url,
            format!(
                "could not download {} into {}: {e}",
                dataset.name(),
                root.display()
            ),
        )
    };
    let mut response = request(&source.url).map_err(failed)?;
    fs::create_dir_all(root)
        .map_err(|e| Error::io(format!("creating data root {}", root.display()), e))?;
    let lock = RootLock::open(root)?;
    if !lock.try_acquire()? {
        drop(response); // another process is fetching: wait for it, then look again
        eprintln!("waiting for another tenas download into {}", root.display());
        lock.acquire()?;
        if is_present(root, dataset) {
            return Ok(());
        }
        response = request(&source.url).map_err(failed)?;
    } else if is_present(root, dataset) {
        return Ok(());
    }
    eprintln!(
        "downloading {} from {} into {}",
        dataset.name(),
        source.url,
        root.display()
    );
    let staging = Staging::create(root, dataset)?;
    let archive = staging.path.join("archive.tar.gz.part");
    let (md5, bytes) = receive(response, &source.url, &archive)?;
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
    if unpacked.join(top_dir).is_dir() {
        record_provenance(
            &unpacked,
            dataset,
            source,
            &source_files(&unpacked, dataset),
        )?;
    }
    move_into_place(
        &unpacked.join(top_dir),
        &root.join(top_dir),
        marker_file(dataset),
        &source.url,
    )?;
    if !is_present(root, dataset) {
        return Err(Error::data(
            &source.url,
            format!(
                "archive unpacked but {top_dir}/ lacks {}",
                marker_file(dataset)
            ),
        ));
    }
    eprintln!(
        "downloaded {} ({:.1} MB, md5 ok) into {}",
        dataset.name(),
        bytes as f64 / 1e6,
        root.join(top_dir).display()
    );
    Ok(())
}

/// Records `files`, the training files of `dataset` unpacked under `root` from `source`, as
/// the [`Provenance`] that keys them by their archive.
fn record_provenance(
    root: &Path,
    dataset: Dataset,
    source: &ArchiveSource,
    files: &[PathBuf],
) -> Result<()> {
    let files = files
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok((name.into_owned(), file_sha256(path)?))
        })
        .collect::<Result<_>>()?;
    let provenance = Provenance {
        archive: Provenance::archive_name(source).to_string(),
        md5: source.md5.to_lowercase(),
        files,
    };
    let path = root.join(dataset_dir(dataset)?).join(PROVENANCE_FILE);
    let text = serde_json::to_string_pretty(&provenance).expect("plain data serializes");
    fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// GET `url`: connect within 30 s, and give up when the server sends nothing for 60 s.
fn request(url: &str) -> std::result::Result<Response<Body>, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    // The md5 is of the archive as published: no transparent decompression on the way.
    agent.get(url).header("Accept-Encoding", "identity").call()
}

/// The lock file a download holds in the data root; it stays there, empty (removing it would
/// let a process waiting on the old file and a newcomer both proceed).
pub const LOCK_FILE: &str = ".tenas-download.lock";

/// An exclusive lock on [`LOCK_FILE`] (the OS releases it if the process dies).
struct RootLock {
    file: fs::File,
    path: PathBuf,
}

impl RootLock {
    fn open(root: &Path) -> Result<RootLock> {
        let path = root.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(RootLock { file, path })
    }

    fn try_acquire(&self) -> Result<bool> {
        match fs4::FileExt::try_lock(&self.file) {
            Ok(()) => Ok(true),
            Err(fs4::TryLockError::WouldBlock) => Ok(false),
            Err(fs4::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", self.path.display()), e))
            }
        }
    }

    fn acquire(&self) -> Result<()> {
        fs4::FileExt::lock(&self.file)
            .map_err(|e| Error::io(format!("locking {}", self.path.display()), e))
    }
}

/// A scratch folder inside the data root, removed when dropped. Its name is fixed per dataset,
/// so the next download (under the root's lock) removes what a killed one left.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(root: &Path, dataset: Dataset) -> Result<Staging> {
        let path = root.join(format!(".tenas-download-{}", dataset.name()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| {
                Error::io(
                    format!("removing an interrupted download {}", path.display()),
                    e,
                )
            })?;
        }
        fs::create_dir(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Streams the response body into `dest`, returning the md5 (hex) and size of what came.
fn receive(response: Response<Body>, url: &str, dest: &Path) -> Result<(String, u64)> {
    let bar = progress_bar(response.body().content_length());
    let mut body = bar.wrap_read(response.into_body().into_reader());
    let mut file =
        fs::File::create(dest).map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let read = body
            .read(&mut buffer)
            .map_err(|e| Error::io(format!("downloading {url}"), e))?;
        if read == 0 {
            break;
        }
        total += read as u64;
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])
            .map_err(|e| Error::io(format!("writing {}", dest.display()), e))?;
    }
    bar.finish_and_clear();
    file.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dest.display()), e))?;
    Ok((hex(&hasher.finalize()), total))
}

/// Bytes, rate and ETA on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(length: Option<u64>) -> ProgressBar {
    let (bar, template) = match length {
        Some(length) => (
            ProgressBar::new(length),
            "  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "  {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Unpacks a .tar.gz; `tar` refuses entries that would escape `dest`.
fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let file = fs::File::open(archive)
        .map_err(|e| Error::io(format!("opening {}", archive.display()), e))?;
    tar::Archive::new(GzDecoder::new(io::BufReader::new(file)))
        .unpack(dest)
        .map_err(|e| Error::io(format!("unpacking {}", archive.display()), e))
}

/// Renames the unpacked folder into the root in one step. If the folder already exists (say
/// with only the metadata file), renames in just the files it lacks, `marker` last: until it
/// lands the dataset counts as missing, so a kill halfway leaves a folder the next download
/// completes, never one that passes for whole.
fn move_into_place(unpacked: &Path, target: &Path, marker: &str, url: &str) -> Result<()> {
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
    let listing = |e| Error::io(format!("listing {}", unpacked.display()), e);
    let mut lacking = Vec::new();
    for entry in fs::read_dir(unpacked).map_err(listing)? {
        let name = entry.map_err(listing)?.file_name();
        if !target.join(&name).exists() {
            lacking.push(name);
        }
    }
    lacking.sort_by_key(|name| name == marker);
    for name in lacking {
        rename(&unpacked.join(&name), &target.join(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::load_cifar10;
    use crate::data::cifar::CIFAR10_DIR;
    use crate::test_support::cifar10_records;
    use crate::test_support::{md5_hex, serve, served_cifar10, tar_gz};
    use std::net::TcpListener;

    fn root_entries(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn downloads_verifies_and_unpacks_a_served_archive_once() {
        let (server, source) = served_cifar10(3);
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("data");
        ensure_cifar(&data_root, Dataset::Cifar10, &source).unwrap();
        assert_eq!(
            root_entries(&data_root),
            [LOCK_FILE, "cifar-10-batches-bin"]
        );
        let pool = load_cifar10(&data_root).unwrap();
        assert_eq!(pool.n, 3);
        assert!(pool.image(0) == &cifar10_records(3, 5)[1..3073]);
        // Present now: a second call asks the server nothing.
        ensure_cifar(&data_root, Dataset::Cifar10, &source).unwrap();
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn an_unreachable_server_is_one_error_naming_the_url_that_writes_nothing() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/cifar-10-binary.tar.gz",
            closed.local_addr().unwrap()
        );
        drop(closed);
        let source = ArchiveSource {
            url: url.clone(),
            md5: "0".repeat(32),
        };
        let root = tempfile::tempdir().unwrap();
        let data_root = root.path().join("cache").join("tenas");
        let err = ensure_cifar(&data_root, Dataset::Cifar10, &source)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&url) && err.contains("could not download cifar10"),
            "{err}"
        );
        assert!(root_entries(root.path()).is_empty());
    }

    #[test]
    fn a_wrong_checksum_is_an_error_that_leaves_nothing_behind() {
        let archive = tar_gz(&[(
            "cifar-10-batches-bin/data_batch_1.bin",
            cifar10_records(2, 1),
        )]);
        let source = ArchiveSource {
            url: serve(archive).url,
            md5: "0".repeat(32),
        };
        let root = tempfile::tempdir().unwrap();
        let err = ensure_cifar(root.path(), Dataset::Cifar10, &source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("md5 mismatch"), "{err}");
        assert_eq!(root_entries(root.path()), [LOCK_FILE]);
    }

    #[test]
    fn an_archive_without_the_dataset_folder_is_an_error_that_leaves_nothing_behind() {
        let archive = tar_gz(&[("other/data_batch_1.bin", cifar10_records(1, 1))]);
        let source = ArchiveSource {
            url: serve(archive.clone()).url,
            md5: md5_hex(&archive),
        };
        let root = tempfile::tempdir().unwrap();
        let err = ensure_cifar(root.path(), Dataset::Cifar10, &source)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not contain cifar-10-batches-bin"),
            "{err}"
        );
        assert_eq!(root_entries(root.path()), [LOCK_FILE]);
    }

    #[test]
    fn fills_in_a_folder_that_holds_only_metadata() {
        let (_server, source) = served_cifar10(2);
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join(CIFAR10_DIR)).unwrap();
        fs::write(
            root.path().join(CIFAR10_DIR).join("batches.meta.txt"),
            "mine",
        )
        .unwrap();
        ensure_cifar(root.path(), Dataset::Cifar10, &source).unwrap();
        assert_eq!(load_cifar10(root.path()).unwrap().n, 2);
        let meta =
            fs::read_to_string(root.path().join(CIFAR10_DIR).join("batches.meta.txt")).unwrap();
        assert_eq!(meta, "mine");
        assert_eq!(
            root_entries(root.path()),
            [LOCK_FILE, "cifar-10-batches-bin"]
        );
    }

    #[test]
    fn what_a_killed_download_left_is_missing_data_the_next_download_cleans_up() {
        let (server, source) = served_cifar10(4);
        let root = tempfile::tempdir().unwrap();
        // A kill mid-stream leaves the staging folder; one during the fill-in, files without
        // the marker.
        let staging = root.path().join(".tenas-download-cifar10");
        fs::create_dir_all(&staging).unwrap();
        fs::write(staging.join("archive.tar.gz.part"), b"partial").unwrap();
        fs::create_dir(root.path().join(CIFAR10_DIR)).unwrap();
        fs::write(
            root.path().join(CIFAR10_DIR).join("data_batch_2.bin"),
            cifar10_records(1, 9),
        )
        .unwrap();
        assert!(!is_present(root.path(), Dataset::Cifar10));
        ensure_cifar(root.path(), Dataset::Cifar10, &source).unwrap();
        assert!(is_present(root.path(), Dataset::Cifar10));
        assert_eq!(
            root_entries(root.path()),
            [LOCK_FILE, "cifar-10-batches-bin"]
        );
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn waits_for_another_download_into_the_same_root_and_uses_its_result() {
        let (server, source) = served_cifar10(2);
        let root = tempfile::tempdir().unwrap();
        let other = RootLock::open(root.path()).unwrap();
        other.acquire().unwrap();
        let waiting = {
            let (root, source) = (root.path().to_path_buf(), source.clone());
            std::thread::spawn(move || ensure_cifar(&root, Dataset::Cifar10, &source))
        };
        while server.requests() == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200)); // let it reach the lock and wait
                                                        // The other process finishes: the data lands, then its lock goes.
        fs::create_dir(root.path().join(CIFAR10_DIR)).unwrap();
        fs::write(
            root.path().join(CIFAR10_DIR).join("data_batch_1.bin"),
            cifar10_records(7, 3),
        )
        .unwrap();
        drop(other);
        waiting.join().unwrap().unwrap();
        assert_eq!(load_cifar10(root.path()).unwrap().n, 7);
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn official_sources_carry_the_published_checksums_and_mirror_by_file_name() {
        let c10 = ArchiveSource::official(Dataset::Cifar10).unwrap();
        assert_eq!(c10.md5, "c32a1d4ab5d03f1284b67883e8d87530");
        assert!(c10.url.ends_with("cifar-10-binary.tar.gz"));
        let c100 = ArchiveSource::official(Dataset::Cifar100).unwrap();
        assert_eq!(c100.md5, "03b5dce01913d631647c71ecec9e9cb8");
        let mirror = c100.clone().mirrored("http://127.0.0.1:8000/cifar/");
        assert_eq!(
            mirror.url,
            "http://127.0.0.1:8000/cifar/cifar-100-binary.tar.gz"
        );
        assert_eq!(mirror.md5, c100.md5);
        assert!(ArchiveSource::official(Dataset::ImageNet16_120).is_err());
        assert!(ensure_cifar(Path::new("/nonexistent"), Dataset::ImageNet16_120, &c10).is_err());
    }

    #[test]
    fn present_real_data_needs_no_download() {
        let source = ArchiveSource {
            url: "http://127.0.0.1:9/unused".into(),
            md5: String::new(),
        };
        let root = crate::test_support::test_data_root();
        ensure_cifar(&root, Dataset::Cifar10, &source).unwrap();
        ensure_cifar(&root, Dataset::Cifar100, &source).unwrap();
    }
}
