//! `tenas compare`: seeds and configurations side by side, score noise, rank stability and
//! plots, read from the runs' Parquet tables.
pub mod parity;
pub mod plot;
pub mod sources;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tenas_pipeline::Store;

use crate::bench::source::TableSource;
use crate::data::cifar::Dataset;
use crate::error::{Error, Result};
use crate::stage::correlation::{correlation_rows, Predictor};
use crate::table::Columns;
use sources::RunData;
use summary::{ConfigRuns, EdgeAgreement, RankAgreement, ScoreNoise, Spread};

/// What to compare and where the outputs go.
pub struct CompareRequest<'a> {
    pub store: &'a Store,
    /// Experiment files, run ids or results folders.
    pub sources: &'a [String],
    /// Folder for the Parquet tables and plots.
    pub out: &'a Path,
    pub plot: bool,
}

/// Everything computed for one configuration.
struct ConfigReport {
    runs: ConfigRuns,
    edges: Vec<EdgeAgreement>,
    noise: Vec<ScoreNoise>,
    noise_first_round: Vec<ScoreNoise>,
    ranks: Vec<RankAgreement>,
}

/// Runs the comparison, writes its tables (and plots) to `out`, returns the terminal text.
pub fn compare(req: &CompareRequest<'_>) -> Result<String> {
    let runs = sources::resolve(req.store, req.sources)?;
    let reports = summary::group(&runs)?
        .into_iter()
        .map(|runs| {
            let (noise, noise_first_round) = summary::score_noise(&runs.candidates);
            Ok(ConfigReport {
                edges: summary::edge_agreement(&runs.seeds)?,
                ranks: summary::rank_stability(&runs.candidates),
                noise,
                noise_first_round,
                runs,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(req.out)
        .map_err(|e| Error::io(format!("creating {}", req.out.display()), e))?;
    write_tables(req.out, &reports)?;
    let studies = correlation_studies(&runs)?;
    let mut text = format_report(&reports, &studies);
    if req.plot {
        let files = draw_plots(req.out, &reports, &studies, &runs)?;
        text += "\nplots:\n";
        for f in files {
            let _ = writeln!(text, "  {}", f.display());
        }
    }
    let _ = writeln!(text, "\ntables: {}", req.out.display());
    Ok(text)
}

fn format_report(reports: &[ConfigReport], studies: &[Study]) -> String {
    let mut t = String::new();
    let with_seeds: Vec<&ConfigReport> = reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .collect();
    if !with_seeds.is_empty() {
        let (paper, band) = plot::PAPER_CIFAR10;
        let _ = writeln!(
            t,
            "Found cells per configuration (NB201 test accuracy, mean ± std [min, max]; paper CIFAR-10: {paper:.2} ± {band:.2})"
        );
        let _ = writeln!(
            t,
            "{:<10}  {:>5}  {:>5}  {:<27}  {:<27}  {:<27}  label",
            "config", "seeds", "cells", "CIFAR-10", "CIFAR-100", "ImageNet16-120"
        );
        for r in &with_seeds {
            let s = &r.runs.seeds;
            let cells: std::collections::BTreeSet<&str> =
                s.iter().map(|x| x.arch.as_str()).collect();
            let acc = |f: fn(&crate::stage::bench::ResultRow) -> f64| {
                let sp = Spread::of(&s.iter().map(f).collect::<Vec<_>>());
                format!(
                    "{:.2} ± {:.2} [{:.2}, {:.2}]",
                    sp.mean, sp.std, sp.min, sp.max
                )
            };
            let _ = writeln!(
                t,
                "{:<10}  {:>5}  {:>5}  {:<27}  {:<27}  {:<27}  {}",
                r.runs.config,
                s.len(),
                cells.len(),
                acc(|x| x.cifar10),
                acc(|x| x.cifar100),
                acc(|x| x.imagenet16_120),
                r.runs.label
            );
        }
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
        let distinct: std::collections::BTreeSet<&str> =
            g.iter().map(|(_, t)| t.as_str()).collect();
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
        let _ = writeln!(
            t,
            "\nCorrelation study {} ({} cells): Kendall τ with CIFAR-10 accuracy: -kappa {:.3}, regions {:.3}, -rank_sum {:.3}",
            s.label,
            s.kappa.len(),
            s.tau[0],
            s.tau[1],
            s.tau[2]
        );
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

fn write_tables(out: &Path, reports: &[ConfigReport]) -> Result<()> {
    let (mut configs, mut seeds, mut edges, mut noise, mut ranks) = (
        Columns::default(),
        Columns::default(),
        Columns::default(),
        Columns::default(),
        Columns::default(),
    );
    for r in reports {
        let c = &r.runs;
        if !c.seeds.is_empty() {
            configs.str("config", &c.config);
            configs.str("label", &c.label);
            configs.str("experiment", &c.experiment);
            configs.u64("seeds", c.seeds.len() as u64);
            let cells: std::collections::BTreeSet<&str> =
                c.seeds.iter().map(|x| x.arch.as_str()).collect();
            configs.u64("distinct_cells", cells.len() as u64);
            for (name, f) in [
                (
                    "cifar10",
                    (|x| x.cifar10) as fn(&crate::stage::bench::ResultRow) -> f64,
                ),
                ("cifar100", |x| x.cifar100),
                ("imagenet16_120", |x| x.imagenet16_120),
            ] {
                let sp = Spread::of(&c.seeds.iter().map(f).collect::<Vec<_>>());
                configs.f64(&format!("{name}_mean"), sp.mean);
                configs.f64(&format!("{name}_std"), sp.std);
                configs.f64(&format!("{name}_min"), sp.min);
                configs.f64(&format!("{name}_max"), sp.max);
            }
        }
        for s in &c.seeds {
            seeds.str("config", &c.config);
            seeds.u64("seed", s.seed);
            seeds.str("arch", &s.arch);
            seeds.u64("nb201_index", s.nb201_index);
            seeds.f64("cifar10_test", s.cifar10);
            seeds.f64("cifar100_test", s.cifar100);
            seeds.f64("imagenet16_120_test", s.imagenet16_120);
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
    for (name, cols) in [
        ("configs", configs),
        ("seeds", seeds),
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

/// A correlation run's per-cell means and the τ its stage computed.
struct Study {
    label: String,
    kappa: Vec<f64>,
    regions: Vec<f64>,
    cifar10: Vec<f64>,
    /// τ of −κ, regions and −rank sum against CIFAR-10 accuracy.
    tau: [f64; 3],
}

fn correlation_studies(runs: &[RunData]) -> Result<Vec<Study>> {
    let mut out = Vec::new();
    for run in runs {
        let (Some(frame), Some(correlation)) = (&run.cells, &run.correlation) else {
            continue;
        };
        let arch = frame.column("arch")?.str()?.clone();
        let kappa = frame.column("kappa")?.f64()?.clone();
        let regions = frame.column("regions")?.u64()?.clone();
        let acc = frame.column("cifar10_test")?.f64()?.clone();
        let mut cells: BTreeMap<String, (Vec<f64>, Vec<f64>, f64)> = BTreeMap::new();
        for i in 0..frame.height() {
            let e = cells
                .entry(arch.get(i).unwrap_or_default().to_string())
                .or_insert_with(|| (Vec::new(), Vec::new(), acc.get(i).unwrap_or(f64::NAN)));
            e.0.push(kappa.get(i).unwrap_or(f64::NAN));
            e.1.push(regions.get(i).unwrap_or(0) as f64);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let rows = correlation_rows(correlation)?;
        let tau = |p: Predictor| {
            rows.iter()
                .find(|r| r.predictor == p.name() && r.dataset == Dataset::Cifar10.name())
                .map_or(f64::NAN, |r| r.tau.estimate)
        };
        out.push(Study {
            label: format!("{} {}", run.experiment, run.run_id),
            tau: Predictor::ALL.map(tau),
            kappa: cells.values().map(|c| mean(&c.0)).collect(),
            regions: cells.values().map(|c| mean(&c.1)).collect(),
            cifar10: cells.values().map(|c| c.2).collect(),
        });
    }
    Ok(out)
}

fn draw_plots(
    out: &Path,
    reports: &[ConfigReport],
    studies: &[Study],
    runs: &[RunData],
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let searched: Vec<ConfigRuns> = reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .map(|r| ConfigRuns {
            config: r.runs.config.clone(),
            label: r.runs.label.clone(),
            experiment: r.runs.experiment.clone(),
            seeds: r.runs.seeds.clone(),
            genotypes: Vec::new(),
            candidates: Vec::new(),
        })
        .collect();
    if !searched.is_empty() {
        files.extend(plot::accuracy(
            &out.join("accuracy"),
            &searched,
            nb201_best(runs),
        )?);
    }
    for r in reports.iter().filter(|r| !r.noise_first_round.is_empty()) {
        let stem = out.join(format!("kappa_spread_{}", r.runs.config));
        files.extend(plot::kappa_spread(
            &stem,
            &r.runs.label,
            &r.noise_first_round,
        )?);
    }
    for (i, s) in studies.iter().enumerate() {
        let kappa: Vec<(f64, f64)> = s
            .kappa
            .iter()
            .copied()
            .zip(s.cifar10.iter().copied())
            .collect();
        let regions: Vec<(f64, f64)> = s
            .regions
            .iter()
            .copied()
            .zip(s.cifar10.iter().copied())
            .collect();
        files.extend(plot::scatter(
            &out.join(format!("scatter_kappa_{i}")),
            "κ (mean over repeats; τ of −κ)",
            &kappa,
            s.tau[0],
            true,
        )?);
        files.extend(plot::scatter(
            &out.join(format!("scatter_regions_{i}")),
            "linear regions (mean over repeats)",
            &regions,
            s.tau[1],
            false,
        )?);
    }
    Ok(files)
}

/// The benchmark's best CIFAR-10 accuracy, from the table a run used (`TENAS_NB201` first,
/// then the runs' `bench.table`, then the shipped table).
fn nb201_best(runs: &[RunData]) -> Option<f64> {
    let files = std::env::var_os(crate::stage::bench::TABLE_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain(
            runs.iter()
                .filter_map(|r| r.params.get("bench.table").map(PathBuf::from)),
        )
        .filter(|p| p.is_file())
        .map(TableSource::File);
    files
        .chain(std::iter::once(TableSource::Shipped))
        .find_map(|source| source.load().ok())
        .map(|t| t.best(Dataset::Cifar10))
}
