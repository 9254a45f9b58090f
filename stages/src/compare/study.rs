//! Correlation studies in a comparison: each run's τ per predictor and dataset with its
//! interval, beside the published τ, and the per-cell values of the predictors its `cells`
//! table holds (for the scatters).
use std::collections::BTreeMap;
use std::fmt::Write as _;

use polars::prelude::{DataFrame, DataType};

use super::published::{published_tau, BEST_PUBLISHED};
use super::sources::RunData;
use crate::error::Result;
use crate::stage::correlation::{correlation_rows, CorrelationRow, Predictor};
use tenas_core::data::dataset::Dataset;
use tenas_core::stats::BootstrapInterval;

const DATASETS: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

/// One run's correlation study.
pub struct Study {
    pub label: String,
    pub cells: usize,
    /// τ and ρ of every predictor on every dataset, as the stage wrote them.
    pub rows: Vec<CorrelationRow>,
    /// Per-cell values (means over repeats, cells in arch order) of every predictor the `cells`
    /// table has a column for; `-kappa` is −κ.
    pub values: Vec<(String, Vec<f64>)>,
    pub cifar10: Vec<f64>,
}

impl Study {
    /// The predictors in the order the stage reported them.
    pub fn predictors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.predictor.as_str()) {
                out.push(&r.predictor);
            }
        }
        out
    }

    /// τ of `predictor` on `dataset`, with its interval.
    pub fn tau(&self, predictor: &str, dataset: Dataset) -> Option<&BootstrapInterval> {
        self.rows
            .iter()
            .find(|r| r.predictor == predictor && r.dataset == dataset.name())
            .map(|r| &r.tau)
    }

    pub fn values(&self, predictor: &str) -> Option<&[f64]> {
        self.values
            .iter()
            .find(|(n, _)| n == predictor)
            .map(|(_, v)| v.as_slice())
    }

    /// The predictor with per-cell values whose CIFAR-10 τ is highest.
    pub fn best(&self) -> Option<(&str, f64)> {
        self.values
            .iter()
            .filter_map(|(name, _)| {
                let tau = self.tau(name, Dataset::Cifar10)?.estimate;
                tau.is_finite().then_some((name.as_str(), tau))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Whether the study has only TE-NAS's three predictors.
    fn is_tenas_only(&self) -> bool {
        self.predictors()
            .iter()
            .all(|p| Predictor::ALL.iter().any(|t| t.name() == *p))
    }

    /// The report's paragraph: one line for a TE-NAS study, a τ table beside the published
    /// values for a study of other proxies.
    pub fn format(&self) -> String {
        let c10 = |p: &str| {
            self.tau(p, Dataset::Cifar10)
                .map_or(f64::NAN, |t| t.estimate)
        };
        let mut t = String::new();
        if self.is_tenas_only() {
            let listed: Vec<String> = self
                .predictors()
                .iter()
                .map(|p| format!("{p} {:.3}", c10(p)))
                .collect();
            let _ = writeln!(
                t,
                "\nCorrelation study {} ({} cells): Kendall τ with CIFAR-10 accuracy: {}",
                self.label,
                self.cells,
                listed.join(", ")
            );
            return t;
        }
        let _ = writeln!(
            t,
            "\nCorrelation study {} ({} cells): Kendall τ [95% bootstrap interval] (published τ, all 15,625 cells)",
            self.label, self.cells
        );
        let width = self
            .predictors()
            .iter()
            .map(|p| p.chars().count())
            .fold(10, usize::max);
        let _ = writeln!(
            t,
            "{:<width$}  {:>30}  {:>30}  {:>30}",
            "predictor",
            Dataset::Cifar10.name(),
            Dataset::Cifar100.name(),
            Dataset::ImageNet16_120.name()
        );
        for p in self.predictors() {
            let cell = |d: usize| {
                let Some(tau) = self.tau(p, DATASETS[d]) else {
                    return String::new();
                };
                let published = published_tau(p, d).map_or(String::new(), |v| format!(" ({v:.3})"));
                format!(
                    "{:.3} [{:.3}, {:.3}]{published}",
                    tau.estimate, tau.lower, tau.upper
                )
            };
            let _ = writeln!(
                t,
                "{p:<width$}  {:>30}  {:>30}  {:>30}",
                cell(0),
                cell(1),
                cell(2)
            );
        }
        let best = BEST_PUBLISHED
            .tau
            .map(|v| v.map_or(String::new(), |v| format!("({v:.3})")));
        let _ = writeln!(
            t,
            "{:<width$}  {:>30}  {:>30}  {:>30}",
            BEST_PUBLISHED.predictor, best[0], best[1], best[2]
        );
        t
    }
}

/// The studies of the runs that have `cells` and `correlation` tables.
pub fn studies(runs: &[RunData]) -> Result<Vec<Study>> {
    let mut out = Vec::new();
    for run in runs {
        let (Some(cells), Some(correlation)) = (&run.cells, &run.correlation) else {
            continue;
        };
        let rows = correlation_rows(correlation)?;
        let (cifar10, values) = per_cell_values(cells, &rows)?;
        out.push(Study {
            label: format!("{} {}", run.experiment, run.run_id),
            cells: cifar10.len(),
            rows,
            values,
            cifar10,
        });
    }
    Ok(out)
}

/// CIFAR-10 accuracy and the per-cell mean of each predictor with a column (κ as −κ).
type PerCell = (Vec<f64>, Vec<(String, Vec<f64>)>);

fn per_cell_values(cells: &DataFrame, rows: &[CorrelationRow]) -> Result<PerCell> {
    let arch = cells.column("arch")?.str()?.clone();
    let acc = cells.column("cifar10_test")?.f64()?.clone();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut cifar10 = Vec::new();
    let row_cell: Vec<usize> = (0..cells.height())
        .map(|i| {
            let name = arch.get(i).unwrap_or_default().to_string();
            let next = index.len();
            *index.entry(name).or_insert_with(|| {
                cifar10.push(acc.get(i).unwrap_or(f64::NAN));
                next
            })
        })
        .collect();
    // Cells in arch order, as the tables sort them.
    let order: Vec<usize> = index.values().copied().collect();
    let mean_by_cell = |values: Vec<Option<f64>>| -> Vec<f64> {
        let mut sums = vec![(0.0, 0usize); index.len()];
        for (cell, v) in row_cell.iter().zip(values) {
            if let Some(v) = v {
                sums[*cell].0 += v;
                sums[*cell].1 += 1;
            }
        }
        order
            .iter()
            .map(|&c| match sums[c] {
                (_, 0) => f64::NAN,
                (s, n) => s / n as f64,
            })
            .collect()
    };
    let mut values = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in rows {
        let name = r.predictor.as_str();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let column = match name {
            "-kappa" => cells.column("kappa").ok(),
            other => cells.column(other).ok(),
        };
        let Some(column) = column else { continue };
        let raw: Vec<Option<f64>> = match column.dtype() {
            DataType::Float64 => {
                let c = column.f64()?;
                (0..c.len()).map(|i| c.get(i)).collect()
            }
            DataType::UInt64 => {
                let c = column.u64()?;
                (0..c.len()).map(|i| c.get(i).map(|v| v as f64)).collect()
            }
            _ => continue,
        };
        let sign = if name == "-kappa" { -1.0 } else { 1.0 };
        let means = mean_by_cell(raw).into_iter().map(|v| sign * v).collect();
        values.push((name.to_string(), means));
    }
    let cifar10 = order.iter().map(|&c| cifar10[c]).collect();
    Ok((cifar10, values))
}
