//! The TE-NAS pruning decision for one round, as a pure function of the measured scores.
//!
//! Behaviour follows the reference `prune_tenas.py` (VITA-Group/TENAS):
//! * per repeat, Δκ = (κ_orig − κ_pruned)/κ_orig and ΔR = (R_orig − R_pruned)/R_orig, rounded to
//!   `precision` decimal places, then averaged over the repeats (numpy `mean`);
//! * candidates are stably sorted by their mean rounded to `precision` significant figures
//!   (`round_to`), Δκ descending and ΔR ascending, from the enumeration order (cell, edge, op);
//! * dense ranks (1, 1, 2, ...; the reference counts from 0, which shifts every sum by 2 and
//!   changes no decision);
//! * candidates are stably sorted by rank sum, starting from the Δκ-sorted order, so equal sums
//!   go to the larger rounded Δκ, then to the earlier (cell, edge, op);
//! * per edge the first `prune_number` candidates in that order are pruned.
//!
//! Rounding mimics the reference's number types ([`super::rounding`]): Δκ per repeat with
//! numpy's `round`, ΔR with Python's, the significant-figure key and the means with numpy's.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::rounding::{numpy_mean, round_decimal_numpy, round_decimal_python, round_significant};
use crate::error::{Error, Result};

/// One (cell type, edge, op) whose removal was scored; one value per repeat in each vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Caller's handle, passed through untouched.
    pub id: u64,
    /// Cell type (0 = normal, 1 = reduction in DARTS; always 0 for NAS-Bench-201).
    pub cell: usize,
    pub edge: usize,
    pub op: usize,
    pub kappa_orig: Vec<f64>,
    pub kappa_pruned: Vec<f64>,
    pub regions_orig: Vec<f64>,
    pub regions_pruned: Vec<f64>,
}

impl Candidate {
    pub fn edge_key(&self) -> EdgeKey {
        EdgeKey {
            cell: self.cell,
            edge: self.edge,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub cell: usize,
    pub edge: usize,
}

/// What counts as "the same value" when giving dense ranks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TieRule {
    /// As the reference does it: the order uses the significant-figure key, but a rank is
    /// shared only when the *unrounded* means of neighbours in that order are equal.
    #[default]
    Reference,
    /// As the paper reads: equal significant-figure keys share a rank.
    RoundedKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleConfig {
    /// Decimal places per repeat and significant figures for the ranking key (reference: 3).
    pub precision: u32,
    pub tie_rule: TieRule,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            precision: 3,
            tie_rule: TieRule::Reference,
        }
    }
}

/// The rule's verdict on one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: u64,
    pub cell: usize,
    pub edge: usize,
    pub op: usize,
    pub delta_kappa: f64,
    pub delta_regions: f64,
    /// Dense rank, 1 = most worth pruning by Δκ (largest).
    pub rank_kappa: usize,
    /// Dense rank, 1 = most worth pruning by ΔR (smallest).
    pub rank_regions: usize,
    pub rank_sum: usize,
    pub pruned: bool,
}

/// One pruning round: per edge, prunes the `prune_number` candidates with the smallest rank sum,
/// never more than `active_ops[edge] − 1`. Decisions come back in (cell, edge, op) order.
///
/// Every candidate's edge must be in `active_ops` with more than one active op (the reference
/// does not score edges that are down to one op), and hold no more candidates than active ops.
pub fn prune_round(
    candidates: &[Candidate],
    active_ops: &BTreeMap<EdgeKey, usize>,
    prune_number: usize,
    config: RuleConfig,
) -> Result<Vec<Decision>> {
    let sorted = validated_in_enumeration_order(candidates)?;
    check_active_counts(&sorted, active_ops)?;
    let mut decisions = score_all(&sorted, config.precision)?;
    let order = rank_all(&mut decisions, config);

    let mut pruned_on_edge: BTreeMap<EdgeKey, usize> = BTreeMap::new();
    for i in order {
        let key = EdgeKey {
            cell: decisions[i].cell,
            edge: decisions[i].edge,
        };
        let cap = prune_number.min(active_ops[&key] - 1);
        let count = pruned_on_edge.entry(key).or_insert(0);
        if *count < cap {
            *count += 1;
            decisions[i].pruned = true;
        }
    }
    Ok(decisions)
}

