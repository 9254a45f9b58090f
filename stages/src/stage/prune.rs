//! The `prune` stage: the TE-NAS round loop, one cached unit per candidate. On DARTS the op
//! rounds are followed by the edge-group phase, which keeps two input edges per step node.
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::scoring::{ScoreSettings, ScoringInputs};
use super::{check_range, params, read_json, write_json};
use crate::error::{Error, Result};
use crate::table::{self, names};
use tenas_core::data::sample::Augmentation;
use tenas_core::proxy::ntk::NtkMode;
use tenas_core::proxy::score::{Draw, Sampling, Score, Scorer};
use tenas_core::prune::rounding::{round_decimal_numpy, round_decimal_python};
use tenas_core::prune::rule::{RuleConfig, TieRule};
use tenas_core::prune::search::{self, Choice, ChoiceScores, EdgePhase, RoundRecord};
use tenas_core::space::darts_arch::{DartsMask, Genotype};
use tenas_core::space::darts_net::DartsNet;
use tenas_core::space::nb201_arch::{arch_of, initial_mask};
use tenas_core::space::nb201_net::Nb201Net;
use tenas_core::space::{Space, SpaceMask, SpaceNet};

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
    /// DARTS only: how the edge-group phase visits the step nodes.
    pub edge_phase: EdgePhase,
    /// NTK batch augmentation: `reference` (the published code's flip and padded crop) or
    /// `none`; unset, the dataset's default (only ImageNet16 is augmented).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augmentation>,
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
            edge_phase: EdgePhase::Sequential,
            augment: None,
        }
    }
}

impl PruneParams {
    fn score_settings(&self) -> ScoreSettings {
        ScoreSettings {
            batch: self.batch,
            repeat: self.repeat,
            ntk: self.ntk,
            sampling: self.sampling,
            lr_samples: self.lr_samples,
            lr_batches: self.lr_batches,
            lr_crop: self.lr_crop,
            augment: self.augment,
        }
    }
}

/// What the stage leaves besides its tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchOutput {
    /// NAS-Bench-201: the arch string; DARTS: the genotype text.
    pub arch: String,
    /// DARTS only: the genotype, also as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genotype: Option<Genotype>,
    pub rounds: usize,
    pub candidates_scored: usize,
    pub wall_seconds: f64,
}

/// The search; it scores on the device the run's settings name.
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
        p.score_settings().check()?;
        check_range("prune_number", p.prune_number, 1..)?;
        Ok(value)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let started = Instant::now();
    let params: PruneParams = params(ctx)?;
    let seed = ctx
        .seed()
        .ok_or_else(|| Error::invalid("the prune stage needs a seed"))?;
    let inputs = ScoringInputs::load(ctx, &params.score_settings())?;
    let search = search::Search {
        rule: RuleConfig {
            precision: params.precision,
            tie_rule: params.ties,
        },
        prune_number: params.prune_number,
        edge_phase: params.edge_phase,
    };
    let mut log = RoundLog::default();
    let (arch, genotype, rounds) = match inputs.net.space {
        Space::Nb201 => {
            let scorer = inputs.scorer(ctx, Nb201Net::new)?;
            let mut score = |round, mask: &_, choices: &_| {
                score_round(ctx, &scorer, seed, round, mask, choices)
            };
            let mut observe = |r: RoundRecord<'_, _>| log.record(&r, seed, params.precision);
            let found = search.op_rounds(initial_mask(), &mut score, &mut observe)?;
            (arch_of(&found.mask)?.to_string(), None, found.rounds)
        }
        Space::Darts => {
            let scorer = inputs.scorer(ctx, DartsNet::new)?;
            let mut score = |round, mask: &_, choices: &_| {
                score_round(ctx, &scorer, seed, round, mask, choices)
            };
            let mut observe = |r: RoundRecord<'_, _>| log.record(&r, seed, params.precision);
            let found = search.op_rounds(DartsMask::initial(), &mut score, &mut observe)?;
            let found = search.edge_group_rounds(found, &mut score, &mut observe)?;
            let genotype = Genotype::from_mask(&found.mask)?;
            (genotype.to_string(), Some(genotype), found.rounds)
        }
    };
    ctx.progress().log(format!("found {arch}"));
    let candidates_scored = log.candidates;
    log.write(ctx)?;
    let output = SearchOutput {
        arch,
        genotype,
        rounds,
        candidates_scored,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&ctx.out_dir().join(SEARCH_FILE), &output)
}

