//! End-to-end: TE-NAS on the DARTS space, from CIFAR-10 and from a folder of ImageNet JPEGs,
//! to a genotype the DARTS code reads.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const DARTS_TINY: &str = "experiments/darts-tiny.toml";

/// The run's genotype text (one seed).
fn genotype_text(store: &Path, experiment: &str) -> String {
    let path = store.join(format!(
        "results/{experiment}/latest/genotype-seed0/genotype.txt"
    ));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(op, input)` pairs of one cell's gene in the text, in order.
fn gene(text: &str, cell: &str) -> Vec<(String, usize)> {
    let start = text.find(&format!("{cell}=[")).expect("cell gene") + cell.len() + 2;
    let end = start + text[start..].find(']').expect("closing bracket");
    text[start..end]
        .split("), (")
        .map(|item| {
            let item = item.trim_matches(|c| c == '(' || c == ')');
            let (op, input) = item.split_once(", ").expect("op, input");
            (
                op.trim_matches('\'').to_string(),
                input.parse().expect("input node"),
            )
        })
        .collect()
}

/// Every step node (2..=5) reads exactly two distinct earlier nodes with real ops.
fn assert_two_inputs_per_node(text: &str) {
    for cell in ["normal", "reduce"] {
        let g = gene(text, cell);
        assert_eq!(g.len(), 8, "{cell}: {text}");
        for (step, pair) in g.chunks(2).enumerate() {
            let node = step + 2;
            assert!(
                pair[0].1 != pair[1].1,
                "{cell} node {node} reads one node twice: {text}"
            );
            for (op, input) in pair {
                assert!(*input < node, "{cell} node {node} reads node {input}");
                assert!(op != "none", "{cell} node {node} keeps a none edge");
            }
        }
    }
    assert!(
        text.contains("normal_concat=[2, 3, 4, 5]") && text.contains("reduce_concat=[2, 3, 4, 5]")
    );
}

/// The text evaluates to the DARTS namedtuple in Python, with two inputs per step node.
/// Needs python3.
fn check_with_python(text: &str) {
    let script = "import collections, sys\n\
        Genotype = collections.namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')\n\
        g = eval(sys.stdin.read(), {'Genotype': Genotype})\n\
        for cell in (g.normal, g.reduce):\n\
        \x20   assert len(cell) == 8, cell\n\
        \x20   for i in range(4):\n\
        \x20       assert all(j < i + 2 for _, j in cell[2 * i:2 * i + 2]), cell\n\
        print('ok', len(g.normal), g.reduce_concat)\n";
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    // Not skipped when python3 is missing: a skip would pass unseen (`.ci/run` installs it).
    let mut child = child.unwrap_or_else(|e| {
        panic!("python3 is needed to check that the genotype parses in Python (install it): {e}")
    });
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && text_of(&out.stdout).starts_with("ok 8 [2, 3, 4, 5]"),
        "python3 rejects the genotype:\n{text}\n{}",
        text_of(&out.stderr)
    );
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn darts_search_exports_a_genotype_and_reruns_nothing() {
    let store = tempfile::tempdir().expect("temp dir");
    let out = run_ok(tenas(store.path()).args(["run", DARTS_TINY]));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("seed 0") && stdout.contains("Genotype(normal=["),
        "{stdout}"
    );
    let genotype = genotype_text(store.path(), "darts-tiny");
    assert!(
        stdout.contains(genotype.trim()),
        "printed genotype is the exported one"
    );
    assert_two_inputs_per_node(&genotype);
    check_with_python(&genotype);
    // The genotype the tiny search finds on the test data: a changed draw, score or decision
    // shows.
    assert_eq!(
        genotype.trim(),
        "Genotype(normal=[('dil_conv_3x3', 0), ('sep_conv_5x5', 1), ('skip_connect', 0), \
         ('dil_conv_3x3', 2), ('dil_conv_3x3', 2), ('dil_conv_3x3', 3), ('max_pool_3x3', 2), \
         ('skip_connect', 3)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_3x3', 0), \
         ('dil_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), ('sep_conv_5x5', 0), \
         ('max_pool_3x3', 2), ('dil_conv_5x5', 0), ('skip_connect', 1)], \
         reduce_concat=[2, 3, 4, 5])"
    );

    let latest = store.path().join("results/darts-tiny/latest");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("genotype-seed0/genotype.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["text"].as_str().unwrap(), genotype.trim());
    assert_eq!(json["genotype"]["normal"].as_array().unwrap().len(), 8);

    // One result row; the candidates table has both cells and both phases.
    let result = read_table(&latest.join("result/seed=0/part-genotype.parquet"));
    assert_eq!(result.height(), 1);
    let candidates = read_table(&latest.join("candidates/seed=0/part-prune.parquet"));
    let phases = candidates.column("phase").unwrap().str().unwrap();
    // 196 + 112 op candidates and 24 edge candidates, one repeat each.
    let ops = (0..phases.len())
        .filter(|&i| phases.get(i) == Some("ops"))
        .count();
    assert_eq!(ops, 308);
    assert_eq!(candidates.height(), 332);

    // Op rounds 0 and 1, then the edge groups of nodes 3, 4 and 5 of each cell in turn.
    let rounds = candidates.column("round").unwrap().u64().unwrap();
    let edge_rounds: std::collections::BTreeSet<u64> = (0..rounds.len())
        .filter(|&i| phases.get(i) == Some("edges"))
        .filter_map(|i| rounds.get(i))
        .collect();
    assert_eq!(
        edge_rounds.into_iter().collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 7]
    );

    let again = run_ok(tenas(store.path()).args(["run", DARTS_TINY]));
    let log = text(&again.stderr) + &text(&again.stdout);
    assert!(log.contains("4 cached, 0 computed"), "{log}");
    assert_eq!(genotype_text(store.path(), "darts-tiny"), genotype);

    // The joint edge phase reuses every op-round unit and scores the 24 edges at once; its
    // one round matches the sequential phase's first step (same mask), so 4 of them are
    // cached too: 308 candidates + 2 origins + 4.
    let joint = run_ok(tenas(store.path()).args([
        "run",
        DARTS_TINY,
        "--set",
        "prune.edge_phase=\"joint\"",
    ]));
    let log = text(&joint.stderr) + &text(&joint.stdout);
    assert!(log.contains("units 314 cached / 21 computed"), "{log}");
    assert_two_inputs_per_node(&genotype_text(store.path(), "darts-tiny"));
}

fn read_table(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().unwrap()
}

/// `classes` folders of `per_class` small JPEGs under `root/imagenet-1k/train/`.
fn write_imagenet(root: &Path, classes: usize, per_class: usize) {
    for c in 0..classes {
        let dir = root.join(format!("imagenet-1k/train/n{:08}", 100 + c));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            write_jpeg(
                &dir.join(format!("img_{i}.JPEG")),
                (c * per_class + i) as u32,
            );
        }
    }
}

fn write_jpeg(path: &Path, salt: u32) {
    let image = image::RgbImage::from_fn(48 + salt % 16, 40, |x, y| {
        image::Rgb([(x * 5 + salt) as u8, (y * 6) as u8, (salt * 37 % 256) as u8])
    });
    image.save(path).unwrap();
}

#[test]
fn imagenet_folder_is_sampled_and_keyed_by_the_sampled_files() {
    let data = tempfile::tempdir().expect("temp dir");
    let store = tempfile::tempdir().expect("temp dir");
    write_imagenet(data.path(), 4, 20);
    let imagenet = |cmd: &mut Command| {
        cmd.env("TENAS_DATA", data.path()).args([
            "--set",
            "dataset.name=imagenet-1k",
            "--set",
            "dataset.sample=70",
        ]);
    };
    let mut run = tenas(store.path());
    run.args(["run", DARTS_TINY]);
    imagenet(&mut run);
    let out = run_ok(&mut run);
    assert!(text(&out.stdout).contains("Genotype(normal=["));
    assert_two_inputs_per_node(&genotype_text(store.path(), "darts-tiny"));

    // The pool holds 70 of the 80 images, read by content.
    let dataset_json = walkdir(store.path().to_path_buf())
        .into_iter()
        .find(|p| p.ends_with("dataset.json"))
        .expect("dataset output");
    let output: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dataset_json).unwrap()).unwrap();
    assert_eq!(output["dataset"], "imagenet-1k");
    assert_eq!(output["num_classes"], 1000);
    assert_eq!(output["images"], 70);
    let sampled: Vec<String> = output["source_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap().to_string())
        .collect();
    let all: Vec<String> = (0..4)
        .flat_map(|c| (0..20).map(move |i| format!("train/n{:08}/img_{i}.JPEG", 100 + c)))
        .collect();
    let unsampled = all
        .iter()
        .find(|f| !sampled.contains(f))
        .expect("10 left out");

    let status = |store: &Path| {
        let mut cmd = tenas(store);
        cmd.args(["status", DARTS_TINY]);
        imagenet(&mut cmd);
        text(&run_ok(&mut cmd).stdout)
    };
    let dataset_line = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("dataset"))
            .unwrap()
            .to_string()
    };
    // Changing an image outside the sample changes nothing; changing a sampled one does.
    write_jpeg(&data.path().join("imagenet-1k").join(unsampled), 999);
    assert!(dataset_line(&status(store.path())).contains("cached"));
    write_jpeg(&data.path().join("imagenet-1k").join(&sampled[0]), 999);
    assert!(!dataset_line(&status(store.path())).contains("cached"));
}
