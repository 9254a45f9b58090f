//! The `correlation` stage: how well TE-NAS's scores rank NAS-Bench-201 cells.
//!
//! Each selected cell's single-path network (the search's C=3 NTK net and C=1 thin net with
//! only that cell's ops) is scored `repeat` times; Kendall's τ and Spearman's ρ of each
//! predictor against the benchmark accuracies come with percentile-bootstrap intervals. Every
//! cell is a cached unit keyed by its arch and the score settings, not by how many cells were
//! asked for, and the sample is a prefix of one seeded permutation of the space, so a larger
//! study reuses every cell of a smaller one.
mod cells;
mod study;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext, Units};

use super::bench::table_source;
use super::scoring::{ScoreSettings, ScoringInputs};
use super::{check_range, params, read_json, write_json};
use crate::error::{Error, Result};
use crate::table::{names, write_rows};
use tenas_core::bench::nb201::BenchEntry;
use tenas_core::data::sample::Augmentation;
use tenas_core::proxy::ntk::NtkMode;
use tenas_core::proxy::score::{Sampling, Score};
use tenas_core::space::nb201_arch::single_path_mask;
use tenas_core::space::nb201_net::Nb201Net;
use tenas_core::space::Space;

pub use cells::{select_cells, Cells, SPACE_SIZE};
pub use study::{
    correlation_rows, format_correlations, summarize, CellRecord, CorrelationRecord,
    CorrelationRow, Predictor, Study,
};

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
    /// NTK batch augmentation, as the prune stage's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augmentation>,
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
            augment: None,
        }
    }
}

impl CorrelationParams {
    fn score_settings(&self) -> ScoreSettings {
        ScoreSettings {
            batch: self.batch,
            repeat: self.repeat,
            ntk: self.ntk,
            // Common random numbers: repeat r scores every cell on the same weights and data.
            sampling: Sampling::Shared,
            lr_samples: self.lr_samples,
            lr_batches: self.lr_batches,
            lr_crop: self.lr_crop,
            augment: self.augment,
        }
    }
}

/// The study; it scores on the device the run's settings name.
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
    /// `cells` is a path unless it is a count or `"all"`.
    fn resolve_paths(&self, params: &mut toml::Table, base: &std::path::Path) {
        tenas_pipeline::resolve_path_param(params, "table", base);
        if params.get("cells").and_then(|c| c.as_str()) != Some("all") {
            tenas_pipeline::resolve_path_param(params, "cells", base);
        }
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<CorrelationParams>(params)?;
        let p: CorrelationParams = serde_json::from_value(value.clone()).expect("just resolved");
        p.score_settings().check()?;
        check_range("resamples", p.resamples, 1..)?;
        if let Cells::Sample(n) = p.cells {
            check_range("cells", n, 1..=SPACE_SIZE)?;
        }
        Ok(value)
    }
    /// A cell file and the table enter the key by content.
    fn keyed_params(&self, params: &Value) -> std::result::Result<Value, ParamError> {
        let mut p: CorrelationParams = serde_json::from_value(params.clone())
            .map_err(|e| ParamError::new("cells", e.to_string()))?;
        let hash = |path: &Path| {
            tenas_core::hashing::file_sha256(path).unwrap_or_else(|_| "missing".into())
        };
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
    /// Every cell is one unit, all computed before any is used.
    fn shardable(&self) -> bool {
        true
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

const UNIT_FILE: &str = "scores.json";

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let params: CorrelationParams = params(ctx)?;
    let seed = ctx
        .seed()
        .ok_or_else(|| Error::invalid("the correlation stage needs a seed"))?;
    let inputs = ScoringInputs::load(ctx, &params.score_settings())?;
    if inputs.net.space != Space::Nb201 {
        return Err(Error::invalid(format!(
            "the correlation stage scores NAS-Bench-201 cells, but the supernet's space is {:?} (set [supernet] space = \"nb201\")",
            inputs.net.space
        )));
    }
    let cells = select_cells(&params.cells, seed)?;
    let scorer = inputs.scorer(ctx, Nb201Net::new)?;
    let config = &inputs.config;
    let descriptors: Vec<Value> = cells
        .iter()
        .map(|a| json!({ "config": config, "arch": a.to_string() }))
        .collect();
    let units = ctx.units("cell", &descriptors, |i, dir| {
        let mask = single_path_mask(&cells[i]);
        let scores = (0..config.repeat)
            .map(|r| scorer.score(&mask, &config.draw(seed, 0, r, "cell")))
            .collect::<tenas_core::Result<Vec<Score>>>()
            .map_err(Error::from)?;
        Ok(write_json(&dir.join(UNIT_FILE), &scores)?)
    })?;
    let Units::Done(dirs) = units else {
        return Ok(());
    };
    let scores = dirs
        .iter()
        .map(|d| read_json::<Vec<Score>>(&d.join(UNIT_FILE)))
        .collect::<Result<Vec<_>>>()?;
    let bench = table_source(params.table.as_deref()).load()?;
    let entries = cells
        .iter()
        .map(|a| bench.lookup(&a.to_string()))
        .collect::<tenas_core::Result<Vec<_>>>()?;
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
    let rows: Vec<CellRecord> = entries
        .iter()
        .zip(scores)
        .flat_map(|(entry, cell_scores)| {
            cell_scores
                .iter()
                .enumerate()
                .map(move |(r, s)| CellRecord::new(seed, entry, r, s))
        })
        .collect();
    write_rows(&rows, &ctx.table_path(names::CELLS))
}

fn write_correlation_table(
    ctx: &StageContext<'_>,
    seed: u64,
    rows: &[CorrelationRow],
) -> Result<()> {
    let records: Vec<CorrelationRecord> = rows.iter().map(|r| r.record(seed)).collect();
    write_rows(&records, &ctx.table_path(names::CORRELATION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(src: &str) -> std::result::Result<Value, ParamError> {
        let stage = CorrelationStage;
        stage.resolve_params(&src.parse().expect("TOML"))
    }

    #[test]
    fn range_errors_name_the_range_and_the_value() {
        let err = resolve("cells = 20000").unwrap_err();
        assert_eq!(err.key, "cells");
        assert!(
            err.message.contains("between 1 and 15625, got 20000"),
            "{}",
            err.message
        );
        let err = resolve("batch = 1").unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.message.as_str()),
            ("batch", "`batch` must be at least 2, got 1")
        );
        assert!(resolve("cells = 12\nbatch = 2").is_ok());
    }
}