/// DARTS edge-group phase (`prune_func_rank_group`): within each cell type and each edge group
/// `[start, end)`, candidates are ranked among themselves and all but the `keep` with the
/// largest rank sums are pruned (the last `keep` in the stable rank-sum order survive).
/// Groups spanning at most `keep` edges are left alone. Each edge holds one candidate (its only
/// remaining op, so pruning it drops the edge). Decisions come back in (cell, edge, op) order.
pub fn prune_edge_groups(
    candidates: &[Candidate],
    groups: &[(usize, usize)],
    keep: usize,
    config: RuleConfig,
) -> Result<Vec<Decision>> {
    let sorted = validated_in_enumeration_order(candidates)?;
    check_one_candidate_per_edge(&sorted)?;
    let group_of = |edge: usize| {
        groups
            .iter()
            .position(|&(start, end)| (start..end).contains(&edge))
    };
    let mut members: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, c) in sorted.iter().enumerate() {
        let group = group_of(c.edge).ok_or_else(|| {
            Error::Invalid(format!(
                "edge {} of candidate {} is in no edge group {groups:?}",
                c.edge, c.id
            ))
        })?;
        members.entry((c.cell, group)).or_default().push(i);
    }

    let mut decisions = score_all(&sorted, config.precision)?;
    for ((_, group), indices) in members {
        let mut group_decisions: Vec<Decision> =
            indices.iter().map(|&i| decisions[i].clone()).collect();
        let order = rank_all(&mut group_decisions, config);
        let (start, end) = groups[group];
        if end - start > keep {
            let prune_count = order.len().saturating_sub(keep);
            for &j in &order[..prune_count] {
                group_decisions[j].pruned = true;
            }
        }
        for (j, &i) in indices.iter().enumerate() {
            decisions[i] = group_decisions[j].clone();
        }
    }
    Ok(decisions)
}

fn validated_in_enumeration_order(candidates: &[Candidate]) -> Result<Vec<&Candidate>> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| (c.cell, c.edge, c.op));
    for pair in sorted.windows(2) {
        if (pair[0].cell, pair[0].edge, pair[0].op) == (pair[1].cell, pair[1].edge, pair[1].op) {
            return Err(Error::Invalid(format!(
                "candidates {} and {} are both (cell {}, edge {}, op {})",
                pair[0].id, pair[1].id, pair[0].cell, pair[0].edge, pair[0].op
            )));
        }
    }
    Ok(sorted)
}

fn check_active_counts(sorted: &[&Candidate], active_ops: &BTreeMap<EdgeKey, usize>) -> Result<()> {
    let mut per_edge: BTreeMap<EdgeKey, usize> = BTreeMap::new();
    for c in sorted {
        *per_edge.entry(c.edge_key()).or_insert(0) += 1;
    }
    for (key, count) in per_edge {
        let active = *active_ops.get(&key).ok_or_else(|| {
            Error::Invalid(format!(
                "no active-op count for cell {} edge {}",
                key.cell, key.edge
            ))
        })?;
        if active < 2 || count > active {
            return Err(Error::Invalid(format!(
                "cell {} edge {} has {active} active ops but {count} candidates \
                 (an edge is scored only while it has 2 or more active ops, one candidate each)",
                key.cell, key.edge
            )));
        }
    }
    Ok(())
}

fn check_one_candidate_per_edge(sorted: &[&Candidate]) -> Result<()> {
    let mut edges = BTreeSet::new();
    for c in sorted {
        if !edges.insert(c.edge_key()) {
            return Err(Error::Invalid(format!(
                "cell {} edge {} has more than one candidate; the edge-group phase expects one op per edge",
                c.cell, c.edge
            )));
        }
    }
    Ok(())
}

