//! The `prune` stage: the TE-NAS round loop, one cached unit per candidate. On DARTS the op
//! rounds are followed by the edge-group phase, which keeps two input edges per step node.
use std::time::Instant;

use candle_core::Device;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::dataset::DatasetOutput;
use super::supernet::SupernetOutput;
use super::{check_range, input, params, read_json, write_json};
use crate::data::pool::ImagePool;
use crate::error::{Error, Result};
use crate::proxy::ntk::NtkMode;
use crate::prune::rounding::{round_decimal_numpy, round_decimal_python};
use crate::prune::rule::{Decision, RuleConfig, TieRule};
use crate::prune::score::{Augmentation, Draw, Sampling, Score, ScoreConfig, Scorer};
use crate::prune::search::{self, Choice, ChoiceScores, RoundOutcome};
use crate::space::darts_arch::{self, DartsMask, Genotype, INPUTS_PER_NODE};
use crate::space::darts_net::DartsNet;
use crate::space::nb201_net::{initial_mask, Nb201Net};
use crate::space::{Space, SpaceMask, SpaceNet};
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
    /// DARTS only: how the edge-group phase visits the step nodes.
    pub edge_phase: EdgePhase,
    /// NTK batch augmentation: `reference` (the published code's flip and padded crop) or
    /// `none`; unset, the dataset's default (only ImageNet16 is augmented).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augmentation>,
}

/// How the DARTS edge-group phase visits the (cell type, step node) groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgePhase {
    /// As the published code: one group after another (normal cell first, then reduction),
    /// each scored on the supernet with the earlier groups already pruned; one round each.
    Sequential,
    /// Every group scored on the same supernet in one round, then all pruned at once.
    Joint,
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

/// The search; it scores on `device`.
pub struct PruneStage {
    pub device: Device,
}

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
        check_range("batch", p.batch, 2..)?;
        check_range("repeat", p.repeat, 1..)?;
        check_range("prune_number", p.prune_number, 1..)?;
        check_range("lr_samples", p.lr_samples, 1..)?;
        check_range("lr_batches", p.lr_batches, 1..)?;
        check_range("lr_crop", p.lr_crop, 1..=32)?;
        Ok(value)
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx, &self.device)?)
    }
}

fn run(ctx: &StageContext<'_>, device: &Device) -> Result<()> {
    let started = Instant::now();
    let params: PruneParams = params(ctx)?;
    let seed = ctx
        .seed()
        .ok_or_else(|| Error::Invalid("the prune stage needs a seed".into()))?;
    let data_dir = input(ctx, "dataset")?;
    let data: DatasetOutput = read_json(&data_dir.join(DatasetOutput::FILE))?;
    let net_dir = input(ctx, "supernet")?;
    let net: SupernetOutput = read_json(&net_dir.join(SupernetOutput::FILE))?;
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
        augment: params.augment,
    };
    let rule = RuleConfig {
        precision: params.precision,
        tie_rule: params.ties,
    };
    let mut search = Search {
        ctx,
        seed,
        params: &params,
        rule,
        log: RoundLog::default(),
    };
    let view = pool.view_for(config.augment);
    let (arch, genotype, rounds) = match net.space {
        Space::Nb201 => {
            let (ntk, thin) = net.networks(net_dir, data.num_classes, Nb201Net::new)?;
            let scorer = Scorer::new(config, ntk, thin, view, device.clone());
            let (mask, rounds) = search.op_rounds(&scorer, initial_mask())?;
            (search::arch_of(&mask)?.to_string(), None, rounds)
        }
        Space::Darts => {
            let (ntk, thin) = net.networks(net_dir, data.num_classes, DartsNet::new)?;
            let scorer = Scorer::new(config, ntk, thin, view, device.clone());
            let (mask, rounds) = search.op_rounds(&scorer, DartsMask::initial())?;
            let (mask, rounds) = search.edge_groups(&scorer, mask, rounds)?;
            let genotype = Genotype::from_mask(&mask)?;
            (genotype.to_string(), Some(genotype), rounds)
        }
    };
    ctx.progress().log(format!("found {arch}"));
    let candidates_scored = search.log.candidates;
    search.log.write(ctx)?;
    let output = SearchOutput {
        arch,
        genotype,
        rounds,
        candidates_scored,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&ctx.out_dir().join(SEARCH_FILE), &output)
}

/// One seed's search: what every round needs, and the tables it fills.
struct Search<'c, 'p> {
    ctx: &'c StageContext<'p>,
    seed: u64,
    params: &'c PruneParams,
    rule: RuleConfig,
    log: RoundLog,
}

