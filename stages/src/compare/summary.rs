//! What a comparison computes: per configuration the found cells and their accuracies, how
//! many seeds agree on each edge, how noisy the scores are, and how stable the rankings are.
use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::DataFrame;

use super::sources::RunData;
use crate::error::Result;
use crate::stage::bench::ResultRow;
use tenas_core::space::nb201_arch::{Arch, EDGES, NUM_EDGES};
use tenas_core::stats;

/// One candidate evaluation (one repeat) from a `candidates` table.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateScore {
    pub seed: u64,
    pub round: u64,
    pub edge: u64,
    pub op: String,
    pub repeat: u64,
    pub kappa: f64,
    pub regions: f64,
    pub rank_sum: u64,
}

/// Every seed of one configuration (the latest run of each seed wins).
pub struct ConfigRuns {
    pub config: String,
    pub label: String,
    pub experiment: String,
    /// `stage.key` → value of the configuration's first run (seeds apart, all its runs agree).
    pub params: BTreeMap<String, String>,
    pub seeds: Vec<ResultRow>,
    /// DARTS searches: `(seed, genotype text)`.
    pub genotypes: Vec<(u64, String)>,
    pub candidates: Vec<CandidateScore>,
}

/// Groups runs by configuration, in the order the configurations first appear in `all`
/// (sources in the order given), and labels each one.
pub fn group(all: &[RunData]) -> Result<Vec<ConfigRuns>> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_config: BTreeMap<&str, Vec<&RunData>> = BTreeMap::new();
    for run in all {
        let runs = by_config.entry(&run.config).or_default();
        if runs.is_empty() {
            order.push(&run.config);
        }
        runs.push(run);
    }
    order
        .into_iter()
        .map(|config| {
            let mut runs = by_config.remove(config).unwrap_or_default();
            // Run ids sort by time: a later run of the same seed replaces an earlier one.
            runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
            config_runs(config, &runs, all)
        })
        .collect()
}

/// One configuration's runs (oldest first) merged seed by seed.
fn config_runs(config: &str, runs: &[&RunData], all: &[RunData]) -> Result<ConfigRuns> {
    let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
    let mut seeds: BTreeMap<u64, ResultRow> = BTreeMap::new();
    let mut genotypes: BTreeMap<u64, String> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for row in &run.results {
            owner.insert(row.seed, i);
            seeds.insert(row.seed, row.clone());
        }
        for (seed, text, _) in &run.genotypes {
            owner.insert(*seed, i);
            genotypes.insert(*seed, text.clone());
        }
    }
    let mut candidates = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if let Some(frame) = &run.candidates {
            let rows = candidate_scores(frame)?;
            candidates.extend(rows.into_iter().filter(|c| owner.get(&c.seed) == Some(&i)));
        }
    }
    let first = runs[0];
    Ok(ConfigRuns {
        config: config.to_string(),
        label: config_label(first, runs, all),
        experiment: first.experiment.clone(),
        params: first.params.clone(),
        seeds: seeds.into_values().collect(),
        genotypes: genotypes.into_iter().collect(),
        candidates,
    })
}

/// How a configuration is named in the report, the tables, the plots and `--baseline`: its
/// experiment and its sweep label (`sampling=per_candidate,init=kaiming`) when its runs agree
/// on one, else the params in which the experiment's compared runs differ.
fn config_label(first: &RunData, runs: &[&RunData], all: &[RunData]) -> String {
    let labels: BTreeSet<&String> = runs
        .iter()
        .filter_map(|r| r.matrix_label.as_ref())
        .collect();
    if let (1, Some(label)) = (labels.len(), labels.first()) {
        if runs.iter().all(|r| r.matrix_label.is_some()) {
            return format!("{} ({label})", first.experiment);
        }
    }
    let siblings: Vec<&RunData> = all
        .iter()
        .filter(|r| r.experiment == first.experiment)
        .collect();
    let shown: Vec<String> = differing_params(&siblings)
        .iter()
        .filter_map(|k| first.params.get(k).map(|v| format!("{k}={v}")))
        .collect();
    if shown.is_empty() {
        first.experiment.clone()
    } else {
        format!("{} ({})", first.experiment, shown.join(", "))
    }
}

