//! The TE-NAS round loop on NAS-Bench-201, independent of how scores are cached.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rule::{self, Candidate, Decision, EdgeKey, RuleConfig};
use super::score::Score;
use crate::error::{Error, Result};
use crate::space::nb201_arch::{Arch, Op, NUM_EDGES};
use crate::space::nb201_net::Mask;

/// One (edge, op) whose removal a round scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub edge: usize,
    pub op: usize,
}

impl Choice {
    /// A stable name for seeds and unit descriptors.
    pub fn label(&self) -> String {
        format!("e{}o{}", self.edge, self.op)
    }
}

/// The choices of a round: every active op on every edge that still has more than one.
pub fn choices(mask: &Mask) -> Vec<Choice> {
    (0..NUM_EDGES)
        .filter(|&e| active_count(mask, e) > 1)
        .flat_map(|edge| {
            (0..mask[edge].len())
                .filter(move |&op| mask[edge][op])
                .map(move |op| Choice { edge, op })
        })
        .collect()
}

pub fn active_count(mask: &Mask, edge: usize) -> usize {
    mask[edge].iter().filter(|&&a| a).count()
}

/// Is every edge down to one op?
pub fn is_single_path(mask: &Mask) -> bool {
    (0..NUM_EDGES).all(|e| active_count(mask, e) <= 1)
}

/// `mask` with `choice` removed.
pub fn without(mask: &Mask, choice: Choice) -> Mask {
    let mut m = *mask;
    m[choice.edge][choice.op] = false;
    m
}

/// The cell of a single-path mask.
pub fn arch_of(mask: &Mask) -> Result<Arch> {
    let mut ops = [Op::None; NUM_EDGES];
    for (edge, row) in mask.iter().enumerate() {
        let active: Vec<usize> = (0..row.len()).filter(|&o| row[o]).collect();
        match active.as_slice() {
            [op] => ops[edge] = Op::ALL[*op],
            _ => {
                return Err(Error::Invalid(format!(
                    "edge {edge} has {} active ops, not one",
                    active.len()
                )))
            }
        }
    }
    Ok(Arch { ops })
}

/// Scores of one choice over the repeats: the un-pruned network's and the pruned one's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChoiceScores {
    pub choice: Choice,
    pub origin: Vec<Score>,
    pub pruned: Vec<Score>,
}

/// The outcome of one round.
pub struct RoundOutcome {
    pub decisions: Vec<Decision>,
    pub next: Mask,
}

/// Ranks the round's choices and prunes by the TE-NAS rule.
pub fn decide(
    mask: &Mask,
    scores: &[ChoiceScores],
    rule: RuleConfig,
    prune_number: usize,
) -> Result<RoundOutcome> {
    let candidates: Vec<Candidate> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| Candidate {
            id: i as u64,
            cell: 0,
            edge: s.choice.edge,
            op: s.choice.op,
            kappa_orig: s.origin.iter().map(|x| x.kappa).collect(),
            kappa_pruned: s.pruned.iter().map(|x| x.kappa).collect(),
            regions_orig: s.origin.iter().map(|x| x.regions.regions as f64).collect(),
            regions_pruned: s.pruned.iter().map(|x| x.regions.regions as f64).collect(),
        })
        .collect();
    let active: BTreeMap<EdgeKey, usize> = (0..NUM_EDGES)
        .filter(|&e| active_count(mask, e) > 1)
        .map(|edge| (EdgeKey { cell: 0, edge }, active_count(mask, edge)))
        .collect();
    let mut decisions = rule::prune_round(&candidates, &active, prune_number, rule)?;
    // Back in the order of `scores`.
    decisions.sort_by_key(|d| d.id);
    let mut next = *mask;
    for d in decisions.iter().filter(|d| d.pruned) {
        next[d.edge][d.op] = false;
    }
    Ok(RoundOutcome { decisions, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201_net::initial_mask;

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
}
