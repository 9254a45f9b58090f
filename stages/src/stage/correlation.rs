//! The `correlation` stage: how well training-free proxies rank NAS-Bench-201 cells.
//!
//! TE-NAS's pair scores each selected cell's single-path networks (the search's C=3 NTK net
//! and C=1 thin net with only that cell's ops) `repeat` times; the cell proxies score the cell
//! once on NAS-Bench-201's network. Kendall's τ and Spearman's ρ of each predictor (TE-NAS's,
//! every component, every combination) against the benchmark accuracies come with
//! percentile-bootstrap intervals. Every cell is a cached unit (one for TE-NAS's scores, one
//! for all its cell-proxy components) keyed by its arch and the score settings, not by how
//! many cells were asked for, and the sample is a prefix of one seeded permutation of the
//! space, so a larger study reuses every cell of a smaller one. Combinations are computed from
//! the cached components and cost no scoring.
mod cells;
mod pick;
mod proxies;
mod study;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext, Units};

use super::bench::{result_row, table_source, SearchCost};
use super::scoring::{ScoreSettings, ScoringInputs};
use super::{check_range, params, read_json, write_json};
use crate::error::{Error, Result};
use crate::table::{names, write_rows, Columns};
use proxies::{ProxyBench, ProxyUnit};
use tenas_core::bench::nb201::BenchEntry;
use tenas_core::data::sample::Augmentation;
use tenas_core::proxy::ntk::NtkMode;
use tenas_core::proxy::score::{Sampling, Score};
use tenas_core::proxy::Combination;
use tenas_core::space::nb201_arch::single_path_mask;
use tenas_core::space::nb201_benchmark::BenchmarkNet;
use tenas_core::space::nb201_net::Nb201Net;
use tenas_core::space::Space;
use tenas_core::{device, seeds};

pub use cells::{select_cells, Cells, SPACE_SIZE};
pub use proxies::{ProxyNetwork, ProxySelection, TENAS};
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
    /// What scores the cells: `tenas` (κ and regions) and any cell proxy by name.
    #[serde(skip_serializing_if = "is_tenas_only")]
    pub proxies: Vec<String>,
    /// The network size the proxies run at.
    #[serde(skip_serializing_if = "is_default")]
    pub network: ProxyNetwork,
    /// Images per cell-proxy batch.
    #[serde(skip_serializing_if = "is_default_proxy_batch")]
    pub proxy_batch: usize,
    /// Combinations of the study's predictors, each reported as a predictor of its own
    /// (`az_nas` is added whenever the `az_nas` proxy runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub combine: Vec<Combination>,
    /// Sample and pick: the predictor (a component or combination) whose first-ranked cell
    /// of the sample is the seed's found cell, written to the `result` table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pick: Option<String>,
}

/// AZ-NAS's protocol batch.
const DEFAULT_PROXY_BATCH: usize = 64;

