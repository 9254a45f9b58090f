//! The TE-NAS round loop on any search space: which choices a round scores, how the rule
//! decides them, and the loop over rounds, independent of how scores are computed or cached.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rule::{self, Candidate, Decision, EdgeKey, RuleConfig};
use crate::error::{Error, Result};
use crate::proxy::score::Score;
use crate::space::darts_arch::{self, INPUTS_PER_NODE};
use crate::space::SpaceMask;

/// One (cell type, edge, op) whose removal a round scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub cell: usize,
    pub edge: usize,
    pub op: usize,
}

impl Choice {
    /// A stable name for seeds and unit descriptors; spaces with one cell type leave the
    /// cell out (so NAS-Bench-201 names are what they always were).
    pub fn label<M: SpaceMask>(&self) -> String {
        if M::CELLS == 1 {
            format!("e{}o{}", self.edge, self.op)
        } else {
            format!("c{}e{}o{}", self.cell, self.edge, self.op)
        }
    }
}

fn edge_keys<M: SpaceMask>() -> impl Iterator<Item = EdgeKey> {
    (0..M::CELLS).flat_map(|cell| (0..M::EDGES).map(move |edge| EdgeKey { cell, edge }))
}

fn active_ops<M: SpaceMask>(mask: &M, key: EdgeKey) -> impl Iterator<Item = Choice> + '_ {
    (0..M::OPS)
        .filter(move |&op| mask.is_active(key.cell, key.edge, op))
        .map(move |op| Choice {
            cell: key.cell,
            edge: key.edge,
            op,
        })
}

/// The choices of an op round: every active op on every edge that still has more than one.
pub fn choices<M: SpaceMask>(mask: &M) -> Vec<Choice> {
    edge_keys::<M>()
        .filter(|k| mask.active_count(k.cell, k.edge) > 1)
        .flat_map(|k| active_ops(mask, k).collect::<Vec<_>>())
        .collect()
}

/// The choices of the edge-group phase: the one op of every edge in a group of more than
/// `keep` edges (groups `[start, end)` of edges, per cell type).
pub fn edge_choices<M: SpaceMask>(mask: &M, groups: &[(usize, usize)], keep: usize) -> Vec<Choice> {
    edge_keys::<M>()
        .filter(|k| {
            groups
                .iter()
                .any(|&(start, end)| end - start > keep && (start..end).contains(&k.edge))
        })
        .flat_map(|k| active_ops(mask, k).collect::<Vec<_>>())
        .collect()
}

/// Is every edge down to at most one op?
pub fn is_single_path<M: SpaceMask>(mask: &M) -> bool {
    edge_keys::<M>().all(|k| mask.active_count(k.cell, k.edge) <= 1)
}

/// `mask` with `choice` removed.
pub fn without<M: SpaceMask>(mask: &M, choice: Choice) -> M {
    let mut m = mask.clone();
    m.set_active(choice.cell, choice.edge, choice.op, false);
    m
}

/// Scores of one choice over the repeats: the un-pruned network's and the pruned one's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChoiceScores {
    pub choice: Choice,
    pub origin: Vec<Score>,
    pub pruned: Vec<Score>,
}

/// The outcome of one round.
pub struct RoundOutcome<M> {
    pub decisions: Vec<Decision>,
    pub next: M,
}

fn candidates(scores: &[ChoiceScores]) -> Vec<Candidate> {
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| Candidate {
            id: i as u64,
            cell: s.choice.cell,
            edge: s.choice.edge,
            op: s.choice.op,
            kappa_orig: s.origin.iter().map(|x| x.kappa).collect(),
            kappa_pruned: s.pruned.iter().map(|x| x.kappa).collect(),
            regions_orig: s.origin.iter().map(|x| x.regions.regions as f64).collect(),
            regions_pruned: s.pruned.iter().map(|x| x.regions.regions as f64).collect(),
        })
        .collect()
}

/// Applies the pruned decisions; decisions come back in the order of the scores.
fn apply<M: SpaceMask>(mask: &M, mut decisions: Vec<Decision>) -> RoundOutcome<M> {
    decisions.sort_by_key(|d| d.id);
    let mut next = mask.clone();
    for d in decisions.iter().filter(|d| d.pruned) {
        next.set_active(d.cell, d.edge, d.op, false);
    }
    RoundOutcome { decisions, next }
}

/// Ranks an op round's choices and prunes by the TE-NAS rule.
pub fn decide<M: SpaceMask>(
    mask: &M,
    scores: &[ChoiceScores],
    rule: RuleConfig,
    prune_number: usize,
) -> Result<RoundOutcome<M>> {
    let active: BTreeMap<EdgeKey, usize> = edge_keys::<M>()
        .map(|k| (k, mask.active_count(k.cell, k.edge)))
        .filter(|&(_, n)| n > 1)
        .collect();
    let decisions = rule::prune_round(&candidates(scores), &active, prune_number, rule)?;
    Ok(apply(mask, decisions))
}

