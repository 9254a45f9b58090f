//! The `genotype` stage: exports a DARTS search's final cell pair as the `Genotype(...)` text
//! the DARTS evaluation code trains from scratch, as JSON, and as a row of the `result` table.
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::prune::{SearchOutput, SEARCH_FILE};
use super::result::{self, GenotypeResult};
use super::{input, read_json, write_json};
use crate::error::{Error, Result};
use crate::table::{names, write_rows};
use tenas_core::space::darts_arch::Genotype;

/// No settings: the export is fixed by the search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenotypeParams {}

pub struct GenotypeStage;

pub const TEXT_FILE: &str = "genotype.txt";
pub const JSON_FILE: &str = "genotype.json";

/// What `genotype.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenotypeExport {
    pub experiment: String,
    pub seed: u64,
    pub dataset: String,
    pub genotype: Genotype,
    /// The same genotype as DARTS text.
    pub text: String,
}

impl Stage for GenotypeStage {
    fn kind(&self) -> &'static str {
        "genotype"
    }
    fn version(&self) -> u32 {
        1
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["dataset", "prune"]
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        resolve_params_as::<GenotypeParams>(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let data: DatasetOutput = read_json(&input(ctx, "dataset")?.join(DatasetOutput::FILE))?;
    let search: SearchOutput = read_json(&input(ctx, "prune")?.join(SEARCH_FILE))?;
    let genotype = search.genotype.clone().ok_or_else(|| {
        Error::invalid(format!(
            "the prune stage found `{}`, which is not a DARTS genotype (the genotype stage needs [supernet] space = \"darts\")",
            search.arch
        ))
    })?;
    let export = GenotypeExport {
        experiment: ctx.experiment_name().to_string(),
        seed: ctx.seed().unwrap_or_default(),
        dataset: data.dataset.clone(),
        text: genotype.to_string(),
        genotype,
    };
    std::fs::write(ctx.report_path(TEXT_FILE), format!("{}\n", export.text))
        .map_err(|e| Error::io(format!("writing {TEXT_FILE}"), e))?;
    write_json(&ctx.report_path(JSON_FILE), &export)?;
    write_json(&ctx.out_dir().join(JSON_FILE), &export)?;

    let gene = |g: &[(String, usize)]| serde_json::to_string(g).expect("plain data serializes");
    let row = GenotypeResult {
        experiment: export.experiment.clone(),
        seed: export.seed,
        dataset: export.dataset.clone(),
        genotype: export.text.clone(),
        normal: gene(&export.genotype.normal),
        reduce: gene(&export.genotype.reduce),
        search_seconds: search.wall_seconds,
        candidates_scored: search.candidates_scored as u64,
        device: super::device_kind(ctx).to_string(),
    };
    write_rows(&[row], &ctx.table_path(names::RESULT))
}

/// `(seed, genotype text, search seconds)` of every genotype row of the `result` table under
/// a run's `result/` folder, by seed.
pub fn read_genotypes(dir: &Path) -> Result<Vec<(u64, String, f64)>> {
    let mut rows: Vec<(u64, String, f64)> = result::read::<GenotypeResult>(dir)?
        .into_iter()
        .map(|r| (r.seed, r.genotype, r.search_seconds))
        .collect();
    rows.sort_by_key(|r| r.0);
    Ok(rows)
}

/// One block per seed: the genotype text on its own line, ready to paste into `genotypes.py`.
pub fn format_genotypes(rows: &[(u64, String, f64)]) -> String {
    rows.iter()
        .map(|(seed, text, seconds)| format!("seed {seed} (search {seconds:.1} s):\n{text}\n"))
        .collect()
}
