//! The `bench` stage: looks the found cell up in the NAS-Bench-201 table and writes the
//! `result` table (one row per seed).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::prune::{SearchOutput, SEARCH_FILE};
use super::result::{self, BenchResult};
use super::{input, params, read_json, write_json};
use crate::error::{Error, Result};
use crate::table::{names, write_rows};
use tenas_core::bench::nb201::BenchEntry;
use tenas_core::bench::source::TableSource;

/// Environment variable that overrides the table path.
pub const TABLE_ENV: &str = "TENAS_NB201";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchParams {
    /// NAS-Bench-201 accuracy table, CSV or Parquet; without it, the table tenas ships.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
}

/// The table a stage with param `table` reads: `TENAS_NB201`, else `table`, else the shipped one.
pub fn table_source(table: Option<&Path>) -> TableSource {
    TableSource::choose(std::env::var_os(TABLE_ENV).map(PathBuf::from), table)
}

pub struct BenchStage;

impl Stage for BenchStage {
    fn kind(&self) -> &'static str {
        "bench"
    }
    fn version(&self) -> u32 {
        2
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["dataset", "supernet", "prune"]
    }
    fn resolve_paths(&self, params: &mut toml::Table, base: &std::path::Path) {
        tenas_pipeline::resolve_path_param(params, "table", base);
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        resolve_params_as::<BenchParams>(params)
    }
    /// The table enters the key by content; a missing table is reported when the stage runs,
    /// so the search results before it are still computed and kept.
    fn keyed_params(&self, params: &Value) -> std::result::Result<Value, ParamError> {
        let p: BenchParams = serde_json::from_value(params.clone())
            .map_err(|e| ParamError::new("table", e.to_string()))?;
        let content = table_source(p.table.as_deref())
            .content_sha256()
            .unwrap_or_else(|_| "missing".into());
        Ok(json!({ "table_sha256": content }))
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

/// A found cell's summary: the [`BenchResult`] columns the terminal and `tenas compare` show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultRow {
    pub experiment: String,
    pub seed: u64,
    pub arch: String,
    pub nb201_index: u64,
    pub cifar10: f64,
    pub cifar100: f64,
    pub imagenet16_120: f64,
    pub rank_cifar10: u64,
    pub search_seconds: f64,
    pub device: String,
}

impl From<&BenchResult> for ResultRow {
    fn from(r: &BenchResult) -> Self {
        ResultRow {
            experiment: r.experiment.clone(),
            seed: r.seed,
            arch: r.arch.clone(),
            nb201_index: r.nb201_index,
            cifar10: r.cifar10_test,
            cifar100: r.cifar100_test,
            imagenet16_120: r.imagenet16_120_test,
            rank_cifar10: r.rank_cifar10,
            search_seconds: r.search_seconds,
            device: r.device.clone(),
        }
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let p: BenchParams = params(ctx)?;
    let search: SearchOutput = read_json(&input(ctx, "prune")?.join(SEARCH_FILE))?;
    let table = table_source(p.table.as_deref()).load().map_err(|e| {
        Error::invalid(format!("{e} (the search result is kept in the store: found {}; set {TABLE_ENV} or [bench] table)", search.arch))
    })?;
    let entry: BenchEntry = table.lookup(&search.arch)?;
    let search_cost = SearchCost {
        seconds: search.wall_seconds,
        prune_seconds: ctx.input_manifest("prune")?.wall_seconds,
        candidates: search.candidates_scored,
    };
    let row = result_row(ctx, ctx.seed().unwrap_or_default(), &entry, search_cost)?;
    write_rows(std::slice::from_ref(&row), &ctx.table_path(names::RESULT))?;
    write_json(&ctx.out_dir().join("result.json"), &ResultRow::from(&row))
}

/// What a search cost: its seconds, its prune stage's, and the candidates it scored.
pub(crate) struct SearchCost {
    pub seconds: f64,
    pub prune_seconds: f64,
    pub candidates: usize,
}

/// The `result` row of a search that found `entry`: the cell's accuracies and ranks, the
/// search's cost, and the upstream dataset and supernet stages' seconds.
pub(crate) fn result_row(
    ctx: &StageContext<'_>,
    seed: u64,
    entry: &BenchEntry,
    cost: SearchCost,
) -> Result<BenchResult> {
    let seconds = |input: &str| -> Result<f64> { Ok(ctx.input_manifest(input)?.wall_seconds) };
    Ok(BenchResult {
        experiment: ctx.experiment_name().to_string(),
        seed,
        arch: entry.arch.clone(),
        nb201_index: entry.index as u64,
        cifar10_test: entry.cifar10,
        cifar100_test: entry.cifar100,
        imagenet16_120_test: entry.imagenet16_120,
        rank_cifar10: entry.rank_cifar10 as u64,
        rank_cifar100: entry.rank_cifar100 as u64,
        rank_imagenet16_120: entry.rank_imagenet16_120 as u64,
        cells_in_table: entry.total as u64,
        search_seconds: cost.seconds,
        dataset_seconds: seconds("dataset")?,
        supernet_seconds: seconds("supernet")?,
        prune_seconds: cost.prune_seconds,
        candidates_scored: cost.candidates as u64,
        device: super::device_kind(ctx).to_string(),
    })
}

/// Every NAS-Bench-201 row of the `result` table under a run's `result/` folder, by seed.
pub fn read_results(dir: &Path) -> Result<Vec<ResultRow>> {
    let mut rows: Vec<ResultRow> = result::read::<BenchResult>(dir)?
        .iter()
        .map(ResultRow::from)
        .collect();
    rows.sort_by_key(|r| r.seed);
    Ok(rows)
}

/// The terminal summary: one line per seed, then mean ± std when there are several.
pub fn format_results(rows: &[ResultRow]) -> String {
    let mut out = format!(
        "{:>4}  {:<80}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}\n",
        "seed", "found cell", "index", "C10", "C100", "IN16-120", "search s"
    );
    for r in rows {
        out += &format!(
            "{:>4}  {:<80}  {:>7}  {:>8.2}  {:>8.2}  {:>8.2}  {:>8.1}\n",
            r.seed,
            r.arch,
            r.nb201_index,
            r.cifar10,
            r.cifar100,
            r.imagenet16_120,
            r.search_seconds
        );
    }
    if rows.len() > 1 {
        let stat = |f: fn(&ResultRow) -> f64| {
            let v: Vec<f64> = rows.iter().map(f).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
            format!("{mean:.2}±{:.2}", var.sqrt())
        };
        out += &format!(
            "{:>4}  {:<80}  {:>7}  {:>8}  {:>8}  {:>8}\n",
            "all",
            format!(
                "mean ± std over {} seeds (paper C10: 93.90±0.47)",
                rows.len()
            ),
            "",
            stat(|r| r.cifar10),
            stat(|r| r.cifar100),
            stat(|r| r.imagenet16_120)
        );
    }
    out
}
