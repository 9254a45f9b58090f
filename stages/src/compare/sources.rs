//! Which runs a comparison reads: experiment files, run ids or results folders, resolved
//! against a store, each with its configuration (the run's params without the seeds).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde_json::{json, Value};
use tenas_pipeline::{canonical_json, sha256_hex, RunRecord, RunStatus, Store};

use crate::error::{Error, Result};
use crate::stage::bench::{read_results, ResultRow};
use crate::stage::genotype::read_genotypes;
use crate::table::read_parquet;

/// One run's tables and what configured it.
pub struct RunData {
    pub experiment: String,
    pub run_id: String,
    /// Short hash of the params and device: runs that differ only in seeds share it.
    pub config: String,
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
            vec![results_folder(path)?]
        } else {
            vec![run_by_id(store, source)?]
        };
        runs.extend(found);
    }
    if runs.is_empty() {
        return Err(Error::Invalid(format!(
            "no complete runs found for {} in the store {}",
            sources.join(", "),
            store.root().display()
        )));
    }
    // A run named by two sources counts once, where it first appears.
    let mut seen = BTreeSet::new();
    runs.retain(|r| seen.insert((r.experiment.clone(), r.run_id.clone())));
    Ok(runs)
}

fn experiment_runs(store: &Store, file: &Path) -> Result<Vec<RunData>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| Error::data(file, format!("malformed TOML: {e}")))?;
    let name = table
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .ok_or_else(|| Error::data(file, "no experiment name"))?;
    let records = RunRecord::load_all(store, &name).map_err(pipeline_error)?;
    let runs: Vec<RunData> = records
        .into_iter()
        .filter(|r| r.status == RunStatus::Complete)
        .filter_map(|r| {
            let dir = store.root().join(r.results.as_ref()?);
            Some(load(r, dir))
        })
        .collect::<Result<_>>()?;
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

fn run_by_id(store: &Store, id: &str) -> Result<RunData> {
    for experiment in RunRecord::experiments(store).map_err(pipeline_error)? {
        let path = RunRecord::path(store, &experiment, id);
        if path.is_file() {
            let record = read_record(&path)?;
            let dir = record
                .results
                .as_ref()
                .map(|r| store.root().join(r))
                .ok_or_else(|| Error::data(&path, "the run has no collected results"))?;
            return load(record, dir);
        }
    }
    Err(Error::Invalid(format!(
        "`{id}` is neither an experiment file, a results folder nor a run id in {}",
        store.root().display()
    )))
}

/// A results folder inside a store: its run record is `runs/<experiment>/<run-id>.json`.
fn results_folder(dir: &Path) -> Result<RunData> {
    let dir = dir
        .canonicalize()
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    let run_id = name_of(&dir);
    let experiment_dir = dir.parent().ok_or_else(|| not_results(&dir))?;
    let experiment = name_of(experiment_dir);
    let store_root = experiment_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| not_results(&dir))?;
    let path = store_root
        .join("runs")
        .join(&experiment)
        .join(format!("{run_id}.json"));
    if !path.is_file() {
        return Err(not_results(&dir));
    }
    load(read_record(&path)?, dir)
}

fn not_results(dir: &Path) -> Error {
    Error::data(
        dir,
        "not a results folder of a store (expected <store>/results/<experiment>/<run-id>)",
    )
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_record(path: &Path) -> Result<RunRecord> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, format!("malformed run record: {e}")))
}

fn pipeline_error(e: tenas_pipeline::Error) -> Error {
    Error::Invalid(e.to_string())
}

fn load(record: RunRecord, dir: PathBuf) -> Result<RunData> {
    let config_value = json!({ "params": record.params, "device": record.device });
    let config = sha256_hex(canonical_json(&config_value).as_bytes())[..10].to_string();
    let mut params = BTreeMap::new();
    for (stage, values) in &record.params {
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
        experiment: record.experiment,
        run_id: record.run_id,
        config,
        params,
        results: read_results(&dir.join("result"))?,
        genotypes: read_genotypes(&dir.join("result"))?,
        candidates: read_table(&dir.join("candidates"))?,
        cells: read_table(&dir.join("cells"))?,
        correlation: read_table(&dir.join("correlation"))?,
    })
}

/// Every Parquet part under a table folder, stacked (seed folders in order).
pub fn read_table(dir: &Path) -> Result<Option<DataFrame>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut frame: Option<DataFrame> = None;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Invalid(e.to_string()))?;
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