/// Ranks the edge-group phase's choices and keeps the best `keep` edges of every group.
pub fn decide_edge_groups<M: SpaceMask>(
    mask: &M,
    scores: &[ChoiceScores],
    groups: &[(usize, usize)],
    keep: usize,
    rule: RuleConfig,
) -> Result<RoundOutcome<M>> {
    let decisions = rule::prune_edge_groups(&candidates(scores), groups, keep, rule)?;
    Ok(apply(mask, decisions))
}

/// Which phase a round belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Op rounds: every edge with more than one op loses `prune_number` of them.
    Ops,
    /// The DARTS edge-group phase: each step node keeps its best inputs.
    Edges,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ops => "ops",
            Phase::Edges => "edges",
        }
    }
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

/// What a round observer is shown once a round is decided.
pub struct RoundRecord<'a, M> {
    pub round: usize,
    pub phase: Phase,
    pub scores: &'a [ChoiceScores],
    /// In the order of `scores`.
    pub decisions: &'a [Decision],
    /// The mask after the round.
    pub next: &'a M,
}

/// The TE-NAS search: op rounds until every edge has one op, then (on DARTS) the edge-group
/// phase. How a round's choices are scored (and cached) is the caller's: `score` gets the
/// round number, the mask and the choices, and returns one [`ChoiceScores`] per choice.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    pub rule: RuleConfig,
    /// Ops pruned per edge per op round.
    pub prune_number: usize,
    pub edge_phase: EdgePhase,
}

/// The searched mask and how many rounds it took.
pub struct Searched<M> {
    pub mask: M,
    pub rounds: usize,
}

