//! Which runs a comparison reads: experiment files, run ids or results folders, resolved
//! against a store, each with its configuration (the run's params without the seeds).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::DataFrame;
use serde_json::{json, Value};
use tenas_pipeline::{canonical_json, sha256_hex, Experiment, RunRecord, RunStatus, Store};

use crate::error::{Error, Result};
use crate::stage::bench::{read_results, ResultRow};
use crate::stage::genotype::read_genotypes;
use crate::table::{names, read_parquet};

/// One run's tables and what configured it.
pub struct RunData {
    pub experiment: String,
    pub run_id: String,
    /// Short hash of the params and device: runs that differ only in seeds share it.
    pub config: String,
    /// The configuration's label when it comes from a sweep (`[matrix]`).
    pub matrix_label: Option<String>,
    /// `stage.key` → value, for labelling configurations by what differs.
    pub params: BTreeMap<String, String>,
    pub results: Vec<ResultRow>,
    /// DARTS searches: `(seed, genotype text, search seconds)`.
    pub genotypes: Vec<(u64, String, f64)>,
    /// The prune stage's `candidates` table (all seeds), if the run has one.
    pub candidates: Option<DataFrame>,
    /// A correlation study's per-(cell, repeat) `cells` table, if the run has one.
    pub cells: Option<DataFrame>,
    /// A correlation study's `correlation` table (τ and ρ with intervals), if the run has one.
    pub correlation: Option<DataFrame>,
}

/// Resolves each source: a `.toml` experiment (every complete run of it in the store, oldest
/// first), a run id, or a results folder (`results/<experiment>/<run-id>`, `latest` allowed).
/// Runs keep the order of the sources.
pub fn resolve(store: &Store, sources: &[String]) -> Result<Vec<RunData>> {
    let mut runs = Vec::new();
    for source in sources {
        let path = Path::new(source);
        let found = if source.ends_with(".toml") {
            experiment_runs(store, path)?
        } else if path.is_dir() {
            results_folder(path)?
        } else {
            run_by_id(store, source)?
        };
        runs.extend(found);
    }
    if runs.is_empty() {
        return Err(Error::invalid(format!(
            "no complete runs found for {} in the store {}",
            sources.join(", "),
            store.root().display()
        )));
    }
    // A run named by two sources counts once, where it first appears.
    let mut seen = BTreeSet::new();
    runs.retain(|r| seen.insert((r.experiment.clone(), r.run_id.clone(), r.config.clone())));
    Ok(runs)
}

fn experiment_runs(store: &Store, file: &Path) -> Result<Vec<RunData>> {
    let name = Experiment::name_in(file)?;
    let mut runs = Vec::new();
    for record in RunRecord::load_all(store, &name)? {
        if record.status != RunStatus::Complete {
            continue;
        }
        if let Some(dir) = record.results_dir(store) {
            runs.extend(load(record, &dir)?);
        }
    }
    if runs.is_empty() {
        return Err(Error::data(
            file,
            format!(
                "experiment `{name}` has no complete run in {}",
                store.root().display()
            ),
        ));
    }
    Ok(runs)
}

fn run_by_id(store: &Store, id: &str) -> Result<Vec<RunData>> {
    let record = RunRecord::find(store, id)?.ok_or_else(|| {
        Error::invalid(format!(
            "`{id}` is neither an experiment file, a results folder nor a run id in {}",
            store.root().display()
        ))
    })?;
    let dir = record
        .results_dir(store)
        .ok_or_else(|| Error::invalid(format!("run {id} has no collected results")))?;
    load(record, &dir)
}

fn results_folder(dir: &Path) -> Result<Vec<RunData>> {
    let (store, record) = RunRecord::of_results_folder(dir)?;
    let dir = record
        .results_dir(&store)
        .ok_or_else(|| Error::data(dir, "the run has no collected results"))?;
    load(record, &dir)
}

/// A run's data: one per configuration for a sweep, whose tables lie in its partition.
fn load(record: RunRecord, dir: &Path) -> Result<Vec<RunData>> {
    if record.configurations.is_empty() {
        let params = record.params.clone();
        return Ok(vec![run_data(&record, &params, None, dir)?]);
    }
    record
        .configurations
        .iter()
        .map(|c| {
            let partition = c.config.partition();
            let folder = |table: &str| dir.join(table).join(&partition);
            let mut data = run_data(&record, &c.params, Some(c.config.label.clone()), dir)?;
            data.results = read_results(&folder(names::RESULT))?;
            data.genotypes = read_genotypes(&folder(names::RESULT))?;
            data.candidates = read_table(&folder(names::CANDIDATES))?;
            data.cells = read_table(&folder(names::CELLS))?;
            data.correlation = read_table(&folder(names::CORRELATION))?;
            Ok(data)
        })
        .collect()
}

fn run_data(
    record: &RunRecord,
    stage_params: &BTreeMap<String, Value>,
    label: Option<String>,
    dir: &Path,
) -> Result<RunData> {
    let config_value = json!({ "params": stage_params, "device": record.device });
    let config = sha256_hex(canonical_json(&config_value).as_bytes())[..10].to_string();
    let mut params = BTreeMap::new();
    for (stage, values) in stage_params {
        if let Value::Object(map) = values {
            for (key, value) in map {
                let shown = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                params.insert(format!("{stage}.{key}"), shown);
            }
        }
    }
    Ok(RunData {
        experiment: record.experiment.clone(),
        run_id: record.run_id.clone(),
        config,
        matrix_label: label,
        params,
        results: read_results(&dir.join(names::RESULT))?,
        genotypes: read_genotypes(&dir.join(names::RESULT))?,
        candidates: read_table(&dir.join(names::CANDIDATES))?,
        cells: read_table(&dir.join(names::CELLS))?,
        correlation: read_table(&dir.join(names::CORRELATION))?,
    })
}

/// Every Parquet part under a table folder, stacked (seed folders in order).
pub fn read_table(dir: &Path) -> Result<Option<DataFrame>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut frame: Option<DataFrame> = None;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::invalid(e.to_string()))?;
        if entry.path().extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let part = read_parquet(entry.path())?;
        match frame.as_mut() {
            None => frame = Some(part),
            Some(f) => {
                f.vstack_mut(&part)?;
            }
        }
    }
    Ok(frame)
}
