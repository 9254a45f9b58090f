//! The `prune` stage: the TE-NAS round loop on NAS-Bench-201, one cached unit per candidate.
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::supernet::SupernetOutput;
use super::{read_json, write_json};
use crate::data::cifar::ImagePool;
use crate::device;
use crate::error::{Error, Result};
use crate::proxy::ntk::NtkMode;
use crate::prune::rule::{
    round_decimal_numpy, round_decimal_python, Decision, RuleConfig, TieRule,
};
use crate::prune::score::{Draw, Sampling, Score, ScoreConfig, Scorer};
use crate::prune::search::{self, ChoiceScores};
use crate::space::nb201_arch::Op;
use crate::space::nb201_net::{initial_mask, Mask};
use crate::table;

/// The stage's params (TOML table `[prune]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneParams {
    /// Images per NTK batch.
    pub batch: usize,
    /// Repeats per candidate, averaged.
    pub repeat: usize,
    /// Decimal places of the per-repeat relative changes and significant figures for ranking.
    pub precision: u32,
    /// Ops pruned per edge per round.
    pub prune_number: usize,
    pub ntk: NtkMode,
    pub sampling: Sampling,
    /// Crops per linear-region batch.
    pub lr_samples: usize,
    /// Linear-region batches per repeat.
    pub lr_batches: usize,
    /// Side of the linear-region crops.
    pub lr_crop: usize,
    /// When two candidates share a rank: `reference` (equal unrounded means, as the published
    /// code compares) or `rounded_key` (equal values at `precision` significant figures).
    pub ties: TieRule,
}

impl Default for PruneParams {
    fn default() -> Self {
        PruneParams {
            batch: 72,
            repeat: 3,
            precision: 3,
            prune_number: 1,
            ntk: NtkMode::Summed,
            sampling: Sampling::Shared,
            lr_samples: 1000,
            lr_batches: 3,
            lr_crop: 3,
            ties: TieRule::Reference,
        }
    }
}

/// What the stage leaves besides its tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchOutput {
    pub arch: String,
    pub rounds: usize,
    pub candidates_scored: usize,
    pub wall_seconds: f64,
}

pub struct PruneStage;

impl Stage for PruneStage {
    fn kind(&self) -> &'static str {
        "prune"
    }
    /// 2: weight gradients summed in a different order (last-bit differences in κ).
    /// 3: CPU Jacobians row by row in batch-last layout (sums grouped differently again).
    fn version(&self) -> u32 {
        3
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
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<PruneParams>(params)?;
        let p: PruneParams = serde_json::from_value(value.clone()).expect("just resolved");
        for (key, ok) in [
            ("batch", p.batch >= 2),
            ("repeat", p.repeat >= 1),
            ("prune_number", p.prune_number >= 1),
            ("lr_samples", p.lr_samples >= 1),
            ("lr_batches", p.lr_batches >= 1),
            ("lr_crop", (1..=32).contains(&p.lr_crop)),
        ] {
            if !ok {
                return Err(ParamError::new(key, format!("`{key}` is out of range")));
            }
        }
        Ok(value)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let started = Instant::now();
    let params: PruneParams = ctx.params_as().map_err(|e| Error::Invalid(e.to_string()))?;
    let seed = ctx
        .seed()
        .ok_or_else(|| Error::Invalid("the prune stage needs a seed".into()))?;
    let data_dir = input(ctx, "dataset")?;
    let data: DatasetOutput = read_json(&data_dir.join(DatasetOutput::FILE))?;
    let net: SupernetOutput = read_json(&input(ctx, "supernet")?.join(SupernetOutput::FILE))?;
    let pool = ImagePool::load(&data_dir.join(DatasetOutput::POOL))?;
    let config = ScoreConfig {
        num_classes: data.num_classes,
        channels: net.channels,
        layers: net.layers,
        batch: params.batch,
        repeat: params.repeat,
        ntk: params.ntk,
        init: net.init,
        sampling: params.sampling,
        lr_samples: params.lr_samples,
        lr_batches: params.lr_batches,
        lr_crop: params.lr_crop,
    };
    let scorer = Scorer::new(config, pool.view(), device::current());
    let mut log = RoundLog::default();
    let mut mask = initial_mask();
    let mut round = 0;
    while !search::is_single_path(&mask) {
        let scores = score_round(ctx, &scorer, seed, round, &mask)?;
        let rule = RuleConfig {
            precision: params.precision,
            tie_rule: params.ties,
        };
        let outcome = search::decide(&mask, &scores, rule, params.prune_number)?;
        log.record(round, seed, &scores, &outcome.decisions, &params);
        mask = outcome.next;
        log.record_mask(round, &mask);
        round += 1;
    }
    let arch = search::arch_of(&mask)?.to_string();
    ctx.progress().log(format!("seed {seed}: found {arch}"));
    let candidates_scored = log.candidates;
    log.write(ctx)?;
    let output = SearchOutput {
        arch,
        rounds: round,
        candidates_scored,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&ctx.out_dir().join(SEARCH_FILE), &output)
}

pub const SEARCH_FILE: &str = "search.json";

fn input<'c>(ctx: &'c StageContext<'_>, name: &str) -> Result<&'c Path> {
    ctx.input(name).map_err(|e| Error::Invalid(e.to_string()))
}