impl Search {
    /// Op rounds from `mask` until every edge has one op.
    pub fn op_rounds<M: SpaceMask, E: From<Error>>(
        &self,
        mut mask: M,
        score: &mut impl FnMut(usize, &M, &[Choice]) -> std::result::Result<Vec<ChoiceScores>, E>,
        observe: &mut impl FnMut(RoundRecord<'_, M>),
    ) -> std::result::Result<Searched<M>, E> {
        let mut round = 0;
        while !is_single_path(&mask) {
            let choices = choices(&mask);
            let scores = score(round, &mask, &choices)?;
            let outcome = decide(&mask, &scores, self.rule, self.prune_number)?;
            mask = record(round, Phase::Ops, &scores, outcome, observe);
            round += 1;
        }
        Ok(Searched {
            mask,
            rounds: round,
        })
    }

    /// The DARTS edge-group phase after `searched`'s op rounds: scores dropping each remaining
    /// edge and keeps the best two inputs of every step node.
    pub fn edge_group_rounds<M: SpaceMask, E: From<Error>>(
        &self,
        searched: Searched<M>,
        score: &mut impl FnMut(usize, &M, &[Choice]) -> std::result::Result<Vec<ChoiceScores>, E>,
        observe: &mut impl FnMut(RoundRecord<'_, M>),
    ) -> std::result::Result<Searched<M>, E> {
        let Searched {
            mut mask,
            mut rounds,
        } = searched;
        let groups = darts_arch::edge_groups();
        let all = edge_choices(&mask, &groups, INPUTS_PER_NODE);
        for step in self.edge_steps::<M>(&groups) {
            let in_step = |c: &Choice| {
                step.iter()
                    .any(|&(cell, (start, end))| c.cell == cell && (start..end).contains(&c.edge))
            };
            let choices: Vec<Choice> = all.iter().copied().filter(in_step).collect();
            if choices.is_empty() {
                continue; // a group already down to two edges
            }
            let scores = score(rounds, &mask, &choices)?;
            let outcome = decide_edge_groups(&mask, &scores, &groups, INPUTS_PER_NODE, self.rule)?;
            mask = record(rounds, Phase::Edges, &scores, outcome, observe);
            rounds += 1;
        }
        Ok(Searched { mask, rounds })
    }

    /// The (cell, group) pairs of each edge-phase step, scored and pruned together.
    fn edge_steps<M: SpaceMask>(
        &self,
        groups: &[(usize, usize)],
    ) -> Vec<Vec<(usize, (usize, usize))>> {
        match self.edge_phase {
            EdgePhase::Joint => vec![(0..M::CELLS)
                .flat_map(|cell| groups.iter().map(move |&g| (cell, g)))
                .collect()],
            EdgePhase::Sequential => (0..M::CELLS)
                .flat_map(|cell| groups.iter().map(move |&g| vec![(cell, g)]))
                .collect(),
        }
    }
}

/// Shows the decided round to the observer; returns the next mask.
fn record<M>(
    round: usize,
    phase: Phase,
    scores: &[ChoiceScores],
    outcome: RoundOutcome<M>,
    observe: &mut impl FnMut(RoundRecord<'_, M>),
) -> M {
    observe(RoundRecord {
        round,
        phase,
        scores,
        decisions: &outcome.decisions,
        next: &outcome.next,
    });
    outcome.next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201_arch::{arch_of, initial_mask, NUM_EDGES};

    #[test]
    fn rounds_shrink_24_18_12() {
        let mut mask = initial_mask();
        let mut sizes = Vec::new();
        while !is_single_path(&mask) {
            let c = choices(&mask);
            sizes.push(c.len());
            // Drop the first active op of every edge with more than one.
            for e in 0..NUM_EDGES {
                if let Some(ch) = c.iter().find(|ch| ch.edge == e) {
                    mask = without(&mask, *ch);
                }
            }
        }
        assert_eq!(sizes, vec![24, 18, 12]);
        assert_eq!(arch_of(&mask).unwrap().to_string(), "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|");
        assert!(arch_of(&initial_mask()).is_err());
    }

    #[test]
    fn darts_rounds_and_edge_groups() {
        use crate::space::darts_arch::{edge_groups, DartsMask, Genotype};
        let mut mask = DartsMask::initial();
        let mut sizes = Vec::new();
        while !is_single_path(&mask) {
            let c = choices(&mask);
            sizes.push(c.len());
            // Three ops per edge per round, as TE-NAS prunes on DARTS CIFAR-10.
            let mut per_edge = BTreeMap::new();
            for ch in c {
                let n = per_edge.entry((ch.cell, ch.edge)).or_insert(0);
                if *n < 3 && mask.active_count(ch.cell, ch.edge) > 1 {
                    *n += 1;
                    mask = without(&mask, ch);
                }
            }
        }
        assert_eq!(sizes, vec![2 * 14 * 7, 2 * 14 * 4]);
        // Node 2's two edges are already a pair; nodes 3..5 hold 3 + 4 + 5 edges per cell.
        let edges = edge_choices(&mask, &edge_groups(), 2);
        assert_eq!(edges.len(), 2 * 12);
        assert!(edges.iter().all(|c| c.edge >= 2));
        assert_eq!(edges[0].label::<DartsMask>(), "c0e2o7");
        for c in edges
            .iter()
            .filter(|c| ![2, 3, 5, 6, 9, 10].contains(&c.edge))
        {
            mask = without(&mask, *c);
        }
        let genotype = Genotype::from_mask(&mask).unwrap();
        assert_eq!(genotype.normal.len(), 8);
    }

    /// A scorer under which removing op `o` from edge `e` costs usefulness `(o + e) % 5`: the
    /// larger it is, the less κ falls and the more regions are lost, so the loop must keep the
    /// most useful active op of every edge, round after round.
    #[test]
    fn the_loop_keeps_the_op_whose_removal_hurts_most() {
        use crate::proxy::regions::RegionCount;
        let usefulness = |c: &Choice| ((c.op + c.edge) % 5) as f64;
        let score = |kappa: f64, regions: f64| Score {
            kappa,
            regions: RegionCount {
                regions: regions as u64,
                samples: 10_000,
            },
        };
        let mut score_round = |_round: usize, _mask: &_, choices: &[Choice]| {
            Ok::<_, Error>(
                choices
                    .iter()
                    .map(|c| ChoiceScores {
                        choice: *c,
                        origin: vec![score(100.0, 1000.0)],
                        pruned: vec![score(100.0 + usefulness(c), 1000.0 - usefulness(c))],
                    })
                    .collect(),
            )
        };
        let mut seen = Vec::new();
        let search = Search {
            rule: RuleConfig::default(),
            prune_number: 1,
            edge_phase: EdgePhase::Sequential,
        };
        let found = search
            .op_rounds(initial_mask(), &mut score_round, &mut |r: RoundRecord<
                '_,
                _,
            >| {
                seen.push((
                    r.round,
                    r.scores.len(),
                    r.decisions.iter().filter(|d| d.pruned).count(),
                ));
                assert_eq!(r.phase, Phase::Ops);
            })
            .unwrap();
        assert_eq!(found.rounds, 3);
        assert_eq!(seen, vec![(0, 24, 6), (1, 18, 6), (2, 12, 6)]);
        let kept: Vec<usize> = (0..NUM_EDGES)
            .map(|edge| {
                (1..5)
                    .max_by_key(|&op| (op + edge) % 5)
                    .expect("four active ops")
            })
            .collect();
        let arch = arch_of(&found.mask).unwrap();
        let ops: Vec<usize> = arch.ops.iter().map(|op| op.index()).collect();
        assert_eq!(ops, kept);
    }
}