pub const SEARCH_FILE: &str = "search.json";

/// Scores `choices` of the round, reading finished units from the store.
fn score_round<N: SpaceNet>(
    ctx: &StageContext<'_>,
    scorer: &Scorer<N>,
    seed: u64,
    round: usize,
    mask: &N::Mask,
    choices: &[Choice],
) -> Result<Vec<ChoiceScores>> {
    let config = scorer.config();
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
                        &scorer.score(mask, &draw).map_err(Error::from)?,
                    )?)
                })?
                .expect_done()?;
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
        .map(|c| {
            let mut d = json!({ "candidate": base, "edge": c.edge, "op": c.op });
            if N::Mask::CELLS > 1 {
                d["cell"] = json!(c.cell);
            }
            d
        })
        .collect();
    let dirs = ctx
        .units("candidate", &descriptors, |i, dir| {
            let choice = choices[i];
            let pruned = search::without(mask, choice);
            let mut out = CandidateUnit::default();
            for r in 0..config.repeat {
                let draw: Draw = config.draw(seed, round, r, &choice.label::<N::Mask>());
                out.pruned
                    .push(scorer.score(&pruned, &draw).map_err(Error::from)?);
                if config.sampling == Sampling::PerCandidate {
                    out.origin
                        .push(scorer.score(mask, &draw).map_err(Error::from)?);
                }
            }
            Ok(write_json(&dir.join(UNIT_FILE), &out)?)
        })?
        .expect_done()?;
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
    /// Spaces with several cell types (DARTS) also get `cell` and `phase` (`ops` or `edges`)
    /// columns.
    fn record<M: SpaceMask>(&mut self, r: &RoundRecord<'_, M>, seed: u64, precision: u32) {
        let (round, phase) = (r.round, r.phase.name());
        self.candidates += r.scores.len();
        for (s, d) in r.scores.iter().zip(r.decisions) {
            for r in 0..s.pruned.len() {
                let (o, p) = (&s.origin[r], &s.pruned[r]);
                let c = &mut self.cand;
                c.u64("round", round as u64);
                if M::CELLS > 1 {
                    c.str("phase", phase);
                    c.str("cell", M::cell_name(s.choice.cell));
                }
                c.u64("edge", s.choice.edge as u64);
                c.str("op", M::op_name(s.choice.op));
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
        self.record_mask(round, r.next);
    }

    /// The mask after round `round`.
    fn record_mask<M: SpaceMask>(&mut self, round: usize, mask: &M) {
        for cell in 0..M::CELLS {
            for edge in 0..M::EDGES {
                for op in 0..M::OPS {
                    self.rounds.u64("round", round as u64);
                    if M::CELLS > 1 {
                        self.rounds.str("cell", M::cell_name(cell));
                    }
                    self.rounds.u64("edge", edge as u64);
                    self.rounds.str("op", M::op_name(op));
                    self.rounds.bool("active", mask.is_active(cell, edge, op));
                }
            }
        }
    }

    fn write(self, ctx: &StageContext<'_>) -> Result<()> {
        self.cand
            .write_parquet(&ctx.table_path(names::CANDIDATES))?;
        self.rounds.write_parquet(&ctx.table_path(names::ROUNDS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_name_the_range_and_the_value() {
        let stage = PruneStage;
        let resolve = |src: &str| stage.resolve_params(&src.parse().expect("TOML"));
        let err = resolve("batch = 0").unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.message.as_str()),
            ("batch", "`batch` must be at least 2, got 0")
        );
        let err = resolve("lr_crop = 33").unwrap_err();
        assert_eq!(err.message, "`lr_crop` must be between 1 and 32, got 33");
        assert!(resolve("batch = 2\nlr_crop = 32").is_ok());
    }
}
