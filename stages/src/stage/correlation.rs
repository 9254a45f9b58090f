//! The `correlation` stage: how well TE-NAS's scores rank NAS-Bench-201 cells.
//!
//! Each selected cell's single-path network (the search's C=3 NTK net and C=1 thin net with
//! only that cell's ops) is scored `repeat` times; Kendall's τ and Spearman's ρ of each
//! predictor against the benchmark accuracies come with percentile-bootstrap intervals. Every
//! cell is a cached unit keyed by its arch and the score settings, not by how many cells were
//! asked for, and the sample is a prefix of one seeded permutation of the space, so a larger
//! study reuses every cell of a smaller one.
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::bench::table_source;
use super::dataset::DatasetOutput;
use super::supernet::SupernetOutput;
use super::{read_json, write_json};
use crate::bench::nb201::BenchEntry;
use crate::data::cifar::{Dataset, ImagePool};
use crate::error::{Error, Result};
use crate::proxy::ntk::NtkMode;
use crate::prune::score::{Sampling, Score, ScoreConfig, Scorer};
use crate::space::nb201_arch::{Arch, Op, NUM_EDGES, NUM_OPS};
use crate::space::nb201_net::single_path_mask;
use crate::{device, seeds, stats, table};

/// Which cells to score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cells {
    /// The first `n` cells of a seeded permutation of the space.
    Sample(usize),
    /// `"all"` (the 15625 cells) or a file with one arch string a line.
    Named(String),
}

/// The stage's params (TOML table `[correlation]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationParams {
    pub cells: Cells,
    /// Images per NTK batch.
    pub batch: usize,
    /// Scores per cell; the predictors use their mean.
    pub repeat: usize,
    pub ntk: NtkMode,
    pub lr_samples: usize,
    pub lr_batches: usize,
    pub lr_crop: usize,
    /// NAS-Bench-201 accuracy table, CSV or Parquet (`TENAS_NB201` overrides it); without
    /// it, the table tenas ships.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
}

impl Default for CorrelationParams {
    fn default() -> Self {
        CorrelationParams {
            cells: Cells::Sample(1000),
            batch: 72,
            repeat: 3,
            ntk: NtkMode::Summed,
            lr_samples: 1000,
            lr_batches: 3,
            lr_crop: 3,
            table: None,
            resamples: 1000,
        }
    }
}

/// Every cell of the space, in the order of its base-5 code (edge 0 most significant).
fn all_cells() -> Vec<Arch> {
    let total = NUM_OPS.pow(NUM_EDGES as u32);
    (0..total)
        .map(|code| {
            let mut ops = [Op::None; NUM_EDGES];
            for (e, op) in ops.iter_mut().enumerate() {
                *op = Op::ALL[code / NUM_OPS.pow((NUM_EDGES - 1 - e) as u32) % NUM_OPS];
            }
            Arch::new(ops)
        })
        .collect()
}

/// The cells `spec` names; a sample is the first `n` of a permutation drawn from `seed`.
pub fn select_cells(spec: &Cells, seed: u64) -> Result<Vec<Arch>> {
    match spec {
        Cells::Sample(n) => {
            let mut cells = all_cells();
            if *n == 0 || *n > cells.len() {
                return Err(Error::Invalid(format!(
                    "cells = {n}: must be between 1 and {}",
                    cells.len()
                )));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seeds::derive(seed, &[&"cells"]));
            cells.shuffle(&mut rng);
            cells.truncate(*n);
            Ok(cells)
        }
        Cells::Named(name) if name == "all" => Ok(all_cells()),
        Cells::Named(file) => read_cell_file(Path::new(file)),
    }
}

