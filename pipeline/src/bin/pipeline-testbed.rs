//! Test harness binary: runs an experiment with the small test stages, so tests can
//! kill a real process mid-run. Usage: `pipeline-testbed EXPERIMENT [--jobs N] [--set S.K=V]...`
//! The store is the experiment's `store`, relative to the working directory.

#[path = "../../tests/common/stages.rs"]
mod stages;

use std::path::PathBuf;

use tenas_pipeline::{run, Experiment, Plan, Settings, Store, Verbosity};

fn main() {
    if let Err(e) = try_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn try_main() -> tenas_pipeline::Result<()> {
    let mut args = std::env::args().skip(1);
    let experiment = PathBuf::from(args.next().ok_or_else(|| {
        tenas_pipeline::Error::custom("usage: pipeline-testbed EXPERIMENT [--jobs N] [--set S.K=V]")
    })?);
    let mut jobs = 0;
    let mut overrides = Vec::new();
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| tenas_pipeline::Error::custom(format!("{arg} needs a value")))?;
        match arg.as_str() {
            "--jobs" => jobs = value.parse().map_err(tenas_pipeline::Error::stage)?,
            "--set" => overrides.push(value),
            _ => {
                return Err(tenas_pipeline::Error::custom(format!(
                    "unknown argument {arg}"
                )))
            }
        }
    }
    let exp = Experiment::load(&experiment, &overrides)?;
    let settings = Settings {
        device: serde_json::json!({ "device": "cpu" }),
        jobs,
        verbosity: Verbosity::Quiet,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let plan = Plan::compile(&exp, &stages::registry(1), None, &settings)?;
    let store = Store::open(&exp.store)?;
    let record = run(&plan, &store, &settings)?;
    println!("{}", record.run_id);
    Ok(())
}