/// Decisions with the deltas filled in and no ranks yet.
fn score_all(sorted: &[&Candidate], precision: u32) -> Result<Vec<Decision>> {
    sorted
        .iter()
        .map(|c| {
            let repeats = c.kappa_orig.len();
            let lengths = [c.kappa_pruned.len(), c.regions_orig.len(), c.regions_pruned.len()];
            if repeats == 0 || lengths.iter().any(|&n| n != repeats) {
                return Err(Error::Invalid(format!(
                    "candidate {} needs the same non-zero number of repeats in all four score lists, got {:?}",
                    c.id,
                    [repeats, lengths[0], lengths[1], lengths[2]]
                )));
            }
            Ok(Decision {
                id: c.id,
                cell: c.cell,
                edge: c.edge,
                op: c.op,
                delta_kappa: mean_delta(&c.kappa_orig, &c.kappa_pruned, |d| round_decimal_numpy(d, precision)),
                delta_regions: mean_delta(&c.regions_orig, &c.regions_pruned, |d| {
                    round_decimal_python(d, precision)
                }),
                rank_kappa: 0,
                rank_regions: 0,
                rank_sum: 0,
                pruned: false,
            })
        })
        .collect()
}

fn mean_delta(orig: &[f64], pruned: &[f64], round: impl Fn(f64) -> f64) -> f64 {
    let deltas: Vec<f64> = orig
        .iter()
        .zip(pruned)
        .map(|(&o, &p)| round((o - p) / o))
        .collect();
    numpy_mean(&deltas)
}

/// Fills in ranks and returns decision indices in the reference's final order (rank sum, then
/// the Δκ order).
fn rank_all(decisions: &mut [Decision], config: RuleConfig) -> Vec<usize> {
    let kappas: Vec<f64> = decisions.iter().map(|d| d.delta_kappa).collect();
    let regions: Vec<f64> = decisions.iter().map(|d| d.delta_regions).collect();
    let (kappa_order, kappa_ranks) = dense_ranks(&kappas, true, config);
    let (_, region_ranks) = dense_ranks(&regions, false, config);
    for (i, d) in decisions.iter_mut().enumerate() {
        d.rank_kappa = kappa_ranks[i];
        d.rank_regions = region_ranks[i];
        d.rank_sum = kappa_ranks[i] + region_ranks[i];
    }
    let mut order = kappa_order;
    order.sort_by_key(|&i| decisions[i].rank_sum); // stable, as Python's sorted
    order
}

/// Stable sort by significant-figure key, then dense ranks from 1. Returns (order, rank per index).
/// NaN keys sort last in both directions (the reference would crash on them).
fn dense_ranks(values: &[f64], descending: bool, config: RuleConfig) -> (Vec<usize>, Vec<usize>) {
    let keys: Vec<f64> = values
        .iter()
        .map(|&v| round_significant(v, config.precision))
        .collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| compare_nan_last(keys[a], keys[b], descending));
    let tie_values = match config.tie_rule {
        TieRule::Reference => values,
        TieRule::RoundedKey => &keys[..],
    };
    let mut ranks = vec![0; values.len()];
    for (pos, &i) in order.iter().enumerate() {
        ranks[i] = match pos {
            0 => 1,
            _ => {
                let prev = order[pos - 1];
                ranks[prev] + usize::from(!same_value(tie_values[i], tie_values[prev]))
            }
        };
    }
    (order, ranks)
}