fn read_cell_file(path: &Path) -> Result<Vec<Arch>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the cell list {}", path.display()), e))?;
    let cells = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            Arch::parse(l.trim()).map_err(|e| Error::data(path, format!("line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    if cells.is_empty() {
        return Err(Error::data(path, "lists no cells"));
    }
    Ok(cells)
}

pub struct CorrelationStage;

impl Stage for CorrelationStage {
    fn kind(&self) -> &'static str {
        "correlation"
    }
    fn version(&self) -> u32 {
        1
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["dataset", "supernet"]
    }
    fn uses_seed(&self) -> bool {
        true
    }
    fn uses_device(&self) -> bool {
        true
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<CorrelationParams>(params)?;
        let p: CorrelationParams = serde_json::from_value(value.clone()).expect("just resolved");
        for (key, ok) in [
            ("batch", p.batch >= 2),
            ("repeat", p.repeat >= 1),
            ("lr_samples", p.lr_samples >= 1),
            ("lr_batches", p.lr_batches >= 1),
            ("lr_crop", (1..=32).contains(&p.lr_crop)),
            ("resamples", p.resamples >= 1),
            ("cells", !matches!(p.cells, Cells::Sample(0))),
        ] {
            if !ok {
                return Err(ParamError::new(key, format!("`{key}` is out of range")));
            }
        }
        Ok(value)
    }
    /// A cell file and the table enter the key by content.
    fn keyed_params(&self, params: &Value) -> std::result::Result<Value, ParamError> {
        let mut p: CorrelationParams = serde_json::from_value(params.clone())
            .map_err(|e| ParamError::new("cells", e.to_string()))?;
        let hash =
            |path: &Path| crate::hashing::file_sha256(path).unwrap_or_else(|_| "missing".into());
        let table = table_source(p.table.as_deref())
            .content_sha256()
            .unwrap_or_else(|_| "missing".into());
        if let Cells::Named(file) = &p.cells {
            if file != "all" {
                p.cells = Cells::Named(format!("sha256:{}", hash(Path::new(file))));
            }
        }
        let mut keyed = serde_json::to_value(&p).expect("plain data serializes");
        keyed["table"] = json!({ "sha256": table });
        Ok(keyed)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

const UNIT_FILE: &str = "scores.json";

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let params: CorrelationParams = ctx.params_as().map_err(|e| Error::Invalid(e.to_string()))?;
    let seed = ctx
        .seed()
        .ok_or_else(|| Error::Invalid("the correlation stage needs a seed".into()))?;
    let input = |name: &str| super::input(ctx, name);
    let data_dir = input("dataset")?;
    let data: DatasetOutput = read_json(&data_dir.join(DatasetOutput::FILE))?;
    let net: SupernetOutput = read_json(&input("supernet")?.join(SupernetOutput::FILE))?;
    let pool = ImagePool::load(&data_dir.join(DatasetOutput::POOL))?;
    let cells = select_cells(&params.cells, seed)?;
    let config = ScoreConfig {
        num_classes: data.num_classes,
        channels: net.channels,
        layers: net.layers,
        batch: params.batch,
        repeat: params.repeat,
        ntk: params.ntk,
        init: net.init,
        // Common random numbers: repeat r scores every cell on the same weights and data.
        sampling: Sampling::Shared,
        lr_samples: params.lr_samples,
        lr_batches: params.lr_batches,
        lr_crop: params.lr_crop,
    };
    let scorer = Scorer::nb201(config.clone(), pool.view(), device::current());
    let descriptors: Vec<Value> = cells
        .iter()
        .map(|a| json!({ "config": config, "arch": a.to_string() }))
        .collect();
    let dirs = ctx
        .units("cell", &descriptors, |i, dir| {
            let mask = single_path_mask(&cells[i]);
            let scores = (0..config.repeat)
                .map(|r| scorer.score(&mask, &config.draw(seed, 0, r, "cell")))
                .collect::<Result<Vec<Score>>>()?;
            Ok(write_json(&dir.join(UNIT_FILE), &scores)?)
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let scores = dirs
        .iter()
        .map(|d| read_json::<Vec<Score>>(&d.join(UNIT_FILE)))
        .collect::<Result<Vec<_>>>()?;
    let bench = table_source(params.table.as_deref()).load()?;
    let entries = cells
        .iter()
        .map(|a| bench.lookup(&a.to_string()))
        .collect::<Result<Vec<_>>>()?;
    write_cells_table(ctx, seed, &entries, &scores)?;
    let study = Study::new(&entries, &scores);
    let rows = study.correlations(params.resamples, seed)?;
    ctx.progress().log(format_correlations(&rows));
    write_correlation_table(ctx, seed, &rows)
}

fn write_cells_table(
    ctx: &StageContext<'_>,
    seed: u64,
    entries: &[BenchEntry],
    scores: &[Vec<Score>],
) -> Result<()> {
    let mut cols = table::Columns::default();
    for (entry, cell_scores) in entries.iter().zip(scores) {
        for (r, s) in cell_scores.iter().enumerate() {
            cols.u64("seed", seed);
            cols.str("arch", &entry.arch);
            cols.u64("nb201_index", entry.index as u64);
            cols.u64("repeat", r as u64);
            cols.f64("kappa", s.kappa);
            cols.u64("regions", s.regions.regions);
            cols.bool("regions_saturated", s.regions.saturated());
            cols.f64("cifar10_test", entry.cifar10);
            cols.f64("cifar100_test", entry.cifar100);
            cols.f64("imagenet16_120_test", entry.imagenet16_120);
        }
    }
    cols.write_parquet(&ctx.table_path("cells"))
}

/// A predictor of accuracy, oriented so that larger predicts better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predictor {
    /// −κ: TE-NAS prefers a well-conditioned NTK.
    NegKappa,
    Regions,
    /// −(rank of κ ascending + rank of regions descending): TE-NAS's combined ranking.
    NegRankSum,
}

impl Predictor {
    pub const ALL: [Predictor; 3] = [
        Predictor::NegKappa,
        Predictor::Regions,
        Predictor::NegRankSum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Predictor::NegKappa => "-kappa",
            Predictor::Regions => "regions",
            Predictor::NegRankSum => "-rank_sum",
        }
    }
}

/// One row of the `correlation` table.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationRow {
    /// [`Predictor::name`].
    pub predictor: String,
    /// [`Dataset::name`].
    pub dataset: String,
    pub cells: usize,
    pub tau: stats::BootstrapInterval,
    pub rho: stats::BootstrapInterval,
}

