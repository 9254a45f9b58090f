//! `[executor]`: the Slurm settings, per stage kind, and located errors.

mod common;

use std::time::Duration;

use common::stages;
use tenas_pipeline::{ExecutorConfig, ExecutorKind, Experiment};

fn config(text: &str, choice: Option<&str>) -> tenas_pipeline::Result<ExecutorConfig> {
    let exp = Experiment::parse(text, "x.toml", "x", &[])?;
    ExecutorConfig::from_experiment(&exp, choice, &stages::registry(1))
}

const STAGES: &str = "[source]\n[square]\n[sum]\n";

#[test]
fn slurm_settings_merge_per_stage_kind() {
    let text = format!(
        "{STAGES}[executor]\nkind = \"slurm\"\n[executor.slurm]\npartition = \"cpu\"\ntime = \"1:00:00\"\nretries = 5\npoll_seconds = 0.5\nextra_args = [\"--qos=low\"]\n[executor.slurm.square]\ntime = \"4:00:00\"\ncpus_per_task = 8\n"
    );
    let c = config(&text, None).unwrap();
    assert_eq!(c.kind, ExecutorKind::Slurm);
    assert_eq!(
        (c.slurm.retries, c.slurm.poll),
        (5, Duration::from_millis(500))
    );
    let square = c.slurm.options_for("square");
    assert_eq!(square.time.as_deref(), Some("4:00:00"));
    assert_eq!(square.partition.as_deref(), Some("cpu"), "inherited");
    assert_eq!(square.cpus_per_task, Some(8));
    assert_eq!(square.extra_args, Some(vec!["--qos=low".to_string()]));
    assert_eq!(c.slurm.options_for("sum").time.as_deref(), Some("1:00:00"));
    // The command line wins over the file.
    assert_eq!(
        config(&text, Some("local")).unwrap().kind,
        ExecutorKind::Local
    );
    assert_eq!(config(STAGES, None).unwrap().kind, ExecutorKind::Local);
}

#[test]
fn bad_executor_settings_are_located() {
    let err = |text: &str| {
        config(&format!("{STAGES}{text}"), None)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("[executor]\nkind = \"kubernetes\"\n"),
        "x.toml:5: [executor] kind: expected \"local\" or \"slurm\""
    );
    assert_eq!(
        err("[executor.slurm]\npartiton = \"cpu\"\n"),
        "x.toml:5: [executor] slurm.partiton: unknown param `partiton`"
    );
    assert_eq!(
        err("[executor.slurm.train]\ntime = \"1:00\"\n"),
        "x.toml:4: [executor] slurm.train: no stage kind `train` (known: source, square, sum)"
    );
    assert_eq!(
        err("[executor.slurm.square]\nshards = 4\n"),
        "x.toml:5: [executor] slurm.square.shards: stage kind `square` cannot be split into shards"
    );
    assert_eq!(
        err("[executor.slurm]\nmax_in_flight = 0\n"),
        "x.toml:5: [executor] slurm.max_in_flight: must be at least 1"
    );
    let choice = config(STAGES, Some("ssh")).unwrap_err().to_string();
    assert_eq!(choice, "unknown executor `ssh` (expected local or slurm)");
}
