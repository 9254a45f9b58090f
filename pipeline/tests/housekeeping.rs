//! `explain`, `ls` and `gc`.

mod common;

use common::{compile, node, run, stages, DEMO};
use tenas_pipeline::{explain, Area, RunStatus, Store};

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
    std::fs::remove_dir_all(store.artifact_dir(Area::Objects, &node(&first, "source", None).key))
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

    let old_sum = store.artifact_dir(Area::Objects, &node(&old, "sum", Some(0)).key);
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
            store.artifact_dir(Area::Objects, &n.key).exists(),
            "{} kept",
            n.name
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
