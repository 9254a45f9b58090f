//! Caching, invalidation, results collection and concurrency, with the test stages.

mod common;

use common::{compile, node, read, run, settings, stages, DEMO};
use tenas_pipeline::{status, Area, NodeState, Outcome, RunStatus, Store};

#[test]
fn second_run_recomputes_nothing() {
    let store = tempfile::tempdir().unwrap();
    let first = run(store.path(), DEMO, &[]);
    assert_eq!(first.status, RunStatus::Complete);
    assert_eq!(first.nodes.len(), 5, "source + 2 square + 2 sum");
    assert!(first.nodes.iter().all(|n| n.outcome == Outcome::Miss));
    assert_eq!(first.units.computed, 12);

    let second = run(store.path(), DEMO, &[]);
    assert!(second.nodes.iter().all(|n| n.outcome == Outcome::Hit));
    assert_eq!(
        (second.units.hit, second.units.computed),
        (0, 0),
        "hits skip the stage"
    );
    // Seed 0: six units over the numbers 0..5 (wrapping): 0+1+4+9+16+0.
    let sum0 = read(&store.path().join(format!(
        "results/demo/{}/sum/seed=0/part-sum.parquet",
        second.run_id
    )));
    assert_eq!(sum0.trim(), "30");
}

#[test]
fn param_change_reruns_only_downstream_and_reuses_units() {
    let store = tempfile::tempdir().unwrap();
    run(store.path(), DEMO, &[]);

    let scaled = run(store.path(), DEMO, &["sum.scale=2"]);
    assert_eq!(node(&scaled, "source", None).outcome, Outcome::Hit);
    assert_eq!(node(&scaled, "square", Some(0)).outcome, Outcome::Hit);
    assert_eq!(node(&scaled, "sum", Some(0)).outcome, Outcome::Miss);
    assert_eq!(node(&scaled, "sum", Some(1)).outcome, Outcome::Miss);

    // Growing the sample recomputes the stage but only the new units.
    let grown = run(store.path(), DEMO, &["square.units=8"]);
    let square = node(&grown, "square", Some(1));
    assert_eq!(square.outcome, Outcome::Miss);
    assert_eq!((square.units.hit, square.units.computed), (6, 2));
    assert_eq!(node(&grown, "source", None).outcome, Outcome::Hit);
}

#[test]
fn damaged_artifacts_are_detected_and_recomputed() {
    let store_dir = tempfile::tempdir().unwrap();
    let first = run(store_dir.path(), DEMO, &[]);
    let store = Store::open(store_dir.path()).unwrap();
    let sum = node(&first, "sum", Some(0));
    let square = node(&first, "square", Some(1));
    let sum_file = store
        .artifact_dir(Area::Objects, &sum.id.key)
        .join("sum.txt");
    common::damage(&sum_file, "");
    std::fs::remove_file(
        store
            .artifact_dir(Area::Objects, &square.id.key)
            .join("squares.txt"),
    )
    .unwrap();

    let plan = compile(DEMO, &[], &stages::registry(1)).unwrap();
    let report = status(&plan, &store).unwrap();
    let states: Vec<_> = report
        .nodes
        .iter()
        .map(|n| (n.label.as_str(), &n.state))
        .collect();
    assert!(
        states.contains(&(
            "sum[seed=0]",
            &NodeState::Invalid {
                file: "sum.txt".into(),
                reason: "size 0, expected 3".into()
            }
        )),
        "{states:?}"
    );
    assert!(
        report.to_string().contains("squares.txt: missing"),
        "{report}"
    );

    let second = run(store_dir.path(), DEMO, &[]);
    assert_eq!(
        node(&second, "sum", Some(0)).outcome,
        Outcome::RecomputedInvalid
    );
    assert_eq!(
        node(&second, "square", Some(1)).outcome,
        Outcome::RecomputedInvalid
    );
    assert_eq!(
        node(&second, "square", Some(1)).units.hit,
        6,
        "units were intact"
    );
    assert_eq!(node(&second, "sum", Some(1)).outcome, Outcome::Hit);
    assert_eq!(read(&sum_file).trim(), "30");
}

#[test]
fn results_are_collected_by_table_and_seed() {
    let store = tempfile::tempdir().unwrap();
    let record = run(store.path(), DEMO, &[]);
    let results = store.path().join("results/demo");
    let run_dir = results.join(&record.run_id);
    assert_eq!(
        record.results.as_deref(),
        Some(format!("results/demo/{}", record.run_id).as_str())
    );
    assert!(run_dir.join("numbers/part-source.parquet").is_file());
    for seed in [0, 1] {
        assert!(run_dir
            .join(format!("squares/seed={seed}/part-square.parquet"))
            .is_file());
        assert!(run_dir
            .join(format!("sum/seed={seed}/part-sum.parquet"))
            .is_file());
        assert_eq!(
            read(&run_dir.join(format!("square-seed{seed}/summary.txt"))),
            "6 squares\n"
        );
    }
    assert_eq!(
        std::fs::read_link(results.join("latest")).unwrap(),
        std::path::PathBuf::from(&record.run_id)
    );
    let saved = read(
        &store
            .path()
            .join(format!("runs/demo/{}.json", record.run_id)),
    );
    assert!(saved.contains("\"status\": \"complete\""));
}

#[test]
fn concurrent_runs_compute_each_key_once() {
    let store = tempfile::tempdir().unwrap();
    let text = DEMO.replace("units = 6", "units = 6\nsleep_ms = 20");
    let records: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| run(store.path(), &text, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (a, b) in records[0].nodes.iter().flat_map(|a| {
        records[1]
            .nodes
            .iter()
            .filter(move |b| b.id.key == a.id.key)
            .map(move |b| (a, b))
    }) {
        let computed = [a, b].iter().filter(|n| n.outcome != Outcome::Hit).count();
        assert_eq!(computed, 1, "{} computed {computed} times", a.id.name);
    }
    assert_eq!(records[0].units.computed + records[1].units.computed, 12);
    assert_eq!(records[0].nodes.len() + records[1].nodes.len(), 10);
}

#[test]
fn stage_errors_fail_the_run_and_are_recorded() {
    let store = tempfile::tempdir().unwrap();
    // `sum` pointed at a stage that has no squares.txt fails reading it.
    let text = "name = \"demo\"\n[source]\n[sum]\ninputs = [\"source\"]\n";
    let plan = compile(text, &[], &stages::registry(1)).unwrap();
    let err =
        tenas_pipeline::run(&plan, &Store::open(store.path()).unwrap(), &settings()).unwrap_err();
    assert!(err.to_string().starts_with("stage `sum`"), "{err}");
    let runs = Store::open(store.path()).unwrap().ls().unwrap();
    assert_eq!(runs.experiments[0].1[0].status, RunStatus::Failed);
}
