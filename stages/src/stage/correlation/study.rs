//! A correlation study's statistics: per-cell predictors from TE-NAS's scores, their rank
//! correlations with the benchmark accuracies, and the `correlation` table that holds them.
use std::path::Path;

use polars::prelude::DataFrame;

use crate::error::{Error, Result};
use crate::table::{read_parquet, Row};
use tenas_core::bench::nb201::BenchEntry;
use tenas_core::data::dataset::Dataset;
use tenas_core::proxy::score::Score;
use tenas_core::proxy::Combination;
use tenas_core::{seeds, stats};

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

/// Per-cell predictor values next to the benchmark accuracies: TE-NAS's (means over repeats),
/// the cell proxies' components and the combinations of any of them.
pub struct Study {
    predictors: Vec<(String, Vec<f64>)>,
    accuracies: [Vec<f64>; 3],
}

const DATASETS: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

impl Study {
    /// A study of the cells `entries` describe, with no predictors yet.
    pub fn new(entries: &[BenchEntry]) -> Study {
        Study {
            predictors: Vec::new(),
            accuracies: DATASETS.map(|d| entries.iter().map(|e| e.accuracy(d)).collect()),
        }
    }

    /// Adds TE-NAS's predictors ([`Predictor::ALL`]) from each cell's repeated scores.
    pub fn with_tenas(self, scores: &[Vec<Score>]) -> Study {
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
        let values = [kappa.iter().map(|k| -k).collect(), regions, rank_sum];
        Predictor::ALL
            .into_iter()
            .zip(values)
            .fold(self, |study, (p, v)| study.with_predictor(p.name(), v))
    }

    /// Adds a predictor: one value per cell, larger predicting better.
    pub fn with_predictor(mut self, name: &str, values: Vec<f64>) -> Study {
        self.predictors.push((name.to_string(), values));
        self
    }

    /// Adds `combination` of the predictors already in the study, under its name.
    pub fn with_combination(self, combination: &Combination) -> Result<Study> {
        let values = combination.combine(|name| self.predictor(name))?;
        Ok(self.with_predictor(&combination.name, values))
    }

    /// The predictor called `name`, if the study has it.
    pub fn predictor(&self, name: &str) -> Option<&[f64]> {
        self.predictors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
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
        for (name, x) in &self.predictors {
            for d in DATASETS {
                let y = self.accuracy(d);
                let boot = |what: &str, f: fn(&[f64], &[f64]) -> tenas_core::Result<f64>| {
                    let s = seeds::derive(seed, &[&"bootstrap", &name.as_str(), &d.name(), &what]);
                    Ok::<_, Error>(stats::bootstrap_ci(x, y, f, resamples, 0.95, s)?)
                };
                rows.push(CorrelationRow {
                    predictor: name.clone(),
                    dataset: d.name().into(),
                    cells: x.len(),
                    tau: boot("tau", stats::kendall_tau_b)?,
                    rho: boot("rho", stats::spearman_rho)?,
                });
            }
        }
        Ok(rows)
    }