/// Param keys whose values are not the same in every run.
fn differing_params(runs: &[&RunData]) -> Vec<String> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let values: BTreeSet<Option<&String>> = runs.iter().map(|r| r.params.get(*k)).collect();
            values.len() > 1
        })
        .cloned()
        .collect()
}

fn candidate_scores(frame: &DataFrame) -> Result<Vec<CandidateScore>> {
    let n = frame.height();
    let u = |c: &str| -> Result<Vec<u64>> {
        let ca = frame.column(c)?.u64()?;
        Ok((0..n).map(|i| ca.get(i).unwrap_or(0)).collect())
    };
    let f = |c: &str| -> Result<Vec<f64>> {
        let ca = frame.column(c)?.f64()?;
        Ok((0..n).map(|i| ca.get(i).unwrap_or(f64::NAN)).collect())
    };
    let op = frame.column("op")?.str()?;
    // DARTS names an op by its cell type too, so the two cells' candidates stay apart.
    let cell = frame.column("cell").ok().map(|c| c.str()).transpose()?;
    let ops: Vec<String> = (0..n)
        .map(|i| {
            let op = op.get(i).unwrap_or_default();
            match cell.and_then(|c| c.get(i)) {
                Some(cell) => format!("{cell}:{op}"),
                None => op.to_string(),
            }
        })
        .collect();
    let (seed, round, edge, repeat, rank_sum) = (
        u("seed")?,
        u("round")?,
        u("edge")?,
        u("repeat")?,
        u("rank_sum")?,
    );
    let (kappa, regions) = (f("kappa_pruned")?, u("regions_pruned")?);
    Ok((0..frame.height())
        .map(|i| CandidateScore {
            seed: seed[i],
            round: round[i],
            edge: edge[i],
            op: ops[i].clone(),
            repeat: repeat[i],
            kappa: kappa[i],
            regions: regions[i] as f64,
            rank_sum: rank_sum[i],
        })
        .collect())
}

/// Mean, sample standard deviation, min and max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Spread {
            n,
            mean,
            std: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Coefficient of variation, std / |mean|.
    pub fn cv(&self) -> f64 {
        self.std / self.mean.abs()
    }
}

/// How many seeds chose the most common op of one edge.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeAgreement {
    pub edge: usize,
    /// The edge's (to, from) nodes.
    pub nodes: (usize, usize),
    pub op: String,
    pub seeds_agreeing: usize,
    pub seeds: usize,
}

/// Per edge, the modal op among the found cells (ties broken by op name).
pub fn edge_agreement(seeds: &[ResultRow]) -> Result<Vec<EdgeAgreement>> {
    let archs = seeds
        .iter()
        .map(|r| Arch::parse(&r.arch))
        .collect::<tenas_core::Result<Vec<_>>>()?;
    Ok((0..NUM_EDGES)
        .map(|edge| {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for a in &archs {
                *counts.entry(a.ops[edge].name()).or_default() += 1;
            }
            let (op, n) = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(op, n)| (op.to_string(), *n))
                .unwrap_or_default();
            EdgeAgreement {
                edge,
                nodes: EDGES[edge],
                op,
                seeds_agreeing: n,
                seeds: archs.len(),
            }
        })
        .collect())
}

/// The spread of one candidate's scores over some set of evaluations.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreNoise {
    /// `None` when pooled over seeds.
    pub seed: Option<u64>,
    pub round: u64,
    pub edge: u64,
    pub op: String,
    pub kappa: Spread,
    pub regions: Spread,
}

