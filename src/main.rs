//! `tenas`: run TE-NAS experiments as content-hashed pipelines.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tenas_pipeline::{slurm, ExecutorKind, Store, Verbosity};
use tenas_stages::report::run_report;
use tenas_stages::session::{registry, Purpose, Session, SessionRequest};

// A forward pass allocates a fresh buffer for nearly every op; glibc's malloc hands the large
// ones back to the kernel and faults them in zeroed again, which took a quarter of a gradient
// proxy's time. mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`; the -sys crate names no constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped instead of purging it 10 ms later: a proxy's next pass reuses
/// it at once. The resident size stays at the run's peak, which is what it reaches anyway.
fn keep_freed_memory() {
    // SAFETY: setting an option is always sound; mimalloc reads it at its next purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

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
    keep_freed_memory();
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
            let Session { plan, store, .. } = session(&args, None, verbosity, Purpose::Plan)?;
            print_report(tenas_pipeline::status(&plan, &store)?);
            Ok(())
        }
        Command::Explain(args) => {
            let Session { plan, store, .. } = session(&args, None, verbosity, Purpose::Plan)?;
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

/// The session `args` ask for.
fn session(
    args: &PlanArgs,
    run: Option<&RunArgs>,
    verbosity: Verbosity,
    purpose: Purpose,
) -> Result<Session> {
    let request = SessionRequest {
        file: args.file.clone(),
        set: args.set.clone(),
        seeds: args.seeds.clone().map(|s| s.0),
        device: args.device.clone(),
        store: args.store.clone(),
        jobs: run.and_then(|r| r.jobs).unwrap_or(0),
        executor: run.and_then(|r| r.executor.clone()),
        verbosity,
    };
    Ok(Session::open(&request, purpose)?)
}

fn run(args: RunArgs, verbosity: Verbosity) -> Result<()> {
    let Session {
        executor,
        settings,
        plan,
        store,
        ..
    } = session(&args.plan, Some(&args), verbosity, Purpose::Run)?;
    let record = match executor.kind {
        ExecutorKind::Local => tenas_pipeline::run(&plan, &store, &settings)?,
        ExecutorKind::Slurm => slurm::run(&plan, &store, &settings, &executor.slurm)?,
    };
    let results = record
        .results_dir(&store)
        .context("the complete run has no results folder")?;
    if verbosity != Verbosity::Quiet {
        let report = run_report(&record, &results).context("reading the run's result table")?;
        print!("{report}");
        println!("tables: {}", results.display());
    }
    Ok(())
}

/// One task of a Slurm array job, on the device kind the driver planned for.
fn worker(args: WorkerArgs, verbosity: Verbosity) -> Result<()> {
    let spec = slurm::JobDir::of_spec(&args.spec)?.read_spec()?;
    slurm::run_task(&args.spec, &spec, args.index, &registry(), verbosity)?;
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
    let store = Store::open(&args.store.store)?;
    let tolerance = tenas_stages::compare::parity::Tolerance {
        kappa: args.kappa_rtol,
        regions: args.regions_rtol,
    };
    let (report, agree) =
        tenas_stages::compare::parity::compare_runs(&store, &args.a, &args.b, tolerance)?;
    print!("{report}");
    anyhow::ensure!(
        agree,
        "runs {} and {} differ beyond the tolerance",
        args.a,
        args.b
    );
    Ok(())
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
