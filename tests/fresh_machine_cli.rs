//! A fresh machine: no `TENAS_DATA`, no `TENAS_NB201`, `HOME` an empty folder, CIFAR-10 served
//! by a local HTTP server in place of the official site (`TENAS_DOWNLOAD_MIRROR`, with the md5
//! of the generated archive). The tiny search must download once, key the data by content and
//! leave nothing half-written when killed or offline.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use md5::{Digest, Md5};

/// A CIFAR-10 archive in the official layout: one batch of `records` pseudo-random images.
fn cifar10_archive(records: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    };
    let mut batch = Vec::with_capacity(records * 3073);
    for i in 0..records {
        batch.push((i % 10) as u8);
        batch.extend((0..3072).map(|_| next()));
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in [
        ("cifar-10-batches-bin/data_batch_1.bin", batch),
        (
            "cifar-10-batches-bin/batches.meta.txt",
            b"airplane\n".to_vec(),
        ),
    ] {
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

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves one archive under any path; while `stall` is set it sends half of it and then holds
/// the connection open, as a server that stops answering mid-download.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
    stall: Arc<AtomicBool>,
}

impl Server {
    fn start(archive: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/cifar", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let stall = Arc::new(AtomicBool::new(false));
        let (count, stalling) = (requests.clone(), stall.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                read_request(&stream);
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    archive.len()
                );
                let body = if stalling.load(Ordering::SeqCst) {
                    &archive[..archive.len() / 2]
                } else {
                    &archive[..]
                };
                let _ = stream
                    .write_all(header.as_bytes())
                    .and_then(|_| stream.write_all(body))
                    .and_then(|_| stream.flush());
                held.push(stream); // a stalled response never ends; closing is the client's
            }
        });
        Server {
            base,
            requests,
            stall,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn read_request(stream: &TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
}

/// `tenas` as a new user runs it: `HOME` is `home`, nothing else set but the download hook.
fn fresh(home: &Path, store: &Path, mirror: &str, md5: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenas"));
    cmd.current_dir(repo())
        .env("HOME", home)
        .env("TENAS_STORE", store)
        .env("TENAS_DOWNLOAD_MIRROR", mirror)
        .env("TENAS_DOWNLOAD_MD5", md5)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("TENAS_DATA")
        .env_remove("TENAS_NB201");
    cmd
}

/// The folder under `home` where tenas put `cifar-10-batches-bin/` (the user cache's `tenas`).
fn data_root_under(home: &Path) -> Option<PathBuf> {
    walkdir(home.to_path_buf())
        .into_iter()
        .find(|p| p.ends_with("cifar-10-batches-bin/data_batch_1.bin"))
        .map(|p| p.parent().unwrap().parent().unwrap().to_path_buf())
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every manifest in the store (stage artifacts and units): rewritten if anything reran.
fn all_manifests(store: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = walkdir(store.to_path_buf())
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_fresh_machine_downloads_once_finds_a_cell_and_recomputes_nothing_on_a_second_run() {
    let (home, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let archive = cifar10_archive(300);
    let md5 = md5_hex(&archive);
    let server = Server::start(archive);
    let run = || fresh(home.path(), store.path(), &server.base, &md5);

    let first = run_ok(run().args(["run", TINY]));
    let (stdout, stderr) = (text(&first.stdout), text(&first.stderr));
    assert!(
        stdout.contains("found cell") && stdout.contains("|+|"),
        "{stdout}"
    );
    assert!(stderr.contains("downloading cifar10"), "{stderr}");
    assert_eq!(server.requests(), 1);
    let root = data_root_under(home.path()).expect("CIFAR-10 landed under HOME");
    assert!(root.ends_with("tenas"), "{}", root.display());
    assert_eq!(
        names(&root),
        [".tenas-download.lock", "cifar-10-batches-bin"]
    );

    let manifests = all_manifests(store.path());
    let second = run_ok(run().args(["run", TINY]));
    assert_eq!(server.requests(), 1, "the second run downloaded again");
    assert!(!text(&second.stderr).contains("downloading"));
    assert_eq!(found_cell(&text(&second.stdout)), found_cell(&stdout));
    assert_eq!(
        manifests,
        all_manifests(store.path()),
        "an artifact was recomputed"
    );
    let status = text(&run_ok(run().args(["status", TINY])).stdout);
    assert!(!status.contains("would run"), "{status}");
}

/// The result line of seed 0: the found cell and its accuracies.
fn found_cell(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.contains("|+|"))
        .expect("a found cell")
        .to_string()
}

/// The folder under `home` holding tenas's download lock: the data root it chose.
fn lock_folder_under(home: &Path) -> PathBuf {
    walkdir(home.to_path_buf())
        .into_iter()
        .find(|p| p.ends_with(".tenas-download.lock"))
        .expect("a download began under HOME")
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn a_killed_download_leaves_no_partial_data_and_the_next_run_completes() {
    let (home, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let archive = cifar10_archive(300);
    let md5 = md5_hex(&archive);
    let server = Server::start(archive);
    server.stall.store(true, Ordering::SeqCst);

    let mut child = fresh(home.path(), store.path(), &server.base, &md5)
        .args(["run", TINY, "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let receiving = || {
        walkdir(home.path().to_path_buf()).iter().any(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.len() > 0) && p.ends_with("archive.tar.gz.part")
        })
    };
    while !receiving() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no download started"
        );
        assert!(child.try_wait().unwrap().is_none(), "tenas ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Only the lock file and the staging folder, both under temporary names: no dataset, no
    // archive in place, no store.
    let root = lock_folder_under(home.path());
    assert!(root.ends_with("tenas"), "{}", root.display());
    let left = names(&root);
    assert!(
        left.iter().all(|n| n.starts_with(".tenas-download")),
        "{left:?}"
    );
    assert!(data_root_under(home.path()).is_none());

    server.stall.store(false, Ordering::SeqCst);
    let out = run_ok(fresh(home.path(), store.path(), &server.base, &md5).args(["run", TINY]));
    assert!(text(&out.stdout).contains("|+|"));
    assert_eq!(server.requests(), 2);
    assert_eq!(
        names(&root),
        [".tenas-download.lock", "cifar-10-batches-bin"],
        "the interrupted download's staging folder was not cleaned"
    );
}

#[test]
fn offline_with_no_data_is_one_clear_error_that_writes_nothing() {
    let (home, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}/cifar", closed.local_addr().unwrap());
    drop(closed);
    let out = fresh(
        home.path(),
        &store.path().join("store"),
        &mirror,
        &"0".repeat(32),
    )
    .args(["run", TINY])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains(&format!("{mirror}/cifar-10-binary.tar.gz"))
            && errors[0].contains("TENAS_DATA")
            && errors[0].contains("stage `dataset`"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(names(home.path()).is_empty(), "{:?}", names(home.path()));
}