/// Per-cell predictor values (means over repeats) next to the benchmark accuracies.
pub struct Study {
    predictors: [Vec<f64>; 3],
    accuracies: [Vec<f64>; 3],
}

const DATASETS: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

impl Study {
    pub fn new(entries: &[BenchEntry], scores: &[Vec<Score>]) -> Study {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let kappa: Vec<f64> = scores
            .iter()
            .map(|s| mean(&s.iter().map(|x| x.kappa).collect::<Vec<_>>()))
            .collect();
        let regions: Vec<f64> = scores
            .iter()
            .map(|s| {
                mean(
                    &s.iter()
                        .map(|x| x.regions.regions as f64)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let kappa_rank = stats::average_ranks(&kappa);
        let regions_rank = stats::average_ranks(&regions.iter().map(|r| -r).collect::<Vec<_>>());
        let rank_sum = kappa_rank
            .iter()
            .zip(&regions_rank)
            .map(|(a, b)| -(a + b))
            .collect();
        Study {
            predictors: [kappa.iter().map(|k| -k).collect(), regions, rank_sum],
            accuracies: DATASETS.map(|d| entries.iter().map(|e| e.accuracy(d)).collect()),
        }
    }

    pub fn predictor(&self, p: Predictor) -> &[f64] {
        &self.predictors[p as usize]
    }

    pub fn accuracy(&self, d: Dataset) -> &[f64] {
        &self.accuracies[DATASETS
            .iter()
            .position(|x| *x == d)
            .expect("a benchmark dataset")]
    }

    /// τ and ρ of every predictor against every dataset, with 95% bootstrap intervals.
    pub fn correlations(&self, resamples: usize, seed: u64) -> Result<Vec<CorrelationRow>> {
        let mut rows = Vec::new();
        for p in Predictor::ALL {
            for d in DATASETS {
                let (x, y) = (self.predictor(p), self.accuracy(d));
                let boot = |name: &str, f: fn(&[f64], &[f64]) -> Result<f64>| {
                    let s = seeds::derive(seed, &[&"bootstrap", &p.name(), &d.name(), &name]);
                    stats::bootstrap_ci(x, y, f, resamples, 0.95, s)
                };
                rows.push(CorrelationRow {
                    predictor: p.name().into(),
                    dataset: d.name().into(),
                    cells: x.len(),
                    tau: boot("tau", stats::kendall_tau_b)?,
                    rho: boot("rho", stats::spearman_rho)?,
                });
            }
        }
        Ok(rows)
    }
}

fn write_correlation_table(
    ctx: &StageContext<'_>,
    seed: u64,
    rows: &[CorrelationRow],
) -> Result<()> {
    let mut cols = table::Columns::default();
    for r in rows {
        cols.u64("seed", seed);
        cols.u64("resamples", r.tau.valid_resamples as u64);
        cols.str("predictor", &r.predictor);
        cols.str("dataset", &r.dataset);
        cols.u64("cells", r.cells as u64);
        for (name, i) in [("kendall_tau", &r.tau), ("spearman_rho", &r.rho)] {
            cols.f64(name, i.estimate);
            cols.f64(&format!("{name}_lower"), i.lower);
            cols.f64(&format!("{name}_upper"), i.upper);
        }
    }
    cols.write_parquet(&ctx.table_path("correlation"))
}

/// The terminal summary: τ and ρ with their intervals, one line per (predictor, dataset).
pub fn format_correlations(rows: &[CorrelationRow]) -> String {
    let mut out = format!(
        "{:<10} {:<16} {:>6}  {:>22}  {:>22}\n",
        "predictor", "dataset", "cells", "Kendall τ [95% CI]", "Spearman ρ [95% CI]"
    );
    for r in rows {
        let ci = |i: &stats::BootstrapInterval| {
            format!("{:.3} [{:.3}, {:.3}]", i.estimate, i.lower, i.upper)
        };
        out += &format!(
            "{:<10} {:<16} {:>6}  {:>22}  {:>22}\n",
            r.predictor,
            r.dataset,
            r.cells,
            ci(&r.tau),
            ci(&r.rho)
        );
    }
    out
}

/// A run's `correlation` tables (every seed), formatted as [`format_correlations`] does.
pub fn summarize(dir: &Path) -> Result<String> {
    let mut out = String::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Invalid(e.to_string()))?;
        if entry.path().extension().is_some_and(|e| e == "parquet") {
            out += &format_correlations(&correlation_rows(&table::read_parquet(entry.path())?)?);
        }
    }
    Ok(out)
}

/// The rows of a `correlation` table read back.
pub fn correlation_rows(df: &DataFrame) -> Result<Vec<CorrelationRow>> {
    let text = |c: &str, i: usize| -> Result<String> {
        Ok(df.column(c)?.str()?.get(i).unwrap_or_default().to_string())
    };
    let num =
        |c: &str, i: usize| -> Result<f64> { Ok(df.column(c)?.f64()?.get(i).unwrap_or(f64::NAN)) };
    let interval = |name: &str, i: usize| -> Result<stats::BootstrapInterval> {
        Ok(stats::BootstrapInterval {
            estimate: num(name, i)?,
            lower: num(&format!("{name}_lower"), i)?,
            upper: num(&format!("{name}_upper"), i)?,
            valid_resamples: df.column("resamples")?.u64()?.get(i).unwrap_or(0) as usize,
        })
    };
    (0..df.height())
        .map(|i| {
            Ok(CorrelationRow {
                predictor: text("predictor", i)?,
                dataset: text("dataset", i)?,
                cells: df.column("cells")?.u64()?.get(i).unwrap_or(0) as usize,
                tau: interval("kendall_tau", i)?,
                rho: interval("spearman_rho", i)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::regions::RegionCount;

    #[test]
    fn samples_are_prefixes_of_one_permutation() -> Result<()> {
        let small = select_cells(&Cells::Sample(10), 4)?;
        let large = select_cells(&Cells::Sample(20), 4)?;
        assert_eq!(small[..], large[..10]);
        assert_ne!(small, select_cells(&Cells::Sample(10), 5)?);
        let all = select_cells(&Cells::Named("all".into()), 0)?;
        let distinct: std::collections::HashSet<String> =
            all.iter().map(|a| a.to_string()).collect();
        assert_eq!(distinct.len(), 15625);
        assert!(select_cells(&Cells::Sample(0), 0).is_err());
        assert!(select_cells(&Cells::Sample(15626), 0).is_err());
        Ok(())
    }

    #[test]
    fn cell_files_skip_comments_and_name_the_bad_line() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = dir.path().join("cells.txt");
        let arch =
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|";
        std::fs::write(&good, format!("# two cells\n{arch}\n\n{arch}\n")).expect("write");
        let cells = select_cells(&Cells::Named(good.display().to_string()), 0)?;
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].to_string(), arch);
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, format!("{arch}\n|conv_9x9~0|\n")).expect("write");
        let err = select_cells(&Cells::Named(bad.display().to_string()), 0)
            .expect_err("a bad line")
            .to_string();
        assert!(err.contains("bad.txt") && err.contains("line 2"), "{err}");
        Ok(())
    }

    fn entry(arch: &str, acc: f64) -> BenchEntry {
        BenchEntry {
            index: 0,
            arch: arch.into(),
            cifar10: acc,
            cifar100: acc - 20.0,
            imagenet16_120: -acc,
            rank_cifar10: 1,
            rank_cifar100: 1,
            rank_imagenet16_120: 1,
            total: 3,
        }
    }

    fn score(kappa: f64, regions: u64) -> Score {
        Score {
            kappa,
            regions: RegionCount {
                regions,
                samples: 1000,
            },
        }
    }

    #[test]
    fn predictors_are_oriented_and_rank_sums_follow_the_rule() -> Result<()> {
        // Means over two repeats: κ = 10, 20, 30; regions = 1, 3, 2.
        let scores = vec![
            vec![score(5.0, 1), score(15.0, 1)],
            vec![score(20.0, 2), score(20.0, 4)],
            vec![score(30.0, 2), score(30.0, 2)],
        ];
        let entries = [entry("a", 90.0), entry("b", 80.0), entry("c", 70.0)];
        let study = Study::new(&entries, &scores);
        assert_eq!(study.predictor(Predictor::NegKappa), [-10.0, -20.0, -30.0]);
        assert_eq!(study.predictor(Predictor::Regions), [1.0, 3.0, 2.0]);
        // κ ranks (ascending) 1, 2, 3; region ranks (descending) 3, 1, 2.
        assert_eq!(study.predictor(Predictor::NegRankSum), [-4.0, -3.0, -5.0]);
        let rows = study.correlations(20, 0)?;
        assert_eq!(rows.len(), 9);
        let tau = |p: Predictor, d: Dataset| {
            rows.iter()
                .find(|r| r.predictor == p.name() && r.dataset == d.name())
                .expect("a row")
                .tau
                .estimate
        };
        // Lower κ goes with higher accuracy here: τ(−κ, C10) = 1, and −1 on the reversed set.
        assert_eq!(tau(Predictor::NegKappa, Dataset::Cifar10), 1.0);
        assert_eq!(tau(Predictor::NegKappa, Dataset::ImageNet16_120), -1.0);
        // −rank_sum = −4, −3, −5 against 90, 80, 70: pairs (a,b) D, (a,c) C, (b,c) C → 1/3.
        assert!((tau(Predictor::NegRankSum, Dataset::Cifar10) - 1.0 / 3.0).abs() < 1e-12);
        Ok(())
    }
}
