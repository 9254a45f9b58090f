//! `explain`, `ls` and `gc`.

mod common;

use common::{compile, node, run, stages, DEMO};
use tenas_pipeline::{explain, Area, Forget, RunStatus, Store};

#[test]
fn explain_names_what_changed() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let fresh = explain(&compile(DEMO, &[], &stages::registry(1)).unwrap(), &store).unwrap();
    assert_eq!(fresh.nodes.len(), 5);
    assert!(fresh.nodes.iter().all(|n| n.reasons == ["never ran"]));

    let first = run(store_dir.path(), DEMO, &[]);
    let same = explain(&compile(DEMO, &[], &stages::registry(1)).unwrap(), &store).unwrap();
    assert!(same.nodes.is_empty());
    assert!(same.to_string().contains("everything is cached"));

    let report = explain(
        &compile(DEMO, &["square.units=7"], &stages::registry(1)).unwrap(),
        &store,
    )
    .unwrap();
    assert_eq!(report.latest_run.as_deref(), Some(first.run_id.as_str()));
    let labels: Vec<_> = report.nodes.iter().map(|n| n.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "square[seed=0]",
            "square[seed=1]",
            "sum[seed=0]",
            "sum[seed=1]"
        ]
    );
    assert_eq!(report.nodes[0].reasons, ["param `units` 6 -> 7"]);
    assert_eq!(report.nodes[2].reasons, ["input `square` key changed"]);
    assert!(
        report
            .to_string()
            .contains("square[seed=1]: param `units` 6 -> 7"),
        "{report}"
    );

    let v2 = explain(&compile(DEMO, &[], &stages::registry(2)).unwrap(), &store).unwrap();
    assert_eq!(v2.nodes[0].reasons, ["version 1 -> 2"]);

    // A missing artifact with an unchanged key says so.
    std::fs::remove_dir_all(
        store.artifact_dir(Area::Objects, &node(&first, "source", None).id.key),
    )
    .unwrap();
    let gone = explain(&compile(DEMO, &[], &stages::registry(1)).unwrap(), &store).unwrap();
    assert_eq!(gone.nodes[0].label, "source");
    assert!(gone.nodes[0].reasons[0].contains("artifact is gone"));
}

#[test]
fn ls_lists_runs_per_experiment() {
    let store_dir = tempfile::tempdir().unwrap();
    let a = run(store_dir.path(), DEMO, &[]);
    let b = run(store_dir.path(), DEMO, &[]);
    let listing = Store::open(store_dir.path()).unwrap().ls().unwrap();
    assert_eq!(listing.experiments.len(), 1);
    let (name, runs) = &listing.experiments[0];
    assert_eq!(name, "demo");
    let ids: Vec<_> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, [a.run_id.as_str(), b.run_id.as_str()]);
    assert!(runs.iter().all(|r| r.status == RunStatus::Complete));
    assert_eq!((runs[0].nodes_computed, runs[1].nodes_computed), (5, 0));
    assert!(listing.to_string().contains(&b.run_id));
}

