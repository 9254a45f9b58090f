//! End-to-end: NAS-Bench-201 search on ImageNet16-120 from a folder of batches in the official
//! pickled layout (written by the crate's Python-2-style writer), and what a run says when the
//! folder is missing or holds files that are not the official ones.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use tenas_core::data::imagenet16::IMAGE_BYTES;
use tenas_core::data::imagenet16_writer::{write_batch, Protocol};

const IMAGENET16: &str = "experiments/nb201-imagenet16-120.toml";

/// Batch `k` under `root/ImageNet16/`, pickled at `protocol`: `count` images with labels
/// cycling through 1..=240 (half of them in ImageNet16-120) and pixels that differ per image.
fn write_generated_batch(root: &Path, k: usize, count: usize, protocol: Protocol) {
    let dir = root.join("ImageNet16");
    std::fs::create_dir_all(&dir).unwrap();
    let images: Vec<u8> = (0..count)
        .flat_map(|i| (0..IMAGE_BYTES).map(move |p| ((i * 13 + k * 71 + p * 7) % 256) as u8))
        .collect();
    let labels: Vec<u16> = (0..count).map(|i| (i % 240) as u16 + 1).collect();
    let path = dir.join(format!("train_data_batch_{k}"));
    write_batch(&path, &images, &labels, protocol).unwrap();
}

/// The tiny NB201 search, switched to ImageNet16-120 on the generated data under `data`.
fn tiny_imagenet16(cmd: &mut Command, data: &Path) {
    cmd.env("TENAS_DATA", data).args([
        "--set",
        "dataset.name=\"imagenet16-120\"",
        "--set",
        "dataset.verify=false",
    ]);
}

fn dataset_output(store: &Path) -> serde_json::Value {
    let path = walkdir(store.to_path_buf())
        .into_iter()
        .find(|p| p.ends_with("dataset.json"))
        .expect("dataset output");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn search_runs_on_generated_imagenet16_batches() {
    let data = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write_generated_batch(data.path(), 1, 240, Protocol::Text0);
    write_generated_batch(data.path(), 2, 240, Protocol::Binary2);
    let mut run = tenas(store.path());
    run.args(["run", TINY]);
    tiny_imagenet16(&mut run, data.path());
    let out = run_ok(&mut run);
    let log = text(&out.stderr) + &text(&out.stdout);
    assert!(
        log.contains("8 of 10 ImageNet16 training batches are missing"),
        "{log}"
    );
    assert!(log.contains("|+|"), "the found cell is printed:\n{log}");

    // 120 of each batch's 240 records, 16x16, labelled 0..119.
    let output = dataset_output(store.path());
    assert_eq!(output["dataset"], "imagenet16-120");
    assert_eq!(output["num_classes"], 120);
    assert_eq!(output["images"], 240);
    assert_eq!(
        output["source_files"][1][0],
        "ImageNet16/train_data_batch_2"
    );

    // The benchmark reports the found cell's accuracies, ImageNet16-120's among them.
    let result = latest_table(store.path(), "nb201-tiny", "result");
    let accuracy = result
        .column("imagenet16_120_test")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!((0.5..=48.0).contains(&accuracy), "{accuracy}");

    // Keyed by the files' content: a rewritten batch reruns the dataset stage.
    let status = |store: &Path| {
        let mut cmd = tenas(store);
        cmd.args(["status", TINY]);
        tiny_imagenet16(&mut cmd, data.path());
        let out = text(&run_ok(&mut cmd).stdout);
        out.lines()
            .find(|l| l.trim_start().starts_with("dataset"))
            .unwrap()
            .to_string()
    };
    assert!(status(store.path()).contains("cached"));
    write_generated_batch(data.path(), 2, 239, Protocol::Binary2);
    assert!(!status(store.path()).contains("cached"));
}

#[test]
fn the_experiment_without_the_folder_names_tenas_data() {
    let data = tempfile::tempdir().unwrap();
    let out = tenas(&data.path().join("store"))
        .env("TENAS_DATA", data.path())
        .args(["run", IMAGENET16])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("TENAS_DATA")
            && err.contains("ImageNet16")
            && err.contains("train_data_batch_1")
            && err.contains(&data.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn the_experiment_rejects_files_without_the_published_md5() {
    let data = tempfile::tempdir().unwrap();
    write_generated_batch(data.path(), 1, 12, Protocol::Binary2);
    let out = tenas(&data.path().join("store"))
        .env("TENAS_DATA", data.path())
        .args(["run", IMAGENET16])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("train_data_batch_1")
            && err.contains("27846dcaa50de8e21a7d1a35f30f0e91")
            && err.contains("verify = false"),
        "{err}"
    );
}

/// Python reads the Rust-written batch at each protocol as the reference does (`pickle.load(f,
/// encoding='latin1')`) and finds the same arrays; skipped, and said so, without python3 and
/// numpy.
#[test]
fn python_reads_the_rust_written_batch() {
    let has_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_numpy {
        eprintln!("SKIPPED python_reads_the_rust_written_batch: python3 with numpy not found");
        return;
    }
    let script = r#"
import pickle, sys
import numpy as np
with open(sys.argv[1], 'rb') as f:
    d = pickle.load(f, encoding='latin1')
i = np.arange(300)[:, None]
p = np.arange(768)[None, :]
assert d['data'].dtype == np.uint8 and d['data'].shape == (300, 768)
assert (d['data'] == (i * 13 + 71 + p * 7) % 256).all()
assert d['labels'] == [k % 240 + 1 for k in range(300)]
assert np.allclose(d['mean'], d['data'].mean(axis=0))
print('ok')
"#;
    for protocol in Protocol::ALL {
        let data = tempfile::tempdir().unwrap();
        write_generated_batch(data.path(), 1, 300, protocol);
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(data.path().join("ImageNet16/train_data_batch_1"))
            .output()
            .unwrap();
        assert!(
            out.status.success() && text(&out.stdout).trim() == "ok",
            "{protocol:?}: {}",
            text(&out.stderr)
        );
    }
}
