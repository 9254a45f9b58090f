//! `tenas`: run TE-NAS experiments as content-hashed pipelines.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tenas_pipeline::{
    slurm, ExecutorConfig, ExecutorKind, Experiment, Plan, Registry, RunRecord, Settings, Store,
    Verbosity,
};
use tenas_stages::device::{self, Device};

#[derive(Parser)]
#[command(
    name = "tenas",
    version,
    about = "Reproducible training-free neural architecture search (TE-NAS)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Only errors and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail: every unit, every cache decision.
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment: compute what is not cached, reuse what is, collect the tables.
    Run(RunArgs),
    /// Say which stages are cached and which would run.
    Status(PlanArgs),
    /// For each stage that would run, say which part of its key changed since the last run.
    Explain(PlanArgs),
    /// List experiments and runs in a store.
    Ls(StoreArgs),
    /// Remove artifacts no run record references, and say how much space that frees.
    Gc(GcArgs),
    /// Forget runs (their records, journals and results folders), so that `gc` can free what
    /// only they kept. Running runs are never forgotten.
    Forget(ForgetArgs),
    /// Compare runs: found cells per configuration, seed agreement, score noise, rank
    /// stability, correlation studies; tables (and plots) to a folder.
    Compare(CompareArgs),
    /// Check that two runs of one search (CPU and CUDA, or two machines) give the same scores
    /// within a tolerance and the same pruning decisions; fails when they do not.
    Parity(ParityArgs),
    /// Run one task of a Slurm array job (what the jobs the slurm executor submits run).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Args)]
struct WorkerArgs {
    /// The array's job spec (`<store>/slurm/jobs/<array>/spec.json`).
    spec: PathBuf,
    /// Which task of the array.
    #[arg(long, env = "SLURM_ARRAY_TASK_ID")]
    index: usize,
}

#[derive(Args)]
struct PlanArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Artifact store (default: the experiment's `store`, else `artifacts/`).
    #[arg(long, env = "TENAS_STORE")]
    store: Option<PathBuf>,
    /// Override a stage param, e.g. `--set prune.batch=16` (repeatable).
    #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
    set: Vec<String>,
    /// Seeds to run instead of the experiment's: `0,1,2` or `0..10`.
    #[arg(long, value_parser = parse_seeds)]
    seeds: Option<SeedList>,
    /// `auto`, `cpu`, `cuda` or `cuda:N` (default: the experiment's `device`).
    #[arg(long)]
    device: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// CPU budget of the whole process: stages and the units inside them together run at
    /// most N computations at once (default: the experiment's `jobs`, else one per core).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// `local` (this process) or `slurm` (sbatch jobs against a shared store); default: the
    /// experiment's `[executor] kind`, else local.
    #[arg(long, env = "TENAS_EXECUTOR")]
    executor: Option<String>,
}

#[derive(Args)]
struct StoreArgs {
    /// Artifact store.
    #[arg(long, env = "TENAS_STORE", default_value = "artifacts")]
    store: PathBuf,
}

#[derive(Args)]
struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["runs", "failed", "interrupted", "keep_last"])))]
struct ForgetArgs {
    /// Run ids.
    runs: Vec<String>,
    /// Every failed run.
    #[arg(long)]
    failed: bool,
    /// Every interrupted run whose process is gone.
    #[arg(long)]
    interrupted: bool,
    /// Per experiment, keep the newest N complete runs and forget the rest.
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// List what would be forgotten, forget nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct CompareArgs {
    /// Experiment files (every complete run of each), run ids, or results folders.
    #[arg(required = true)]
    sources: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Where the comparison's Parquet tables and plots go (default: `<store>/compare/<time>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also draw the plots (SVG and PNG).
    #[arg(long)]
    plot: bool,
    /// Configuration the paired effects are measured against: its number in the report, its
    /// label or its hash (default: the first).
    #[arg(long, value_name = "LABEL_OR_INDEX")]
    baseline: Option<String>,
}

#[derive(Args)]
struct ParityArgs {
    /// The reference run: a run id or a results folder.
    a: String,
    /// The run checked against it.
    b: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Largest relative difference of a κ value.
    #[arg(long, default_value_t = 1e-3)]
    kappa_rtol: f64,
    /// Largest relative difference of a region count.
    #[arg(long, default_value_t = 0.0)]
    regions_rtol: f64,
}

/// Seeds given on the command line.
#[derive(Clone, Debug, PartialEq)]
struct SeedList(Vec<u64>);

/// `0,1,2`, `3` or `0..10` (end exclusive).
fn parse_seeds(s: &str) -> std::result::Result<SeedList, String> {
    parse_seed_values(s).map(SeedList)
}