fn compare_nan_last(a: f64, b: f64, descending: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if descending => b.partial_cmp(&a).expect("not NaN"),
        _ => a.partial_cmp(&b).expect("not NaN"),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate whose per-repeat deltas are exactly `dk` and `dr` (orig = 1).
    fn candidate(id: u64, edge: usize, op: usize, dk: &[f64], dr: &[f64]) -> Candidate {
        Candidate {
            id,
            cell: 0,
            edge,
            op,
            kappa_orig: vec![1.0; dk.len()],
            kappa_pruned: dk.iter().map(|d| 1.0 - d).collect(),
            regions_orig: vec![1.0; dr.len()],
            regions_pruned: dr.iter().map(|d| 1.0 - d).collect(),
        }
    }

    fn uniform_active(edges: &[usize], active: usize) -> BTreeMap<EdgeKey, usize> {
        edges
            .iter()
            .map(|&edge| (EdgeKey { cell: 0, edge }, active))
            .collect()
    }

    fn summary(decisions: &[Decision]) -> Vec<(u64, usize, usize, usize, bool)> {
        decisions
            .iter()
            .map(|d| (d.id, d.rank_kappa, d.rank_regions, d.rank_sum, d.pruned))
            .collect()
    }

    /// Four ops on one edge and three on another, with ties in both scores.
    ///
    /// | id | edge | Δκ mean          | Δκ rank | ΔR mean | ΔR rank | sum |
    /// |----|------|------------------|---------|---------|---------|-----|
    /// | 0  | 0    | 0.2              | 2       | 0.1     | 2       | 4   |
    /// | 1  | 0    | 0.3              | 1       | 0.1     | 2       | 3   |
    /// | 2  | 0    | 0.2003 (key 0.2) | 2       | 0.0     | 1       | 3   |
    /// | 3  | 0    | -0.1             | 4       | 0.3     | 4       | 8   |
    /// | 4  | 1    | 0.3              | 1       | 0.2     | 3       | 4   |
    /// | 5  | 1    | 0.1              | 3       | 0.0     | 1       | 4   |
    /// | 6  | 1    | 0.1              | 3       | 0.2     | 3       | 6   |
    ///
    /// Δκ descending, stable: 1,4 (0.3) | 0,2 (0.2) | 5,6 (0.1) | 3 → dense ranks 1,1,2,2,3,3,4.
    /// ΔR ascending: 2,5 (0.0) | 0,1 (0.1) | 4,6 (0.2) | 3 → ranks 1,1,2,2,3,3,4.
    /// Sums sorted stably from the Δκ order 1,4,0,2,5,6,3: 1(3) 2(3) 4(4) 0(4) 5(4) 6(6) 3(8).
    /// prune_number 1: edge 0 loses id 1 (first of the 3s), edge 1 loses id 4 (first 4 in Δκ
    /// order, ahead of id 5 with the same sum because its Δκ is larger).
    /// prune_number 2: edge 0 also loses id 2; edge 1 also loses id 5.
    #[test]
    fn hand_worked_round_with_ties() {
        let cands = vec![
            candidate(0, 0, 1, &[0.2, 0.2, 0.2], &[0.1, 0.1, 0.1]),
            candidate(1, 0, 2, &[0.3, 0.3, 0.3], &[0.1, 0.1, 0.1]),
            candidate(2, 0, 3, &[0.2, 0.2, 0.201], &[0.0, 0.0, 0.0]),
            candidate(3, 0, 4, &[-0.1, -0.1, -0.1], &[0.3, 0.3, 0.3]),
            candidate(4, 1, 1, &[0.3, 0.3, 0.3], &[0.2, 0.2, 0.2]),
            candidate(5, 1, 2, &[0.1, 0.1, 0.1], &[0.0, 0.0, 0.0]),
            candidate(6, 1, 3, &[0.1, 0.1, 0.1], &[0.2, 0.2, 0.2]),
        ];
        let active = BTreeMap::from([
            (EdgeKey { cell: 0, edge: 0 }, 4),
            (EdgeKey { cell: 0, edge: 1 }, 3),
        ]);
        let one = prune_round(&cands, &active, 1, RuleConfig::default()).unwrap();
        // id 2's Δκ mean is 0.601/3 = 0.2003..: its 3-figure key 0.2 equals id 0's, so it sorts
        // right after id 0, but under the reference tie rule (raw means compared) it does NOT
        // share rank 2 and becomes rank 3; ids 5/6 move to 4, id 3 to 5. Sums: 4,3,4,9,4,5,7.
        assert_eq!(
            summary(&one),
            vec![
                (0, 2, 2, 4, false),
                (1, 1, 2, 3, true),
                (2, 3, 1, 4, false),
                (3, 5, 4, 9, false),
                (4, 1, 3, 4, true),
                (5, 4, 1, 5, false),
                (6, 4, 3, 7, false),
            ]
        );
        // With rounded keys as the tie rule, the table above holds exactly.
        let rounded = RuleConfig {
            precision: 3,
            tie_rule: TieRule::RoundedKey,
        };
        let one = prune_round(&cands, &active, 1, rounded).unwrap();
        assert_eq!(
            summary(&one),
            vec![
                (0, 2, 2, 4, false),
                (1, 1, 2, 3, true),
                (2, 2, 1, 3, false),
                (3, 4, 4, 8, false),
                (4, 1, 3, 4, true),
                (5, 3, 1, 4, false),
                (6, 3, 3, 6, false),
            ]
        );
        let two = prune_round(&cands, &active, 2, rounded).unwrap();
        let pruned: Vec<u64> = two.iter().filter(|d| d.pruned).map(|d| d.id).collect();
        assert_eq!(pruned, vec![1, 2, 4, 5]);
        assert!((two[2].delta_kappa - 0.601 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn per_repeat_deltas_are_rounded_before_averaging() {
        // κ: (1 − 0.99949)/1 = 0.00051 → 0.001 per repeat; R: 0.0004 → 0.0.
        let c = Candidate {
            id: 7,
            cell: 0,
            edge: 0,
            op: 1,
            kappa_orig: vec![1.0, 1.0],
            kappa_pruned: vec![0.99949, 0.99949],
            regions_orig: vec![1000.0, 1000.0],
            regions_pruned: vec![999.6, 999.6],
        };
        let other = candidate(8, 0, 2, &[0.0, 0.0], &[0.0, 0.0]);
        let d = prune_round(
            &[c, other],
            &uniform_active(&[0], 2),
            1,
            RuleConfig::default(),
        )
        .unwrap();
        assert_eq!(d[0].delta_kappa, 0.001);
        assert_eq!(d[0].delta_regions, 0.0);
        // Equal ΔR → shared region rank; larger Δκ wins the kappa rank and is pruned.
        assert_eq!(summary(&d), vec![(7, 1, 1, 2, true), (8, 2, 1, 3, false)]);
    }

    #[test]
    fn equal_rank_sums_fall_back_to_enumeration_order() {
        // Identical scores everywhere: all ranks 1, sum 2; the first op of each edge goes.
        let cands: Vec<Candidate> = (0..6)
            .rev() // input order must not matter
            .map(|i| candidate(i as u64, i / 3, i % 3 + 1, &[0.5], &[0.5]))
            .collect();
        let d = prune_round(
            &cands,
            &uniform_active(&[0, 1], 3),
            1,
            RuleConfig::default(),
        )
        .unwrap();
        let pruned: Vec<(usize, usize)> = d
            .iter()
            .filter(|d| d.pruned)
            .map(|d| (d.edge, d.op))
            .collect();
        assert_eq!(pruned, vec![(0, 1), (1, 1)]);
        assert!(d.iter().all(|d| d.rank_sum == 2));
        let ids: Vec<u64> = d.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn an_edge_is_never_emptied() {
        let cands = vec![
            candidate(0, 0, 1, &[0.9], &[0.0]),
            candidate(1, 0, 2, &[0.8], &[0.1]),
            candidate(2, 1, 1, &[0.7], &[0.2]),
            candidate(3, 1, 2, &[0.6], &[0.3]),
            candidate(4, 1, 3, &[0.5], &[0.4]),
        ];
        let active = BTreeMap::from([
            (EdgeKey { cell: 0, edge: 0 }, 2),
            (EdgeKey { cell: 0, edge: 1 }, 3),
        ]);
        let d = prune_round(&cands, &active, 10, RuleConfig::default()).unwrap();
        let pruned: Vec<u64> = d.iter().filter(|d| d.pruned).map(|d| d.id).collect();
        assert_eq!(pruned, vec![0, 2, 3]);
    }

    #[test]
    fn non_finite_scores_do_not_panic_and_rank_last() {
        let mut nan = candidate(0, 0, 1, &[0.1], &[0.1]);
        nan.kappa_orig = vec![f64::NAN];
        let mut zero = candidate(1, 0, 2, &[0.1], &[0.1]);
        zero.regions_orig = vec![0.0]; // 0/0 → NaN ΔR
        zero.regions_pruned = vec![0.0];
        let mut inf = candidate(2, 0, 3, &[0.1], &[0.1]);
        inf.kappa_pruned = vec![f64::NEG_INFINITY]; // Δκ = +inf: ranks first
        let plain = candidate(3, 0, 4, &[0.2], &[0.1]);
        let d = prune_round(
            &[nan, zero, inf, plain],
            &uniform_active(&[0], 4),
            1,
            RuleConfig::default(),
        )
        .unwrap();
        assert!(d[0].delta_kappa.is_nan() && d[1].delta_regions.is_nan());
        assert_eq!(d[2].delta_kappa, f64::INFINITY);
        assert_eq!(d[0].rank_kappa, 4); // NaN Δκ last
        assert_eq!(d[1].rank_regions, 2); // NaN ΔR last (others share 0.1)
        assert_eq!(summary(&d).iter().filter(|s| s.4).count(), 1);
        assert!(d[2].pruned);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let a = candidate(0, 0, 1, &[0.1], &[0.1]);
        let b = candidate(1, 0, 1, &[0.1], &[0.1]);
        let active = uniform_active(&[0], 3);
        let err = prune_round(&[a.clone(), b], &active, 1, RuleConfig::default()).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        let mut short = candidate(2, 0, 2, &[0.1], &[0.1]);
        short.regions_pruned.clear();
        let err = prune_round(&[a.clone(), short], &active, 1, RuleConfig::default()).unwrap_err();
        assert!(err.to_string().contains("repeats"), "{err}");
        let err = prune_round(
            std::slice::from_ref(&a),
            &uniform_active(&[0], 1),
            1,
            RuleConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("1 active ops"), "{err}");
        let err =
            prune_round(&[a], &uniform_active(&[5], 3), 1, RuleConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no active-op count"), "{err}");
    }

    /// Groups [0,2) and [2,5) of one cell, one op per edge.
    /// Group [0,2) spans 2 edges = keep: untouched.
    /// Group [2,5): Δκ 0.3, 0.1, 0.3 → ranks 1, 2, 1 (order 2,4,3); ΔR 0.2, 0.1, 0.0 → 3, 2, 1.
    /// Sums: edge2 4, edge3 4, edge4 2; stable sort from Δκ order (2,4,3): 4(2) 2(4) 3(4).
    /// Prune all but the last 2 → edge 4 is dropped.
    #[test]
    fn edge_groups_keep_the_largest_rank_sums() {
        let cands = vec![
            candidate(0, 0, 3, &[0.9], &[0.0]),
            candidate(1, 1, 2, &[0.1], &[0.5]),
            candidate(2, 2, 1, &[0.3], &[0.2]),
            candidate(3, 3, 4, &[0.1], &[0.1]),
            candidate(4, 4, 2, &[0.3], &[0.0]),
        ];
        let d = prune_edge_groups(&cands, &[(0, 2), (2, 5)], 2, RuleConfig::default()).unwrap();
        assert_eq!(
            summary(&d),
            vec![
                (0, 1, 1, 2, false),
                (1, 2, 2, 4, false),
                (2, 1, 3, 4, false),
                (3, 2, 2, 4, false),
                (4, 1, 1, 2, true),
            ]
        );
        // Ties in sum: the candidate later in the Δκ order survives.
        let tied: Vec<Candidate> = (0..4)
            .map(|e| candidate(e as u64, e, 1, &[0.5], &[0.5]))
            .collect();
        let d = prune_edge_groups(&tied, &[(0, 4)], 2, RuleConfig::default()).unwrap();
        let pruned: Vec<bool> = d.iter().map(|d| d.pruned).collect();
        assert_eq!(pruned, vec![true, true, false, false]);
        // A reduction-cell candidate is ranked in its own cell's group.
        let mut reduce = candidate(9, 0, 1, &[0.5], &[0.5]);
        reduce.cell = 1;
        let mut with_reduce = tied.clone();
        with_reduce.push(reduce);
        let d = prune_edge_groups(&with_reduce, &[(0, 4)], 2, RuleConfig::default()).unwrap();
        assert_eq!(d.iter().filter(|d| d.pruned).count(), 2);
        assert!(!d.last().unwrap().pruned);
        let err = prune_edge_groups(&tied, &[(0, 3)], 2, RuleConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no edge group"), "{err}");
    }
}
