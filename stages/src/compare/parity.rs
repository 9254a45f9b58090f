//! `tenas parity`: do two runs of one search (CPU and CUDA, or two machines) score every
//! candidate alike and make the same pruning decisions?
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use polars::prelude::DataFrame;

use tenas_pipeline::Store;

use super::sources::{self, RunData};
use crate::error::{Error, Result};

/// Largest relative differences accepted before the runs are said to disagree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub kappa: f64,
    pub regions: f64,
}

/// One seed's comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedParity {
    pub seed: u64,
    /// Candidate rows (candidate × repeat) present in both runs.
    pub matched: usize,
    /// Rows present in only one run (after a decision differs, later rounds differ).
    pub unmatched: usize,
    pub kappa_max_rel: f64,
    pub kappa_median_rel: f64,
    pub regions_max_rel: f64,
    /// Candidates with the same pruned / kept verdict, of `matched` rows.
    pub same_decision: usize,
    /// The found cells (NAS-Bench-201 arch strings or DARTS genotypes), when both runs have one.
    pub archs: Option<(String, String)>,
}

impl SeedParity {
    pub fn within(&self, tol: Tolerance) -> bool {
        self.unmatched == 0
            && self.same_decision == self.matched
            && self.kappa_max_rel <= tol.kappa
            && self.regions_max_rel <= tol.regions
            && self.archs.as_ref().is_none_or(|(a, b)| a == b)
    }
}

/// Identifies a candidate row across runs.
type RowKey = (u64, String);

#[derive(Clone, Copy, Debug)]
struct RowScores {
    kappa: [f64; 2],
    regions: [f64; 2],
    pruned: bool,
}

fn rows(run: &RunData) -> Result<BTreeMap<RowKey, RowScores>> {
    let frame = run.candidates.as_ref().ok_or_else(|| {
        Error::invalid(format!(
            "run {} of `{}` has no candidates table",
            run.run_id, run.experiment
        ))
    })?;
    let mut out = BTreeMap::new();
    for i in 0..frame.height() {
        let key = (u64_at(frame, "seed", i)?, row_name(frame, i)?);
        let scores = RowScores {
            kappa: [
                f64_at(frame, "kappa_orig", i)?,
                f64_at(frame, "kappa_pruned", i)?,
            ],
            regions: [
                u64_at(frame, "regions_orig", i)? as f64,
                u64_at(frame, "regions_pruned", i)? as f64,
            ],
            pruned: frame.column("pruned")?.bool()?.get(i).unwrap_or(false),
        };
        out.insert(key, scores);
    }
    Ok(out)
}

/// `round/phase/cell/edge/op/repeat`, with the columns a space has.
fn row_name(frame: &DataFrame, i: usize) -> Result<String> {
    let mut name = format!("r{}", u64_at(frame, "round", i)?);
    for column in ["phase", "cell"] {
        if let Ok(c) = frame.column(column) {
            name += &format!("/{}", c.str()?.get(i).unwrap_or_default());
        }
    }
    let op = frame
        .column("op")?
        .str()?
        .get(i)
        .unwrap_or_default()
        .to_string();
    Ok(format!(
        "{name}/e{}/{op}/x{}",
        u64_at(frame, "edge", i)?,
        u64_at(frame, "repeat", i)?
    ))
}

fn u64_at(frame: &DataFrame, column: &str, i: usize) -> Result<u64> {
    Ok(frame.column(column)?.u64()?.get(i).unwrap_or_default())
}

fn f64_at(frame: &DataFrame, column: &str, i: usize) -> Result<f64> {
    Ok(frame.column(column)?.f64()?.get(i).unwrap_or(f64::NAN))
}