/// Scores every choice of the round, reading finished units from the store.
fn score_round(
    ctx: &StageContext<'_>,
    scorer: &Scorer,
    seed: u64,
    round: usize,
    mask: &Mask,
) -> Result<Vec<ChoiceScores>> {
    let config = scorer.config();
    let choices = search::choices(mask);
    let base = json!({ "config": config, "mask": mask, "round": round });
    let origin: Option<Vec<Score>> = match config.sampling {
        Sampling::Shared => {
            let descriptors: Vec<Value> = (0..config.repeat)
                .map(|r| json!({ "origin": base, "repeat": r }))
                .collect();
            let dirs = ctx
                .units("origin", &descriptors, |r, dir| {
                    let draw = config.draw(seed, round, r, "origin");
                    Ok(write_json(
                        &dir.join(UNIT_FILE),
                        &scorer.score(mask, &draw)?,
                    )?)
                })
                .map_err(|e| Error::Invalid(e.to_string()))?;
            Some(
                dirs.iter()
                    .map(|d| read_json(&d.join(UNIT_FILE)))
                    .collect::<Result<_>>()?,
            )
        }
        Sampling::PerCandidate => None,
    };
    let descriptors: Vec<Value> = choices
        .iter()
        .map(|c| json!({ "candidate": base, "edge": c.edge, "op": c.op }))
        .collect();
    let dirs = ctx
        .units("candidate", &descriptors, |i, dir| {
            let choice = choices[i];
            let pruned = search::without(mask, choice);
            let mut out = CandidateUnit::default();
            for r in 0..config.repeat {
                let draw: Draw = config.draw(seed, round, r, &choice.label());
                out.pruned.push(scorer.score(&pruned, &draw)?);
                if config.sampling == Sampling::PerCandidate {
                    out.origin.push(scorer.score(mask, &draw)?);
                }
            }
            Ok(write_json(&dir.join(UNIT_FILE), &out)?)
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
    choices
        .iter()
        .zip(&dirs)
        .map(|(&choice, dir)| {
            let unit: CandidateUnit = read_json(&dir.join(UNIT_FILE))?;
            let origin = origin.clone().unwrap_or(unit.origin);
            Ok(ChoiceScores {
                choice,
                origin,
                pruned: unit.pruned,
            })
        })
        .collect()
}

const UNIT_FILE: &str = "scores.json";

#[derive(Default, Serialize, Deserialize)]
struct CandidateUnit {
    /// Only under per-candidate sampling; shared sampling scores the origin once per repeat.
    origin: Vec<Score>,
    pruned: Vec<Score>,
}

/// Rows of the `candidates` and `rounds` tables.
#[derive(Default)]
struct RoundLog {
    candidates: usize,
    cand: table::Columns,
    rounds: table::Columns,
}

impl RoundLog {
    fn record(
        &mut self,
        round: usize,
        seed: u64,
        scores: &[ChoiceScores],
        decisions: &[Decision],
        params: &PruneParams,
    ) {
        self.candidates += scores.len();
        let precision = params.precision;
        for (s, d) in scores.iter().zip(decisions) {
            for r in 0..s.pruned.len() {
                let (o, p) = (&s.origin[r], &s.pruned[r]);
                let c = &mut self.cand;
                c.u64("round", round as u64);
                c.u64("edge", s.choice.edge as u64);
                c.str("op", Op::ALL[s.choice.op].name());
                c.u64("repeat", r as u64);
                c.u64("seed", seed);
                c.f64("kappa_orig", o.kappa);
                c.f64("kappa_pruned", p.kappa);
                c.u64("regions_orig", o.regions.regions);
                c.u64("regions_pruned", p.regions.regions);
                c.bool(
                    "regions_saturated",
                    o.regions.saturated() || p.regions.saturated(),
                );
                c.f64(
                    "delta_kappa",
                    round_decimal_numpy((o.kappa - p.kappa) / o.kappa, precision),
                );
                c.f64(
                    "delta_regions",
                    round_decimal_python(
                        (o.regions.regions as f64 - p.regions.regions as f64)
                            / o.regions.regions as f64,
                        precision,
                    ),
                );
                c.f64("mean_delta_kappa", d.delta_kappa);
                c.f64("mean_delta_regions", d.delta_regions);
                c.u64("rank_kappa", d.rank_kappa as u64);
                c.u64("rank_regions", d.rank_regions as u64);
                c.u64("rank_sum", d.rank_sum as u64);
                c.bool("pruned", d.pruned);
            }
        }
    }

    fn record_mask(&mut self, round: usize, mask: &Mask) {
        for (edge, row) in mask.iter().enumerate() {
            for (op, &active) in row.iter().enumerate() {
                self.rounds.u64("round", round as u64);
                self.rounds.u64("edge", edge as u64);
                self.rounds.str("op", Op::ALL[op].name());
                self.rounds.bool("active", active);
            }
        }
    }

    fn write(self, ctx: &StageContext<'_>) -> Result<()> {
        self.cand.write_parquet(&ctx.table_path("candidates"))?;
        self.rounds.write_parquet(&ctx.table_path("rounds"))
    }
}