// Defaults stay out of the serialized params, so studies that predate them keep their keys.
fn is_tenas_only(proxies: &[String]) -> bool {
    proxies == [TENAS]
}
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
fn is_default_proxy_batch(batch: &usize) -> bool {
    *batch == DEFAULT_PROXY_BATCH
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
            proxies: vec![TENAS.to_string()],
            network: ProxyNetwork::Tenas,
            proxy_batch: DEFAULT_PROXY_BATCH,
            combine: Vec::new(),
            pick: None,
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

    /// The declared combinations, after AZ-NAS's own when its proxy runs; each is checked
    /// against the predictors before it (so one may combine another), and `pick` against
    /// them all.
    fn combinations(
        &self,
        selection: &ProxySelection,
    ) -> std::result::Result<Vec<Combination>, ParamError> {
        let mut available: Vec<String> = selection
            .predictors()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let runs_az_nas = selection.cell.iter().any(|p| p.name() == "az_nas");
        let builtin = runs_az_nas.then(Combination::az_nas);
        let mut out = Vec::new();
        for c in builtin.into_iter().chain(self.combine.iter().cloned()) {
            if available.contains(&c.name) {
                return Err(ParamError::new(
                    "combine",
                    format!("{:?} is already a predictor of this study", c.name),
                ));
            }
            let names: Vec<&str> = available.iter().map(String::as_str).collect();
            c.check(&names)
                .map_err(|e| ParamError::new("combine", e.to_string()))?;
            available.push(c.name.clone());
            out.push(c);
        }
        match &self.pick {
            Some(name) if !available.contains(name) => Err(ParamError::new(
                "pick",
                format!(
                    "{name:?} is not a predictor of this study; it has {}",
                    available.join(", ")
                ),
            )),
            _ => Ok(out),
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
    /// `cells` is a path unless it is a count, `"all"` or a range.
    fn resolve_paths(&self, params: &mut toml::Table, base: &std::path::Path) {
        tenas_pipeline::resolve_path_param(params, "table", base);
        let cells = params.get("cells").and_then(|c| c.as_str());
        if cells.is_some_and(|c| Cells::Named(c.into()).file().is_some()) {
            tenas_pipeline::resolve_path_param(params, "cells", base);
        }
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<CorrelationParams>(params)?;
        let p: CorrelationParams = serde_json::from_value(value.clone()).expect("just resolved");
        p.score_settings().check()?;
        check_range("resamples", p.resamples, 1..)?;
        check_range("proxy_batch", p.proxy_batch, 2..)?;
        p.combinations(&ProxySelection::parse(&p.proxies)?)?;
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
        if let Some(file) = p.cells.file() {
            p.cells = Cells::Named(format!("sha256:{}", hash(Path::new(file))));
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
    let selection = ProxySelection::parse(&params.proxies).map_err(param_error)?;
    let combinations = params.combinations(&selection).map_err(param_error)?;
    let inputs = ScoringInputs::load(ctx, &params.score_settings())?;
    if inputs.net.space != Space::Nb201 {
        return Err(Error::invalid(format!(
            "the correlation stage scores NAS-Bench-201 cells, but the supernet's space is {:?} (set [supernet] space = \"nb201\")",
            inputs.net.space
        )));
    }
    let supernet = (inputs.net.channels, inputs.net.layers);
    let (channels, layers) = params.network.size(supernet);
    if selection.tenas && (channels, layers) != supernet {
        return Err(Error::invalid(format!(
            "TE-NAS's κ and regions are scored on the supernet's networks (C={}, N={}), not at \
             network = {:?}'s C={channels}, N={layers}: set [supernet] channels = {channels} and \
             layers = {layers}, or leave \"tenas\" out of proxies",
            supernet.0, supernet.1, params.network
        )));
    }
    let cells = select_cells(&params.cells, seed)?;
    let config = &inputs.config;
    let tenas_units = if selection.tenas { cells.len() } else { 0 };
    let scorer = match selection.tenas {
        true => Some(inputs.scorer(ctx, Nb201Net::new)?),
        false => None,
    };
    let bench = match selection.cell.is_empty() {
        true => None,
        false => Some(ProxyBench::new(
            BenchmarkNet {
                channels,
                layers,
                num_classes: config.num_classes,
                side: inputs.pool().dataset.side(),
            },
            params.proxy_batch,
            selection.data_batches(),
            seeds::derive(seed, &[&"proxies"]),
            inputs.pool(),
            device::for_settings(&ctx.settings().device)?,
        )?),
    };
    let mut descriptors: Vec<Value> = Vec::new();
    if selection.tenas {
        descriptors.extend(
            cells
                .iter()
                .map(|a| json!({ "config": config, "arch": a.to_string() })),
        );
    }
    if let Some(bench) = &bench {
        descriptors.extend(
            cells
                .iter()
                .map(|a| selection.descriptor(&bench.network, bench.batch, a)),
        );
    }
    let units = ctx.units("cell", &descriptors, |i, dir| match (&scorer, &bench) {
        (Some(scorer), _) if i < tenas_units => {
            let mask = single_path_mask(&cells[i]);
            let scores = (0..config.repeat)
                .map(|r| scorer.score(&mask, &config.draw(seed, 0, r, "cell")))
                .collect::<tenas_core::Result<Vec<Score>>>()
                .map_err(Error::from)?;
            Ok(write_json(&dir.join(UNIT_FILE), &scores)?)
        }
        (_, Some(bench)) => {
            let unit = bench.score(&selection, &cells[i - tenas_units])?;
            Ok(write_json(&dir.join(ProxyUnit::FILE), &unit)?)
        }
        _ => unreachable!("every unit index belongs to TE-NAS's or the cell proxies' units"),
    })?;
    let Units::Done(dirs) = units else {
        return Ok(());
    };
    let (tenas_dirs, proxy_dirs) = dirs.split_at(tenas_units);
    let scores = tenas_dirs
        .iter()
        .map(|d| read_json::<Vec<Score>>(&d.join(UNIT_FILE)))
        .collect::<Result<Vec<_>>>()?;
    let components = selection.components();
    let proxy_units = proxy_dirs
        .iter()
        .map(|d| read_json::<ProxyUnit>(&d.join(ProxyUnit::FILE)))
        .collect::<Result<Vec<_>>>()?;
    let proxy_values = proxy_units
        .iter()
        .zip(proxy_dirs)
        .map(|(unit, dir)| {
            unit.values_for(&components).ok_or_else(|| {
                Error::from(tenas_core::Error::corrupt_artifact(
                    dir.join(ProxyUnit::FILE),
                    format!(
                        "holds the components {:?}, not {components:?}",
                        unit.components
                    ),
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let table = table_source(params.table.as_deref()).load()?;
    let entries = cells
        .iter()
        .map(|a| table.lookup(&a.to_string()))
        .collect::<tenas_core::Result<Vec<_>>>()?;
    let tenas_scores = selection.tenas.then_some(scores.as_slice());
    let mut study = Study::new(&entries);
    if let Some(scores) = tenas_scores {
        study = study.with_tenas(scores);
    }
    for (k, component) in components.iter().enumerate() {
        study = study.with_predictor(component, proxy_values.iter().map(|v| v[k]).collect());
    }
    for combination in &combinations {
        study = study.with_combination(combination)?;
    }
    // Every component and combination gets a column; TE-NAS's are its κ and regions.
    let columns: Vec<(&str, &[f64])> = components
        .iter()
        .copied()
        .chain(combinations.iter().map(|c| c.name.as_str()))
        .filter_map(|name| study.predictor(name).map(|v| (name, v)))
        .collect();
    write_cells_table(ctx, seed, &entries, tenas_scores, &columns)?;
    let rows = study.correlations(params.resamples, seed)?;
    ctx.progress().log(format_correlations(&rows));
    if let Some(line) = degenerate_line(&study) {
        ctx.progress().log(line);
    }
    if !proxy_units.is_empty() {
        ctx.progress().log(seconds_line(&proxy_units));
    }
    write_correlation_table(ctx, seed, &rows)?;
    match &params.pick {
        Some(name) => write_pick(ctx, seed, name, &study, &entries, &proxy_units),
        None => Ok(()),
    }
}

/// The `result` row of sample-and-pick: the cell `name` ranks first among the sample. Its
/// search seconds are the cell proxies' recorded compute seconds (TE-NAS's scores record
/// none), so a rerun from cached cells reports what the search cost.
fn write_pick(
    ctx: &StageContext<'_>,
    seed: u64,
    name: &str,
    study: &Study,
    entries: &[BenchEntry],
    units: &[ProxyUnit],
) -> Result<()> {
    let values = study.predictor(name).ok_or_else(|| {
        Error::invalid(format!("pick: {name:?} is not a predictor of this study"))
    })?;
    let best = pick::best_cell(values)
        .ok_or_else(|| Error::invalid("pick: the study's sample is empty"))?;
    let entry = &entries[best];
    let cost = SearchCost {
        seconds: units.iter().flat_map(|u| &u.seconds).map(|(_, s)| s).sum(),
        prune_seconds: 0.0,
        candidates: entries.len(),
    };
    let row = result_row(ctx, seed, entry, cost)?;
    ctx.progress().log(format!(
        "picked by {name} among {} cells: {} (NB201 #{}, CIFAR-10 {:.2})",
        entries.len(),
        entry.arch,
        entry.index,
        entry.cifar10
    ));
    write_rows(std::slice::from_ref(&row), &ctx.table_path(names::RESULT))
}

fn param_error(e: ParamError) -> Error {
    tenas_core::Error::invalid_param(e.key, e.message).into()
}

/// "−∞ (degenerate) cells: jacov 5, …", or nothing when every value is finite.
fn degenerate_line(study: &Study) -> Option<String> {
    let counts = study.degenerate_counts();
    (!counts.is_empty()).then(|| {
        let listed: Vec<String> = counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
        format!("cells scored −∞ (degenerate): {}", listed.join(", "))
    })
}

/// Each cell proxy's mean seconds per cell, as its units recorded when they were computed.
fn seconds_line(units: &[ProxyUnit]) -> String {
    let names: Vec<&str> = units[0].seconds.iter().map(|(n, _)| n.as_str()).collect();
    let listed: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let total: f64 = units
                .iter()
                .filter_map(|u| u.seconds.get(k))
                .map(|s| s.1)
                .sum();
            format!("{name} {:.2}", total / units.len() as f64)
        })
        .collect();
    format!("cell-proxy seconds per cell: {}", listed.join(", "))
}

/// The `cells` table: a row per cell and TE-NAS repeat (a row per cell without TE-NAS), then
/// one column per cell-proxy component and combination (`columns`, one value per cell). Those
/// hold one value per cell, so it sits on the cell's repeat-0 row and the others are null.
fn write_cells_table(
    ctx: &StageContext<'_>,
    seed: u64,
    entries: &[BenchEntry],
    tenas: Option<&[Vec<Score>]>,
    columns: &[(&str, &[f64])],
) -> Result<()> {
    let path = ctx.table_path(names::CELLS);
    if let (Some(scores), true) = (tenas, columns.is_empty()) {
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
        return write_rows(&rows, &path);
    }
    let mut table = Columns::default();
    for (i, entry) in entries.iter().enumerate() {
        let repeats = tenas.map_or(1, |t| t[i].len());
        for r in 0..repeats {
            table.u64("seed", seed);
            table.str("arch", &entry.arch);
            table.u64("nb201_index", entry.index as u64);
            table.u64("repeat", r as u64);
            if let Some(scores) = tenas {
                let s = &scores[i][r];
                table.f64("kappa", s.kappa);
                table.u64("regions", s.regions.regions);
                table.bool("regions_saturated", s.regions.saturated());
            }
            for (name, values) in columns {
                table.opt_f64(name, (r == 0).then(|| values[i]));
            }
            table.f64("cifar10_test", entry.cifar10);
            table.f64("cifar100_test", entry.cifar100);
            table.f64("imagenet16_120_test", entry.imagenet16_120);
        }
    }
    table.write_parquet(&path)
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

    #[test]
    fn proxies_and_combinations_are_checked_when_the_study_is_planned() {
        let ok = "proxies = [\"tenas\", \"zico\"]\n[[combine]]\nname = \"mine\"\ncomponents = [\"-kappa\", \"zico\"]\naggregation = \"rank_sum\"";
        let resolved = resolve(ok).expect("a valid study");
        assert_eq!(resolved["combine"][0]["name"], "mine");
        let err = resolve("proxies = [\"tenas\", \"zen_nas\"]").unwrap_err();
        assert_eq!(err.key, "proxies");
        assert!(
            err.message.contains("unknown proxy \"zen_nas\""),
            "{}",
            err.message
        );
        let unknown = ok.replace("\"zico\"]\naggregation", "\"zen\"]\naggregation");
        let err = resolve(&unknown).unwrap_err();
        assert_eq!(err.key, "combine");
        assert!(
            err.message.contains("unknown component \"zen\""),
            "{}",
            err.message
        );
        let err = resolve("proxies = [\"az_nas\"]\n[[combine]]\nname = \"az_nas\"\ncomponents = [\"trainability\"]\naggregation = \"rank_sum\"").unwrap_err();
        assert!(
            err.message.contains("already a predictor"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_pick_must_name_a_predictor_of_the_study() {
        let study = "proxies = [\"az_nas\", \"zico\"]";
        for name in ["az_nas", "zico", "trainability"] {
            let resolved = resolve(&format!("{study}\npick = \"{name}\"")).expect(name);
            assert_eq!(resolved["pick"], name);
        }
        let err = resolve(&format!("{study}\npick = \"synflow\"")).unwrap_err();
        assert_eq!(err.key, "pick");
        assert!(
            err.message.contains("\"synflow\" is not a predictor") && err.message.contains("zico"),
            "{}",
            err.message
        );
    }

    #[test]
    fn default_proxy_settings_leave_the_key_as_it_was() {
        let resolved = resolve("cells = 12").unwrap();
        for key in ["proxies", "network", "proxy_batch", "combine", "pick"] {
            assert!(resolved.get(key).is_none(), "{key} in {resolved}");
        }
    }
}
