//! One CPU budget: several seeds at `--jobs 2` compute at most two units at a time, not
//! two stages times two units. (A file of its own: it reads process-wide counters.)

mod common;

use std::sync::atomic::Ordering;

use common::{compile, settings, stages};
use tenas_pipeline::Store;

#[test]
fn stages_and_units_share_the_jobs_budget() {
    let text = "name = \"budget\"\nseeds = [0, 1, 2]\n[source]\n[square]\nunits = 8\nround = 8\nsleep_ms = 30\n[sum]\n";
    let plan = compile(text, &[], &stages::registry(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings();
    settings.jobs = 2;
    tenas_pipeline::run(&plan, &Store::open(dir.path()).unwrap(), &settings).unwrap();
    assert_eq!(stages::MOST_UNITS_AT_ONCE.load(Ordering::SeqCst), 2);

    // One seed alone still uses the whole budget for its units.
    stages::MOST_UNITS_AT_ONCE.store(0, Ordering::SeqCst);
    let one = compile(&text.replace("[0, 1, 2]", "[7]"), &[], &stages::registry(1)).unwrap();
    tenas_pipeline::run(&one, &Store::open(dir.path()).unwrap(), &settings).unwrap();
    assert_eq!(stages::MOST_UNITS_AT_ONCE.load(Ordering::SeqCst), 2);
}
