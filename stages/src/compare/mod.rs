//! `tenas compare`: seeds and configurations side by side (accuracy with bootstrap intervals,
//! rank and regret in the benchmark, paired effects against a baseline), score noise, rank
//! stability and plots, read from the runs' Parquet tables.
pub mod datasets;
pub mod outcome;
pub mod paired;
pub mod parity;
#[cfg(feature = "plot")]
pub mod plot;
pub mod published;
pub mod sources;
pub mod standing;
pub mod study;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tenas_pipeline::Store;

use crate::error::{Error, Result};
use crate::stage::bench::TABLE_ENV;
use crate::table::Columns;
use datasets::DATASETS;
use outcome::{few_seeds_note, interval_text, is_marked, Outcome, LEVEL, RESAMPLES};
use paired::PairedEffect;
use standing::Standing;
use study::Study;
use summary::{ConfigRuns, EdgeAgreement, RankAgreement, ScoreNoise};
use tenas_core::bench::nb201::Nb201Table;

/// What to compare and where the outputs go.
pub struct CompareRequest<'a> {
    pub store: &'a Store,
    /// Experiment files, run ids or results folders.
    pub sources: &'a [String],
    /// Folder for the Parquet tables and plots.
    pub out: &'a Path,
    pub plot: bool,
    /// The configuration paired effects are measured against: a 1-based number, label or
    /// configuration hash (default: the first).
    pub baseline: Option<&'a str>,
}

/// Everything computed for one configuration.
struct ConfigReport {
    runs: ConfigRuns,
    /// One per found cell, in `runs.seeds` order.
    standings: Vec<Standing>,
    /// One per NB201 dataset; none without found cells.
    outcomes: Vec<Outcome>,
    edges: Vec<EdgeAgreement>,
    noise: Vec<ScoreNoise>,
    noise_first_round: Vec<ScoreNoise>,
    ranks: Vec<RankAgreement>,
}

/// Configurations with found cells against a baseline.
struct Paired<'a> {
    configs: Vec<&'a ConfigRuns>,
    baseline: usize,
    effects: Vec<PairedEffect>,
}