/// Spread over repeats of every (seed, round, candidate), and of each first-round candidate
/// over all seeds and repeats (the first round's networks are the same for every seed).
pub fn score_noise(candidates: &[CandidateScore]) -> (Vec<ScoreNoise>, Vec<ScoreNoise>) {
    let mut per_seed: BTreeMap<(u64, u64, u64, &str), Vec<&CandidateScore>> = BTreeMap::new();
    let mut first_round: BTreeMap<(u64, &str), Vec<&CandidateScore>> = BTreeMap::new();
    for c in candidates {
        per_seed
            .entry((c.seed, c.round, c.edge, &c.op))
            .or_default()
            .push(c);
        if c.round == 0 {
            first_round.entry((c.edge, &c.op)).or_default().push(c);
        }
    }
    let noise = |seed, round, edge, op: &str, group: &[&CandidateScore]| ScoreNoise {
        seed,
        round,
        edge,
        op: op.to_string(),
        kappa: Spread::of(&group.iter().map(|c| c.kappa).collect::<Vec<_>>()),
        regions: Spread::of(&group.iter().map(|c| c.regions).collect::<Vec<_>>()),
    };
    let repeats = per_seed
        .iter()
        .map(|((s, r, e, op), g)| noise(Some(*s), *r, *e, op, g))
        .collect();
    let pooled = first_round
        .iter()
        .map(|((e, op), g)| noise(None, 0, *e, op, g))
        .collect();
    (repeats, pooled)
}

/// Kendall τ between two seeds' rankings (rank sums) of the candidates both scored in a round.
#[derive(Clone, Debug, PartialEq)]
pub struct RankAgreement {
    pub round: u64,
    pub seeds: (u64, u64),
    pub common: usize,
    pub tau: f64,
}

/// One seed's rank sum per (edge, op) in a round.
type RankSums<'a> = BTreeMap<(u64, &'a str), u64>;

