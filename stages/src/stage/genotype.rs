//! The `genotype` stage: exports a DARTS search's final cell pair as the `Genotype(...)` text
//! the DARTS evaluation code trains from scratch, as JSON, and as a row of the `result` table.
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::prune::{SearchOutput, SEARCH_FILE};
use super::{input, read_json, write_json};
use crate::error::{Error, Result};
use crate::space::darts_arch::Genotype;
use crate::table::{read_parquet, Columns};

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
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
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
        Error::Invalid(format!(
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
    let mut cols = Columns::default();
    cols.str("experiment", &export.experiment);
    cols.u64("seed", export.seed);
    cols.str("dataset", &export.dataset);
    cols.str("genotype", &export.text);
    cols.str("normal", &gene(&export.genotype.normal));
    cols.str("reduce", &gene(&export.genotype.reduce));
    cols.f64("search_seconds", search.wall_seconds);
    cols.u64("candidates_scored", search.candidates_scored as u64);
    cols.str(
        "device",
        ctx.settings()
            .device
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or("cpu"),
    );
    cols.write_parquet(&ctx.table_path("result"))
}

/// `(seed, genotype text, search seconds)` of every genotype row under a run's `result/`
/// folder, by seed; rows of other result kinds are skipped.
pub fn read_genotypes(dir: &Path) -> Result<Vec<(u64, String, f64)>> {
    let mut rows = Vec::new();
    for file in super::bench::walk_parquet(dir) {
        let df = read_parquet(&file)?;
        if df.column("genotype").is_err() {
            continue;
        }
        for i in 0..df.height() {
            rows.push((
                df.column("seed")?.u64()?.get(i).unwrap_or_default(),
                df.column("genotype")?
                    .str()?
                    .get(i)
                    .unwrap_or_default()
                    .to_string(),
                df.column("search_seconds")?
                    .f64()?
                    .get(i)
                    .unwrap_or(f64::NAN),
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    Ok(rows)
}

/// One block per seed: the genotype text on its own line, ready to paste into `genotypes.py`.
pub fn format_genotypes(rows: &[(u64, String, f64)]) -> String {
    rows.iter()
        .map(|(seed, text, seconds)| format!("seed {seed} (search {seconds:.1} s):\n{text}\n"))
        .collect()
}