#[test]
fn gc_removes_only_unreferenced_artifacts() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let old = run(store_dir.path(), DEMO, &[]);
    let new = run(store_dir.path(), DEMO, &["sum.scale=3", "square.units=4"]);
    // Forget the first run: its sums and its square artifacts become unreferenced;
    // the squares' first 4 units are still used by the new run.
    std::fs::remove_file(
        store_dir
            .path()
            .join(format!("runs/demo/{}.json", old.run_id)),
    )
    .unwrap();
    // A crashed staging dir (unlocked) is garbage too.
    let stale = store_dir.path().join("tmp/deadbeef");
    std::fs::create_dir_all(stale.join("out")).unwrap();
    std::fs::write(stale.join("lock"), "").unwrap();

    let old_sum = store.artifact_dir(Area::Objects, &node(&old, "sum", Some(0)).id.key);
    let dry = store.gc(true).unwrap();
    // 2 sums + 2 squares + 2x2 units beyond the first four + the staging dir.
    assert_eq!(dry.removed.len(), 9, "{dry}");
    assert!(dry.removed.contains(&old_sum));
    assert!(
        old_sum.exists() && stale.exists(),
        "dry run deletes nothing"
    );
    assert!(dry.to_string().contains("would remove"));

    let done = store.gc(false).unwrap();
    assert_eq!(done.removed, dry.removed);
    assert!(!old_sum.exists() && !stale.exists());
    for n in &new.nodes {
        assert!(
            store.artifact_dir(Area::Objects, &n.id.key).exists(),
            "{} kept",
            n.id.name
        );
    }
    let again = run(store_dir.path(), DEMO, &["sum.scale=3", "square.units=4"]);
    assert!(again
        .nodes
        .iter()
        .all(|n| n.outcome == tenas_pipeline::Outcome::Hit));
    // Units the kept squares used survived: growing again reuses them.
    let grown = run(store_dir.path(), DEMO, &["sum.scale=3", "square.units=5"]);
    assert_eq!(node(&grown, "square", Some(0)).units.hit, 4);
    assert!(
        store.gc(false).unwrap().removed.is_empty(),
        "everything referenced now"
    );
}

#[test]
fn forget_lets_gc_free_what_only_forgotten_runs_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = run(dir.path(), DEMO, &["sum.scale=5"]);
    let new = run(dir.path(), DEMO, &[]);
    let failing = "name = \"demo\"\n[source]\n[sum]\ninputs = [\"source\"]\n";
    let plan = compile(failing, &[], &stages::registry(1)).unwrap();
    tenas_pipeline::run(&plan, &store, &common::settings()).unwrap_err();
    assert!(
        store.gc(true).unwrap().removed.is_empty(),
        "every run still holds its artifacts"
    );

    let what = |failed, keep_last, dry_run| Forget {
        failed,
        keep_last,
        dry_run,
        ..Forget::default()
    };
    let dry = store.forget(&what(true, Some(1), true)).unwrap();
    assert_eq!(dry.forgotten.len(), 2, "{dry}");
    assert!(dry.to_string().contains("would forget"), "{dry}");
    assert_eq!(
        store.ls().unwrap().experiments[0].1.len(),
        3,
        "a dry run forgets nothing"
    );

    let done = store.forget(&what(true, Some(1), false)).unwrap();
    let forgotten: Vec<(&str, RunStatus)> = done
        .forgotten
        .iter()
        .map(|(_, id, status)| (id.as_str(), *status))
        .collect();
    assert_eq!(forgotten[0], (old.run_id.as_str(), RunStatus::Complete));
    assert_eq!(forgotten[1].1, RunStatus::Failed);
    let runs = &store.ls().unwrap().experiments[0].1;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, new.run_id);
    assert!(!dir.path().join("results/demo").join(&old.run_id).exists());
    let latest = std::fs::read_link(dir.path().join("results/demo/latest")).unwrap();
    assert_eq!(latest, std::path::Path::new(&new.run_id));

    // The old run's sums (scale 5) are now garbage; gc frees them and says how much.
    let old_sum = store.artifact_dir(Area::Objects, &node(&old, "sum", Some(0)).id.key);
    let gc = store.gc(false).unwrap();
    assert_eq!(gc.removed.len(), 2, "{gc}");
    assert!(gc.bytes > 0 && !old_sum.exists());
    assert!(
        gc.to_string().contains(" B freed") || gc.to_string().contains("iB freed"),
        "{gc}"
    );

    let unknown = store.forget(&Forget {
        runs: vec!["20000101T000000.000Z-nothing".into()],
        ..Forget::default()
    });
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("no run `20000101T000000.000Z-nothing`"));
}

#[test]
fn complete_artifacts_and_their_results_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), DEMO, &[]);
    let mut files = 0;
    for area in ["objects", "units", "results"] {
        for entry in walkdir::WalkDir::new(dir.path().join(area)) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                files += 1;
                let permissions = entry.metadata().unwrap().permissions();
                assert!(
                    permissions.readonly(),
                    "{} is writable",
                    entry.path().display()
                );
            }
        }
    }
    assert!(files > 20, "{files} files checked");
}