pub fn rank_stability(candidates: &[CandidateScore]) -> Vec<RankAgreement> {
    // round → seed → (edge, op) → rank sum (the same in every repeat).
    let mut ranks: BTreeMap<u64, BTreeMap<u64, RankSums>> = BTreeMap::new();
    for c in candidates {
        ranks
            .entry(c.round)
            .or_default()
            .entry(c.seed)
            .or_default()
            .insert((c.edge, &c.op), c.rank_sum);
    }
    let mut out = Vec::new();
    for (round, by_seed) in &ranks {
        let seeds: Vec<&u64> = by_seed.keys().collect();
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                let (ra, rb) = (&by_seed[*a], &by_seed[*b]);
                let common: Vec<_> = ra.keys().filter(|k| rb.contains_key(*k)).collect();
                let x: Vec<f64> = common.iter().map(|k| ra[*k] as f64).collect();
                let y: Vec<f64> = common.iter().map(|k| rb[*k] as f64).collect();
                if let Ok(tau) = stats::kendall_tau_b(&x, &y) {
                    out.push(RankAgreement {
                        round: *round,
                        seeds: (**a, **b),
                        common: common.len(),
                        tau,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, arch: &str) -> ResultRow {
        ResultRow {
            experiment: "e".into(),
            seed,
            arch: arch.into(),
            nb201_index: 0,
            cifar10: 0.0,
            cifar100: 0.0,
            imagenet16_120: 0.0,
            rank_cifar10: 0,
            search_seconds: 0.0,
            device: "cpu".into(),
        }
    }

    fn run(id: &str, config: &str, label: Option<&str>, params: &[(&str, &str)]) -> RunData {
        RunData {
            experiment: "sweep".into(),
            run_id: id.into(),
            config: config.into(),
            matrix_label: label.map(str::to_string),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            results: vec![row(0, "|a|")],
            genotypes: Vec::new(),
            candidates: None,
            cells: None,
            correlation: None,
        }
    }

    #[test]
    fn a_configuration_reached_from_two_sweeps_is_labelled_by_its_params() {
        let all = [
            run(
                "1",
                "base",
                Some("init=reference"),
                &[("init", "reference"), ("ntk", "summed")],
            ),
            run(
                "1",
                "kai",
                Some("init=kaiming"),
                &[("init", "kaiming"), ("ntk", "summed")],
            ),
            run(
                "2",
                "base",
                Some("ntk=summed"),
                &[("init", "reference"), ("ntk", "summed")],
            ),
            run(
                "2",
                "full",
                Some("ntk=full"),
                &[("init", "reference"), ("ntk", "full")],
            ),
        ];
        let labels: Vec<String> = group(&all).unwrap().into_iter().map(|g| g.label).collect();
        assert_eq!(
            labels,
            [
                "sweep (init=reference, ntk=summed)",
                "sweep (init=kaiming)",
                "sweep (ntk=full)"
            ]
        );
    }

    #[test]
    fn spread_and_cv_by_hand() {
        let s = Spread::of(&[2.0, 4.0, 6.0]);
        assert_eq!((s.n, s.mean, s.std, s.min, s.max), (3, 4.0, 2.0, 2.0, 6.0));
        assert_eq!(s.cv(), 0.5);
        assert_eq!(Spread::of(&[3.0]).std, 0.0);
    }

    #[test]
    fn edges_report_the_modal_op() -> Result<()> {
        let a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let b = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let c = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let agree = edge_agreement(&[row(0, a), row(1, b), row(2, c)])?;
        assert_eq!(agree[0].op, "nor_conv_3x3");
        assert_eq!(agree[0].seeds_agreeing, 2);
        assert_eq!(agree[1].op, "nor_conv_1x1");
        // Edge 3 (3<-0): three different ops, one seed each; ties go to the first name.
        assert_eq!(
            (agree[3].op.as_str(), agree[3].seeds_agreeing),
            ("avg_pool_3x3", 1)
        );
        assert_eq!(agree[5].seeds_agreeing, 3);
        Ok(())
    }

    fn cand(
        seed: u64,
        round: u64,
        edge: u64,
        op: &str,
        repeat: u64,
        kappa: f64,
        rank: u64,
    ) -> CandidateScore {
        CandidateScore {
            seed,
            round,
            edge,
            op: op.into(),
            repeat,
            kappa,
            regions: 10.0,
            rank_sum: rank,
        }
    }

    #[test]
    fn noise_pools_only_the_first_round_across_seeds() {
        let c = vec![
            cand(0, 0, 0, "a", 0, 1.0, 2),
            cand(0, 0, 0, "a", 1, 3.0, 2),
            cand(1, 0, 0, "a", 0, 5.0, 2),
            cand(1, 1, 0, "a", 0, 7.0, 2),
        ];
        let (repeats, pooled) = score_noise(&c);
        assert_eq!(repeats.len(), 3);
        assert_eq!(repeats[0].kappa.mean, 2.0);
        assert_eq!(pooled.len(), 1);
        assert_eq!((pooled[0].kappa.n, pooled[0].kappa.mean), (3, 3.0));
        assert_eq!(pooled[0].regions.cv(), 0.0);
    }

    #[test]
    fn rank_stability_uses_common_candidates() {
        // Seed 0 ranks a < b < c; seed 1 ranks a < c < b and also has d.
        let c = vec![
            cand(0, 0, 0, "a", 0, 0.0, 1),
            cand(0, 0, 0, "b", 0, 0.0, 2),
            cand(0, 0, 0, "c", 0, 0.0, 3),
            cand(1, 0, 0, "a", 0, 0.0, 1),
            cand(1, 0, 0, "b", 0, 0.0, 3),
            cand(1, 0, 0, "c", 0, 0.0, 2),
            cand(1, 0, 1, "d", 0, 0.0, 4),
        ];
        let agree = rank_stability(&c);
        assert_eq!(agree.len(), 1);
        assert_eq!(agree[0].common, 3);
        // Pairs (a,b) C, (a,c) C, (b,c) D → τ = 1/3.
        assert!((agree[0].tau - 1.0 / 3.0).abs() < 1e-12);
    }
}