fn parse_seed_values(s: &str) -> std::result::Result<Vec<u64>, String> {
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| format!("bad seed `{a}`"))?,
            b.trim().parse().map_err(|_| format!("bad seed `{b}`"))?,
        );
        if a >= b {
            return Err(format!("empty seed range `{s}`"));
        }
        return Ok((a..b).collect());
    }
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("bad seed `{x}`")))
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    match dispatch(cli.command, verbosity) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, verbosity: Verbosity) -> Result<()> {
    match command {
        Command::Run(args) => run(args, verbosity),
        Command::Status(args) => {
            let Compiled { plan, store, .. } = compile(&args, 0, verbosity)?;
            print_report(tenas_pipeline::status(&plan, &store)?);
            Ok(())
        }
        Command::Explain(args) => {
            let Compiled { plan, store, .. } = compile(&args, 0, verbosity)?;
            print_report(tenas_pipeline::explain(&plan, &store)?);
            Ok(())
        }
        Command::Ls(args) => {
            print_report(Store::open(&args.store)?.ls()?);
            Ok(())
        }
        Command::Compare(args) => compare(args),
        Command::Parity(args) => parity(args),
        Command::Gc(args) => {
            print_report(Store::open(&args.store.store)?.gc(args.dry_run)?);
            Ok(())
        }
        Command::Forget(args) => {
            let store = Store::open(&args.store.store)?;
            print_report(store.forget(&tenas_pipeline::Forget {
                runs: args.runs,
                failed: args.failed,
                interrupted: args.interrupted,
                keep_last: args.keep_last,
                dry_run: args.dry_run,
            })?);
            Ok(())
        }
        Command::Worker(args) => worker(args, verbosity),
    }
}

/// Prints a report, ending it with a newline.
fn print_report(report: impl std::fmt::Display) {
    let text = report.to_string();
    if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
}

/// The stage kinds, computing on `device`.
fn registry(device: Device) -> Registry {
    let mut registry = Registry::new();
    tenas_stages::register_all(&mut registry, device);
    registry
}

/// Compiles for `status` and `explain`, which compute nothing: the device is planned, not
/// opened.
fn compile(args: &PlanArgs, jobs: usize, verbosity: Verbosity) -> Result<Compiled> {
    let exp = Experiment::load(&args.file, &args.set)?;
    compile_experiment(&exp, args, jobs, verbosity, Compute::Elsewhere)
}

/// Whether this process computes the stages (and must open the device) or only plans them.
#[derive(Clone, Copy, PartialEq)]
enum Compute {
    Here,
    Elsewhere,
}

fn compile_experiment(
    exp: &Experiment,
    args: &PlanArgs,
    jobs: usize,
    verbosity: Verbosity,
    compute: Compute,
) -> Result<Compiled> {
    let spec = args.device.clone().unwrap_or_else(|| exp.device.clone());
    let (dev, keyed) = match compute {
        Compute::Here => {
            let dev = device::open(&spec)?;
            let keyed = device::settings(&dev);
            (dev, keyed)
        }
        Compute::Elsewhere => (Device::Cpu, device::planned_settings(&spec)?),
    };
    if verbosity != Verbosity::Quiet {
        let kind = keyed["device"].as_str().unwrap_or("?");
        match compute {
            Compute::Here => eprintln!("device: {kind} (asked for `{spec}`)"),
            Compute::Elsewhere => {
                eprintln!("device: {kind} (asked for `{spec}`; planned, not opened)")
            }
        }
    }
    let settings = Settings {
        device: keyed,
        jobs,
        verbosity,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let seeds = args.seeds.clone().map(|s| s.0);
    let plan = Plan::compile(exp, &registry(dev), seeds, &settings)?;
    let store_root = args.store.clone().unwrap_or_else(|| plan.store.clone());
    let store = Store::open(store_root)?;
    Ok(Compiled {
        plan,
        store,
        settings,
    })
}

/// An experiment compiled for this process.
struct Compiled {
    plan: Plan,
    store: Store,
    settings: Settings,
}

fn run(args: RunArgs, verbosity: Verbosity) -> Result<()> {
    let exp = Experiment::load(&args.plan.file, &args.plan.set)?;
    // The executor decides whether this process computes; only stage kinds matter here.
    let executor =
        ExecutorConfig::from_experiment(&exp, args.executor.as_deref(), &registry(Device::Cpu))?;
    let compute = match executor.kind {
        ExecutorKind::Local => Compute::Here,
        ExecutorKind::Slurm => Compute::Elsewhere,
    };
    let Compiled {
        plan,
        store,
        settings,
    } = compile_experiment(&exp, &args.plan, args.jobs.unwrap_or(0), verbosity, compute)?;
    let record = match executor.kind {
        ExecutorKind::Local => tenas_pipeline::run(&plan, &store, &settings)?,
        ExecutorKind::Slurm => slurm::run(&plan, &store, &settings, &executor.slurm)?,
    };
    let results = record
        .results_dir(&store)
        .context("the complete run has no results folder")?;
    if verbosity != Verbosity::Quiet {
        print_results(&record, &results).context("reading the run's result table")?;
        println!("tables: {}", results.display());
    }
    Ok(())
}

/// One task of a Slurm array job, on the device kind the driver planned for.
fn worker(args: WorkerArgs, verbosity: Verbosity) -> Result<()> {
    let spec = slurm::JobDir::of_spec(&args.spec)?.read_spec()?;
    let registry = registry(device::for_settings(&spec.device)?);
    slurm::run_task(&args.spec, &spec, args.index, &registry, verbosity)?;
    Ok(())
}

fn compare(args: CompareArgs) -> Result<()> {
    let store = Store::open(&args.store.store)?;
    let out = args.out.unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        store.root().join("compare").join(stamp.to_string())
    });
    let text = tenas_stages::compare::compare(&tenas_stages::compare::CompareRequest {
        store: &store,
        sources: &args.sources,
        out: &out,
        plot: args.plot,
        baseline: args.baseline.as_deref(),
    })?;
    print!("{text}");
    Ok(())
}

