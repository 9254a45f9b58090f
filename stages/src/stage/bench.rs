//! The `bench` stage: looks the found cell up in the NAS-Bench-201 table and writes the
//! `result` table (one row per seed).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::prune::{SearchOutput, SEARCH_FILE};
use super::{read_json, write_json};
use crate::bench::nb201::BenchEntry;
use crate::bench::source::TableSource;
use crate::error::{Error, Result};
use crate::table::{read_parquet, Columns};

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
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
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

/// One row of the `result` table.
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

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let p: BenchParams = ctx.params_as().map_err(|e| Error::Invalid(e.to_string()))?;
    let prune_dir = ctx
        .input("prune")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let search: SearchOutput = read_json(&prune_dir.join(SEARCH_FILE))?;
    let table = table_source(p.table.as_deref()).load().map_err(|e| {
        Error::Invalid(format!("{e} (the search result is kept in the store: found {}; set {TABLE_ENV} or [bench] table)", search.arch))
    })?;
    let entry: BenchEntry = table.lookup(&search.arch)?;
    let row = ResultRow {
        experiment: ctx.experiment_name().to_string(),
        seed: ctx.seed().unwrap_or_default(),
        arch: search.arch.clone(),
        nb201_index: entry.index as u64,
        cifar10: entry.cifar10,
        cifar100: entry.cifar100,
        imagenet16_120: entry.imagenet16_120,
        rank_cifar10: entry.rank_cifar10 as u64,
        search_seconds: search.wall_seconds,
        device: ctx
            .settings()
            .device
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or("cpu")
            .to_string(),
    };
    let mut cols = Columns::default();
    cols.str("experiment", &row.experiment);
    cols.u64("seed", row.seed);
    cols.str("arch", &row.arch);
    cols.u64("nb201_index", row.nb201_index);
    cols.f64("cifar10_test", row.cifar10);
    cols.f64("cifar100_test", row.cifar100);
    cols.f64("imagenet16_120_test", row.imagenet16_120);
    cols.u64("rank_cifar10", row.rank_cifar10);
    cols.u64("rank_cifar100", entry.rank_cifar100 as u64);
    cols.u64("rank_imagenet16_120", entry.rank_imagenet16_120 as u64);
    cols.u64("cells_in_table", entry.total as u64);
    cols.f64("search_seconds", row.search_seconds);
    // Compute time of each upstream stage (from its manifest, also when it was cached).
    for input in ["dataset", "supernet", "prune"] {
        let manifest = ctx
            .input_manifest(input)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        cols.f64(&format!("{input}_seconds"), manifest.wall_seconds);
    }
    cols.u64("candidates_scored", search.candidates_scored as u64);
    cols.str("device", &row.device);
    cols.write_parquet(&ctx.table_path("result"))?;
    write_json(&ctx.out_dir().join("result.json"), &row)
}

/// Every `result` row under a run's `result/` folder (all seeds).
pub fn read_results(dir: &Path) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    if !dir.exists() {
        return Ok(rows);
    }
    let mut files: Vec<PathBuf> = walk_parquet(dir);
    files.sort();
    for file in files {
        let df = read_parquet(&file)?;
        // Other result kinds (DARTS genotypes) share the table name.
        if df.column("nb201_index").is_err() {
            continue;
        }
        for i in 0..df.height() {
            let s = |c: &str| -> Result<String> {
                Ok(df.column(c)?.str()?.get(i).unwrap_or_default().to_string())
            };
            let u =
                |c: &str| -> Result<u64> { Ok(df.column(c)?.u64()?.get(i).unwrap_or_default()) };
            let f =
                |c: &str| -> Result<f64> { Ok(df.column(c)?.f64()?.get(i).unwrap_or(f64::NAN)) };
            rows.push(ResultRow {
                experiment: s("experiment")?,
                seed: u("seed")?,
                arch: s("arch")?,
                nb201_index: u("nb201_index")?,
                cifar10: f("cifar10_test")?,
                cifar100: f("cifar100_test")?,
                imagenet16_120: f("imagenet16_120_test")?,
                rank_cifar10: u("rank_cifar10")?,
                search_seconds: f("search_seconds")?,
                device: s("device")?,
            });
        }
    }
    rows.sort_by_key(|r| r.seed);
    Ok(rows)
}

pub(crate) fn walk_parquet(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect()
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