impl Search<'_, '_> {
    /// Op rounds until every edge has one op; returns the mask and the number of rounds.
    fn op_rounds<N: SpaceNet>(
        &mut self,
        scorer: &Scorer<N>,
        mut mask: N::Mask,
    ) -> Result<(N::Mask, usize)> {
        let mut round = 0;
        while !search::is_single_path(&mask) {
            let choices = search::choices(&mask);
            let (rule, prune_number) = (self.rule, self.params.prune_number);
            mask = self.round(scorer, (round, "ops"), &mask, &choices, |scores| {
                search::decide(&mask, scores, rule, prune_number)
            })?;
            round += 1;
        }
        Ok((mask, round))
    }

    /// The DARTS edge-group phase from round `round` on: scores dropping each remaining edge
    /// and keeps the best two inputs of every step node. Returns the mask and the next round.
    fn edge_groups<N: SpaceNet>(
        &mut self,
        scorer: &Scorer<N>,
        mut mask: N::Mask,
        mut round: usize,
    ) -> Result<(N::Mask, usize)> {
        let groups = darts_arch::edge_groups();
        let all = search::edge_choices(&mask, &groups, INPUTS_PER_NODE);
        // Each step: the (cell, group) pairs scored and pruned together.
        let steps: Vec<Vec<(usize, (usize, usize))>> = match self.params.edge_phase {
            EdgePhase::Joint => vec![(0..N::Mask::CELLS)
                .flat_map(|cell| groups.iter().map(move |&g| (cell, g)))
                .collect()],
            EdgePhase::Sequential => (0..N::Mask::CELLS)
                .flat_map(|cell| groups.iter().map(move |&g| vec![(cell, g)]))
                .collect(),
        };
        for step in steps {
            let in_step = |c: &Choice| {
                step.iter()
                    .any(|&(cell, (start, end))| c.cell == cell && (start..end).contains(&c.edge))
            };
            let choices: Vec<Choice> = all.iter().copied().filter(in_step).collect();
            if choices.is_empty() {
                continue; // a group already down to two edges
            }
            let rule = self.rule;
            mask = self.round(scorer, (round, "edges"), &mask, &choices, |scores| {
                search::decide_edge_groups(&mask, scores, &groups, INPUTS_PER_NODE, rule)
            })?;
            round += 1;
        }
        Ok((mask, round))
    }

    /// Scores `choices` as round `round` of `phase`, prunes with `decide` and logs both;
    /// returns the next mask.
    fn round<N: SpaceNet>(
        &mut self,
        scorer: &Scorer<N>,
        (round, phase): (usize, &str),
        mask: &N::Mask,
        choices: &[Choice],
        decide: impl FnOnce(&[ChoiceScores]) -> Result<RoundOutcome<N::Mask>>,
    ) -> Result<N::Mask> {
        let scores = score_round(self.ctx, scorer, self.seed, round, mask, choices)?;
        let outcome = decide(&scores)?;
        let log = &mut self.log;
        log.record::<N::Mask>(
            round,
            phase,
            self.seed,
            &scores,
            &outcome.decisions,
            self.params,
        );
        log.record_mask(round, &outcome.next);
        Ok(outcome.next)
    }
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
            let dirs = ctx.units("origin", &descriptors, |r, dir| {
                let draw = config.draw(seed, round, r, "origin");
                Ok(write_json(
                    &dir.join(UNIT_FILE),
                    &scorer.score(mask, &draw)?,
                )?)
            })?;
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
    let dirs = ctx.units("candidate", &descriptors, |i, dir| {
        let choice = choices[i];
        let pruned = search::without(mask, choice);
        let mut out = CandidateUnit::default();
        for r in 0..config.repeat {
            let draw: Draw = config.draw(seed, round, r, &choice.label::<N::Mask>());
            out.pruned.push(scorer.score(&pruned, &draw)?);
            if config.sampling == Sampling::PerCandidate {
                out.origin.push(scorer.score(mask, &draw)?);
            }
        }
        Ok(write_json(&dir.join(UNIT_FILE), &out)?)
    })?;
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
    fn record<M: SpaceMask>(
        &mut self,
        round: usize,
        phase: &str,
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
        self.cand.write_parquet(&ctx.table_path("candidates"))?;
        self.rounds.write_parquet(&ctx.table_path("rounds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_name_the_range_and_the_value() {
        let stage = PruneStage {
            device: Device::Cpu,
        };
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
