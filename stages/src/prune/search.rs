//! The TE-NAS round loop on any search space, independent of how scores are cached.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rule::{self, Candidate, Decision, EdgeKey, RuleConfig};
use super::score::Score;
use crate::error::{Error, Result};
use crate::space::nb201_arch::{Arch, Op, NUM_EDGES};
use crate::space::nb201_net::Mask;
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

/// The NAS-Bench-201 cell of a single-path mask.
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
}