/// Runs the comparison, writes its tables (and plots) to `out`, returns the terminal text.
pub fn compare(req: &CompareRequest<'_>) -> Result<String> {
    if req.plot && !cfg!(feature = "plot") {
        return Err(Error::invalid(
            "--plot needs a tenas built with the `plot` feature (on by default)",
        ));
    }
    let runs = sources::resolve(req.store, req.sources)?;
    let groups = summary::group(&runs)?;
    let table = if groups.iter().any(|g| !g.seeds.is_empty()) {
        let set = std::env::var_os(TABLE_ENV).map(PathBuf::from);
        Some(standing::find_table(set, &runs)?)
    } else {
        None
    };
    let reports = groups
        .into_iter()
        .map(|runs| config_report(runs, table.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let searched: Vec<&ConfigReport> = reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .collect();
    let paired = pair_with_baseline(&searched, req.baseline)?;
    std::fs::create_dir_all(req.out)
        .map_err(|e| Error::io(format!("creating {}", req.out.display()), e))?;
    write_tables(req.out, &reports, &paired)?;
    let studies = study::studies(&runs)?;
    let mut text = String::new();
    if let Some(table) = &table {
        text += &format_found_cells(&searched, table);
    }
    if paired.configs.len() > 1 {
        text += &paired::format_paired(&paired.configs, paired.baseline, &paired.effects);
    }
    text += &format_report(&reports, &studies);
    if req.plot {
        #[cfg(feature = "plot")]
        let files = plot::draw_plots(req.out, &reports, &studies, table.as_ref())?;
        #[cfg(not(feature = "plot"))]
        let files: Vec<PathBuf> = Vec::new();
        text += "\nplots:\n";
        for f in files {
            let _ = writeln!(text, "  {}", f.display());
        }
    }
    let _ = writeln!(text, "\ntables: {}", req.out.display());
    Ok(text)
}

fn config_report(runs: ConfigRuns, table: Option<&Nb201Table>) -> Result<ConfigReport> {
    let standings = match table {
        Some(table) => runs
            .seeds
            .iter()
            .map(|row| standing::standing(table, row))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let (noise, noise_first_round) = summary::score_noise(&runs.candidates);
    Ok(ConfigReport {
        outcomes: outcome::outcomes(&runs.seeds, &standings)?,
        standings,
        edges: summary::edge_agreement(&runs.seeds)?,
        ranks: summary::rank_stability(&runs.candidates),
        noise,
        noise_first_round,
        runs,
    })
}

fn pair_with_baseline<'a>(
    searched: &[&'a ConfigReport],
    wanted: Option<&str>,
) -> Result<Paired<'a>> {
    let configs: Vec<&ConfigRuns> = searched.iter().map(|r| &r.runs).collect();
    let baseline = paired::choose_baseline(&configs, wanted)?;
    let effects = if configs.len() > 1 {
        paired::paired_effects(&configs, baseline)?
    } else {
        Vec::new()
    };
    Ok(Paired {
        configs,
        baseline,
        effects,
    })
}

/// Per configuration its found cells; per dataset their accuracy, the bootstrap interval of
/// the mean, and where they rank in the benchmark.
fn format_found_cells(searched: &[&ConfigReport], table: &Nb201Table) -> String {
    let mut t = format!(
        "Found cells per configuration (NB201 test accuracy of each seed's cell; {:.0}% percentile-bootstrap interval of the mean, {RESAMPLES} resamples; rank among the {} cells, 1 = best, equal accuracies share the better rank; regret = best cell − found cell)\n",
        100.0 * LEVEL,
        table.len()
    );
    let _ = writeln!(
        t,
        "{:>3}  {:<10}  {:>5}  {:>5}  label",
        "#", "config", "seeds", "cells"
    );
    for (i, r) in searched.iter().enumerate() {
        let cells: BTreeSet<&str> = r.runs.seeds.iter().map(|x| x.arch.as_str()).collect();
        let _ = writeln!(
            t,
            "{:>3}  {:<10}  {:>5}  {:>5}  {}",
            i + 1,
            r.runs.config,
            r.runs.seeds.len(),
            cells.len(),
            r.runs.label
        );
    }
    for (d, dataset) in DATASETS.iter().enumerate() {
        let (paper, band) = dataset.paper;
        let _ = writeln!(
            t,
            "\n{}: best cell {:.2}, paper {paper:.2} ± {band:.2}",
            dataset.title,
            table.best(dataset.dataset)
        );
        let _ = writeln!(
            t,
            "{:>3}  {:<14}  {:<16}  {:<16}  {:>10}  {:>11}",
            "#", "mean ± std", "interval", "[min, max]", "mean rank", "mean regret"
        );
        for (i, r) in searched.iter().enumerate() {
            let o = &r.outcomes[d];
            let _ = writeln!(
                t,
                "{:>3}  {:<14}  {:<16}  {:<16}  {:>10.1}  {:>11.2}",
                i + 1,
                format!("{:.2} ± {:.2}", o.accuracy.mean, o.accuracy.std),
                interval_text(&o.mean, o.accuracy.n, false),
                format!("[{:.2}, {:.2}]", o.accuracy.min, o.accuracy.max),
                o.mean_rank,
                o.mean_regret
            );
        }
    }
    if searched
        .iter()
        .any(|r| r.outcomes.iter().any(|o| is_marked(o.accuracy.n)))
    {
        let _ = writeln!(t, "{}", few_seeds_note());
    }
    t
}

fn format_report(reports: &[ConfigReport], studies: &[Study]) -> String {
    let mut t = String::new();
    let with_seeds: Vec<&ConfigReport> = reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .collect();
    if !with_seeds.is_empty() {
        let _ = writeln!(
            t,
            "\nSeeds agreeing on each edge's op (most common op: seeds / all)"
        );
        let _ = write!(t, "{:<10}", "config");
        for e in &with_seeds[0].edges {
            let _ = write!(t, "  {:<18}", format!("edge {}<-{}", e.nodes.0, e.nodes.1));
        }
        let _ = writeln!(t);
        for r in &with_seeds {
            let _ = write!(t, "{:<10}", r.runs.config);
            for e in &r.edges {
                let _ = write!(
                    t,
                    "  {:<18}",
                    format!("{} {}/{}", e.op, e.seeds_agreeing, e.seeds)
                );
            }
            let _ = writeln!(t);
        }
    }
    for r in reports.iter().filter(|r| !r.runs.genotypes.is_empty()) {
        let g = &r.runs.genotypes;
        let distinct: BTreeSet<&str> = g.iter().map(|(_, t)| t.as_str()).collect();
        let _ = writeln!(
            t,
            "\nDARTS genotypes of {} [{}]: {} seeds, {} distinct",
            r.runs.label,
            r.runs.config,
            g.len(),
            distinct.len()
        );
        for (seed, text) in g {
            let _ = writeln!(t, "  seed {seed}: {text}");
        }
    }
    let with_scores: Vec<&ConfigReport> = reports.iter().filter(|r| !r.noise.is_empty()).collect();
    if !with_scores.is_empty() {
        let _ = writeln!(
            t,
            "\nScore noise (median coefficient of variation over candidates)"
        );
        let _ = writeln!(
            t,
            "{:<10}  {:>16}  {:>16}  {:>22}  {:>22}",
            "config",
            "κ, repeats",
            "regions, repeats",
            "κ, seeds×repeats (r0)",
            "regions, seeds×rep (r0)"
        );
        for r in &with_scores {
            let med = |v: &[ScoreNoise], f: fn(&ScoreNoise) -> f64| {
                median(&v.iter().map(f).collect::<Vec<_>>())
            };
            let _ = writeln!(
                t,
                "{:<10}  {:>16.3}  {:>16.3}  {:>22.3}  {:>22.3}",
                r.runs.config,
                med(&r.noise, |s| s.kappa.cv()),
                med(&r.noise, |s| s.regions.cv()),
                med(&r.noise_first_round, |s| s.kappa.cv()),
                med(&r.noise_first_round, |s| s.regions.cv()),
            );
        }
        let _ = writeln!(
            t,
            "\nRank stability: mean Kendall τ between seeds' rankings of the candidates they share"
        );
        for r in &with_scores {
            let mut by_round: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for a in &r.ranks {
                by_round.entry(a.round).or_default().push(a.tau);
            }
            let _ = write!(t, "{:<10}", r.runs.config);
            for (round, taus) in &by_round {
                let _ = write!(
                    t,
                    "  round {round}: {:.3} ({} pairs)",
                    taus.iter().sum::<f64>() / taus.len() as f64,
                    taus.len()
                );
            }
            if by_round.is_empty() {
                let _ = write!(t, "  (one seed: nothing to compare)");
            }
            let _ = writeln!(t);
        }
    }
    for s in studies {
        t += &s.format();
    }
    t
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn write_tables(out: &Path, reports: &[ConfigReport], paired: &Paired<'_>) -> Result<()> {
    let (mut configs, mut seeds, mut edges, mut noise, mut ranks) = (
        Columns::default(),
        Columns::default(),
        Columns::default(),
        Columns::default(),
        Columns::default(),
    );
    for (index, r) in reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .enumerate()
    {
        config_row(&mut configs, index + 1, r);
    }
    for r in reports {
        let c = &r.runs;
        for (s, standing) in c.seeds.iter().zip(&r.standings) {
            seeds.str("config", &c.config);
            seeds.u64("seed", s.seed);
            seeds.str("arch", &s.arch);
            seeds.u64("nb201_index", s.nb201_index);
            for (d, dataset) in DATASETS.iter().enumerate() {
                seeds.f64(&format!("{}_test", dataset.key), (dataset.accuracy)(s));
                seeds.u64(&format!("rank_{}", dataset.key), standing.rank[d]);
                seeds.f64(&format!("regret_{}", dataset.key), standing.regret[d]);
            }
            seeds.f64("search_seconds", s.search_seconds);
        }
        for e in r.edges.iter().filter(|e| e.seeds > 0) {
            edges.str("config", &c.config);
            edges.u64("edge", e.edge as u64);
            edges.str("modal_op", &e.op);
            edges.u64("seeds_agreeing", e.seeds_agreeing as u64);
            edges.u64("seeds", e.seeds as u64);
        }
        for (scope, list) in [
            ("repeats", &r.noise),
            ("seeds_x_repeats", &r.noise_first_round),
        ] {
            for s in list {
                noise.str("config", &c.config);
                noise.str("scope", scope);
                noise.i64("seed", s.seed.map_or(-1, |v| v as i64));
                noise.u64("round", s.round);
                noise.u64("edge", s.edge);
                noise.str("op", &s.op);
                noise.u64("samples", s.kappa.n as u64);
                noise.f64("kappa_mean", s.kappa.mean);
                noise.f64("kappa_std", s.kappa.std);
                noise.f64("kappa_cv", s.kappa.cv());
                noise.f64("regions_mean", s.regions.mean);
                noise.f64("regions_std", s.regions.std);
                noise.f64("regions_cv", s.regions.cv());
            }
        }
        for a in &r.ranks {
            ranks.str("config", &c.config);
            ranks.u64("round", a.round);
            ranks.u64("seed_a", a.seeds.0);
            ranks.u64("seed_b", a.seeds.1);
            ranks.u64("common_candidates", a.common as u64);
            ranks.f64("kendall_tau", a.tau);
        }
    }
    let paired_rows = paired::paired_table(&paired.configs, paired.baseline, &paired.effects);
    for (name, cols) in [
        ("configs", configs),
        ("seeds", seeds),
        ("paired", paired_rows),
        ("edges", edges),
        ("score_noise", noise),
        ("rank_stability", ranks),
    ] {
        if !cols.is_empty() {
            cols.write_parquet(&out.join(format!("{name}.parquet")))?;
        }
    }
    Ok(())
}

/// One `configs` row: the configuration, then per dataset the accuracy spread, the interval
/// of the mean, and the mean rank and regret.
fn config_row(configs: &mut Columns, index: usize, r: &ConfigReport) {
    let c = &r.runs;
    configs.u64("index", index as u64);
    configs.str("config", &c.config);
    configs.str("label", &c.label);
    configs.str("experiment", &c.experiment);
    configs.u64("seeds", c.seeds.len() as u64);
    let cells: BTreeSet<&str> = c.seeds.iter().map(|x| x.arch.as_str()).collect();
    configs.u64("distinct_cells", cells.len() as u64);
    for (dataset, o) in DATASETS.iter().zip(&r.outcomes) {
        let column = |what: &str| format!("{}_{what}", dataset.key);
        configs.f64(&column("mean"), o.accuracy.mean);
        configs.f64(&column("std"), o.accuracy.std);
        configs.f64(&column("ci_lower"), o.mean.lower);
        configs.f64(&column("ci_upper"), o.mean.upper);
        configs.f64(&column("min"), o.accuracy.min);
        configs.f64(&column("max"), o.accuracy.max);
        configs.f64(&column("rank_mean"), o.mean_rank);
        configs.f64(&column("regret_mean"), o.mean_regret);
    }
}