    /// How many cells each predictor scores −∞ (degenerate cells), for those with any.
    pub fn degenerate_counts(&self) -> Vec<(&str, usize)> {
        self.predictors
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str(),
                    v.iter().filter(|x| **x == f64::NEG_INFINITY).count(),
                )
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

crate::table_row! {
    /// One row of the `correlation` table: a [`CorrelationRow`] of one seed, flat.
    #[derive(Clone, Debug, PartialEq)]
    pub struct CorrelationRecord {
        pub seed: u64,
        /// Bootstrap resamples on which τ was defined.
        pub resamples: u64,
        pub predictor: String,
        pub dataset: String,
        pub cells: u64,
        pub kendall_tau: f64,
        pub kendall_tau_lower: f64,
        pub kendall_tau_upper: f64,
        pub spearman_rho: f64,
        pub spearman_rho_lower: f64,
        pub spearman_rho_upper: f64,
    }
}

crate::table_row! {
    /// One row of the `cells` table: one score of one cell, next to its benchmark accuracies.
    #[derive(Clone, Debug, PartialEq)]
    pub struct CellRecord {
        pub seed: u64,
        pub arch: String,
        pub nb201_index: u64,
        pub repeat: u64,
        pub kappa: f64,
        pub regions: u64,
        pub regions_saturated: bool,
        pub cifar10_test: f64,
        pub cifar100_test: f64,
        pub imagenet16_120_test: f64,
    }
}

impl CellRecord {
    /// Repeat `repeat`'s score of the cell `entry` describes.
    pub fn new(seed: u64, entry: &BenchEntry, repeat: usize, score: &Score) -> Self {
        CellRecord {
            seed,
            arch: entry.arch.clone(),
            nb201_index: entry.index as u64,
            repeat: repeat as u64,
            kappa: score.kappa,
            regions: score.regions.regions,
            regions_saturated: score.regions.saturated(),
            cifar10_test: entry.cifar10,
            cifar100_test: entry.cifar100,
            imagenet16_120_test: entry.imagenet16_120,
        }
    }
}

impl CorrelationRow {
    /// The row as the `correlation` table holds it for `seed`.
    pub fn record(&self, seed: u64) -> CorrelationRecord {
        CorrelationRecord {
            seed,
            resamples: self.tau.valid_resamples as u64,
            predictor: self.predictor.clone(),
            dataset: self.dataset.clone(),
            cells: self.cells as u64,
            kendall_tau: self.tau.estimate,
            kendall_tau_lower: self.tau.lower,
            kendall_tau_upper: self.tau.upper,
            spearman_rho: self.rho.estimate,
            spearman_rho_lower: self.rho.lower,
            spearman_rho_upper: self.rho.upper,
        }
    }
}

impl From<&CorrelationRecord> for CorrelationRow {
    fn from(r: &CorrelationRecord) -> Self {
        let valid_resamples = r.resamples as usize;
        CorrelationRow {
            predictor: r.predictor.clone(),
            dataset: r.dataset.clone(),
            cells: r.cells as usize,
            tau: stats::BootstrapInterval {
                estimate: r.kendall_tau,
                lower: r.kendall_tau_lower,
                upper: r.kendall_tau_upper,
                valid_resamples,
            },
            rho: stats::BootstrapInterval {
                estimate: r.spearman_rho,
                lower: r.spearman_rho_lower,
                upper: r.spearman_rho_upper,
                valid_resamples,
            },
        }
    }
}

/// The terminal summary: τ and ρ with their intervals, one line per (predictor, dataset).
pub fn format_correlations(rows: &[CorrelationRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.predictor.chars().count())
        .fold(10, usize::max);
    let mut out = format!(
        "{:<width$} {:<16} {:>6}  {:>22}  {:>22}\n",
        "predictor", "dataset", "cells", "Kendall τ [95% CI]", "Spearman ρ [95% CI]"
    );
    for r in rows {
        let ci = |i: &stats::BootstrapInterval| {
            format!("{:.3} [{:.3}, {:.3}]", i.estimate, i.lower, i.upper)
        };
        out += &format!(
            "{:<width$} {:<16} {:>6}  {:>22}  {:>22}\n",
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
        let entry = entry.map_err(|e| Error::invalid(e.to_string()))?;
        if entry.path().extension().is_some_and(|e| e == "parquet") {
            let df = read_parquet(entry.path())?;
            out += &format_correlations(&rows_of(&df, entry.path())?);
        }
    }
    Ok(out)
}

/// The rows of a `correlation` table read back.
pub fn correlation_rows(df: &DataFrame) -> Result<Vec<CorrelationRow>> {
    rows_of(df, Path::new("correlation table"))
}

fn rows_of(df: &DataFrame, path: &Path) -> Result<Vec<CorrelationRow>> {
    Ok(CorrelationRecord::read_all(df, path)?
        .iter()
        .map(CorrelationRow::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenas_core::proxy::regions::RegionCount;

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
        let study = Study::new(&entries).with_tenas(&scores);
        let predictor = |p: Predictor| study.predictor(p.name()).unwrap().to_vec();
        assert_eq!(predictor(Predictor::NegKappa), [-10.0, -20.0, -30.0]);
        assert_eq!(predictor(Predictor::Regions), [1.0, 3.0, 2.0]);
        // κ ranks (ascending) 1, 2, 3; region ranks (descending) 3, 1, 2.
        assert_eq!(predictor(Predictor::NegRankSum), [-4.0, -3.0, -5.0]);
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