fn relative(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

/// Compares every seed the two runs share.
pub fn parity(a: &RunData, b: &RunData) -> Result<Vec<SeedParity>> {
    let (ra, rb) = (rows(a)?, rows(b)?);
    let seeds_of =
        |rows: &BTreeMap<RowKey, RowScores>| rows.keys().map(|k| k.0).collect::<BTreeSet<u64>>();
    let seeds: Vec<u64> = seeds_of(&ra)
        .intersection(&seeds_of(&rb))
        .copied()
        .collect();
    if seeds.is_empty() {
        return Err(Error::invalid(format!(
            "runs {} and {} share no seed",
            a.run_id, b.run_id
        )));
    }
    let arch = |run: &RunData, seed: u64| {
        let nb201 = run.results.iter().find(|r| r.seed == seed).map(|r| &r.arch);
        let darts = run.genotypes.iter().find(|g| g.0 == seed).map(|g| &g.1);
        nb201.or(darts).cloned()
    };
    Ok(seeds
        .into_iter()
        .map(|seed| {
            let mut kappa = Vec::new();
            let (mut regions_max, mut same, mut unmatched) = (0f64, 0, 0);
            for (key, x) in ra
                .range((seed, String::new())..)
                .take_while(|(k, _)| k.0 == seed)
            {
                let Some(y) = rb.get(key) else {
                    unmatched += 1;
                    continue;
                };
                for j in 0..2 {
                    kappa.push(relative(x.kappa[j], y.kappa[j]));
                    regions_max = regions_max.max(relative(x.regions[j], y.regions[j]));
                }
                same += usize::from(x.pruned == y.pruned);
            }
            unmatched += rb
                .range((seed, String::new())..)
                .take_while(|(k, _)| k.0 == seed)
                .filter(|(k, _)| !ra.contains_key(*k))
                .count();
            kappa.sort_by(f64::total_cmp);
            SeedParity {
                seed,
                matched: kappa.len() / 2,
                unmatched,
                kappa_max_rel: kappa.last().copied().unwrap_or(0.0),
                kappa_median_rel: kappa.get(kappa.len() / 2).copied().unwrap_or(0.0),
                regions_max_rel: regions_max,
                same_decision: same,
                archs: arch(a, seed).zip(arch(b, seed)),
            }
        })
        .collect())
}

/// The terminal table: one line per seed and a verdict.
pub fn format_parity(rows: &[SeedParity], tol: Tolerance) -> String {
    let mut out = format!(
        "{:>4}  {:>8}  {:>9}  {:>11}  {:>11}  {:>11}  {:>9}  {:>9}  {}\n",
        "seed",
        "rows",
        "unmatched",
        "κ max rel",
        "κ median",
        "R max rel",
        "decisions",
        "same cell",
        "verdict"
    );
    for r in rows {
        let cell = match &r.archs {
            Some((a, b)) => {
                if a == b {
                    "yes"
                } else {
                    "NO"
                }
            }
            None => "-",
        };
        let _ = writeln!(
            out,
            "{:>4}  {:>8}  {:>9}  {:>11.2e}  {:>11.2e}  {:>11.2e}  {:>9}  {:>9}  {}",
            r.seed,
            r.matched,
            r.unmatched,
            r.kappa_max_rel,
            r.kappa_median_rel,
            r.regions_max_rel,
            format!("{}/{}", r.same_decision, r.matched),
            cell,
            if r.within(tol) { "agree" } else { "DIFFER" }
        );
    }
    let _ = writeln!(
        out,
        "tolerance: κ {:.0e} relative, regions {:.0e} relative; decisions and cells must match",
        tol.kappa, tol.regions
    );
    out
}

/// Checks run `b` against run `a` (run ids or results folders; a sweep's configurations are
/// matched by label): the report, and whether every score is within `tolerance` and every
/// decision the same.
pub fn compare_runs(
    store: &Store,
    a: &str,
    b: &str,
    tolerance: Tolerance,
) -> Result<(String, bool)> {
    let resolve = |source: &str| sources::resolve(store, &[source.to_string()]);
    let (a, b) = (resolve(a)?, resolve(b)?);
    let mut report = String::new();
    let mut agree = true;
    for (x, y) in pairs(&a, &b)? {
        if let Some(label) = &x.matrix_label {
            report += &format!("configuration {label}:\n");
        }
        let rows = parity(x, y)?;
        report += &format_parity(&rows, tolerance);
        agree &= rows.iter().all(|r| r.within(tolerance));
    }
    Ok((report, agree))
}

/// The runs of two sources side by side: one run each, or a sweep's configurations matched
/// by label.
fn pairs<'r>(a: &'r [RunData], b: &'r [RunData]) -> Result<Vec<(&'r RunData, &'r RunData)>> {
    let labels = |runs: &[RunData]| -> Vec<Option<String>> {
        runs.iter().map(|r| r.matrix_label.clone()).collect()
    };
    if labels(a) != labels(b) {
        return Err(Error::invalid(format!(
            "the two runs do not have the same configurations ({:?} against {:?}); give one run id or results folder each",
            labels(a),
            labels(b)
        )));
    }
    if a.len() != 1 && !a.iter().all(|r| r.matrix_label.is_some()) {
        return Err(Error::invalid(format!(
            "each source must name one run, not {}",
            a.len()
        )));
    }
    Ok(a.iter().zip(b).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Columns;

    fn run(kappa_scale: f64, flip: bool) -> RunData {
        let mut c = Columns::default();
        for (edge, op) in [(0, "a"), (0, "b"), (1, "a")] {
            c.u64("round", 0);
            c.u64("edge", edge);
            c.str("op", op);
            c.u64("repeat", 0);
            c.u64("seed", 3);
            c.f64("kappa_orig", 100.0 * kappa_scale);
            c.f64("kappa_pruned", 50.0 + edge as f64);
            c.u64("regions_orig", 900);
            c.u64("regions_pruned", 800 + edge);
            c.bool("pruned", (op == "a") != flip);
        }
        RunData {
            experiment: "x".into(),
            run_id: "r".into(),
            config: String::new(),
            matrix_label: None,
            params: BTreeMap::new(),
            results: Vec::new(),
            genotypes: Vec::new(),
            candidates: Some(c.frame().unwrap()),
            cells: None,
            correlation: None,
        }
    }

    #[test]
    fn agreement_and_disagreement_are_measured() {
        let tol = Tolerance {
            kappa: 1e-3,
            regions: 0.0,
        };
        let same = parity(&run(1.0, false), &run(1.0, false)).unwrap();
        assert_eq!(same[0].matched, 3);
        assert!(same[0].within(tol), "{same:?}");
        let close = parity(&run(1.0, false), &run(1.0001, false)).unwrap();
        assert!(close[0].within(tol) && close[0].kappa_max_rel > 0.0);
        let far = parity(&run(1.0, false), &run(1.01, false)).unwrap();
        assert!(!far[0].within(tol));
        let flipped = parity(&run(1.0, false), &run(1.0, true)).unwrap();
        assert_eq!(flipped[0].same_decision, 0);
        assert!(format_parity(&flipped, tol).contains("DIFFER"));
    }
}