fn parity(args: ParityArgs) -> Result<()> {
    use tenas_stages::compare::{parity, sources};
    let store = Store::open(&args.store.store)?;
    let resolve = |source: &String| sources::resolve(&store, std::slice::from_ref(source));
    let (a, b) = (resolve(&args.a)?, resolve(&args.b)?);
    let tolerance = parity::Tolerance {
        kappa: args.kappa_rtol,
        regions: args.regions_rtol,
    };
    let pairs = parity_pairs(&a, &b)?;
    let mut agree = true;
    for (x, y) in pairs {
        if let Some(label) = &x.matrix_label {
            println!("configuration {label}:");
        }
        let rows = parity::parity(x, y)?;
        print!("{}", parity::format_parity(&rows, tolerance));
        agree &= rows.iter().all(|r| r.within(tolerance));
    }
    anyhow::ensure!(
        agree,
        "runs {} and {} differ beyond the tolerance",
        args.a,
        args.b
    );
    Ok(())
}

/// The runs of two sources side by side: one run each, or a sweep's configurations matched
/// by label.
fn parity_pairs<'r>(
    a: &'r [tenas_stages::compare::sources::RunData],
    b: &'r [tenas_stages::compare::sources::RunData],
) -> Result<
    Vec<(
        &'r tenas_stages::compare::sources::RunData,
        &'r tenas_stages::compare::sources::RunData,
    )>,
> {
    let labels = |runs: &[tenas_stages::compare::sources::RunData]| -> Vec<Option<String>> {
        runs.iter().map(|r| r.matrix_label.clone()).collect()
    };
    anyhow::ensure!(
        labels(a) == labels(b),
        "the two runs do not have the same configurations ({:?} against {:?}); give one run id or results folder each",
        labels(a),
        labels(b)
    );
    anyhow::ensure!(
        a.len() == 1 || a.iter().all(|r| r.matrix_label.is_some()),
        "each source must name one run, not {}",
        a.len()
    );
    Ok(a.iter().zip(b).collect())
}

/// The found cells and their benchmark accuracies, one line per seed; DARTS genotypes; a
/// correlation study's τ and ρ. A sweep's configurations one after another, each under its
/// label (a study shared by several configurations is printed once).
fn print_results(record: &RunRecord, results: &Path) -> Result<()> {
    if record.configurations.is_empty() {
        return print_result_table(&results.join("result"), &mut Vec::new());
    }
    let mut studies = Vec::new();
    for configuration in &record.configurations {
        println!("configuration {}:", configuration.config.label);
        print_result_table(
            &results
                .join("result")
                .join(configuration.config.partition()),
            &mut studies,
        )?;
    }
    Ok(())
}

/// One configuration's results from its `result` folder (and the `correlation` folder beside
/// it); `studies` holds the study summaries already printed.
fn print_result_table(result: &Path, studies: &mut Vec<String>) -> Result<()> {
    let rows = tenas_stages::stage::bench::read_results(result)?;
    if !rows.is_empty() {
        println!("{}", tenas_stages::stage::bench::format_results(&rows));
    }
    let genotypes = tenas_stages::stage::genotype::read_genotypes(result)?;
    if !genotypes.is_empty() {
        println!(
            "{}",
            tenas_stages::stage::genotype::format_genotypes(&genotypes)
        );
    }
    let study = correlation_folder(result);
    if study.is_dir() {
        let summary = tenas_stages::stage::correlation::summarize(&study)?;
        if !studies.contains(&summary) {
            println!("{summary}");
            studies.push(summary);
        }
    }
    Ok(())
}

/// `<run>/correlation/<partition>` for `<run>/result/<partition>`.
fn correlation_folder(result: &Path) -> PathBuf {
    let mut parts: Vec<_> = result.components().collect();
    let at = parts
        .iter()
        .rposition(|c| c.as_os_str() == "result")
        .expect("a result folder");
    let tail: PathBuf = parts.split_off(at + 1).into_iter().collect();
    parts.pop();
    parts
        .into_iter()
        .collect::<PathBuf>()
        .join("correlation")
        .join(tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn seeds_parse_as_lists_and_ranges() {
        assert_eq!(parse_seed_values("0..3"), Ok(vec![0, 1, 2]));
        assert_eq!(parse_seed_values("4, 2,7"), Ok(vec![4, 2, 7]));
        assert!(parse_seed_values("3..3").is_err());
        assert!(parse_seed_values("a").is_err());
        let cli = Cli::try_parse_from(["tenas", "run", "x.toml", "--seeds", "1..5"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.plan.seeds, Some(SeedList(vec![1, 2, 3, 4])));
        Cli::command().debug_assert();
    }
}
