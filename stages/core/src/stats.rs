//! Rank correlations (Kendall τ-b, Spearman ρ with average ranks) and a seeded percentile
//! bootstrap (of a paired statistic, of a mean, of a mean paired difference), for comparing
//! proxy scores with benchmark accuracies and search settings with each other.
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Kendall's τ-b, which corrects for ties in either variable (as `scipy.stats.kendalltau`),
/// in O(n log n) (Knight's algorithm, from the `kendalls` crate): bootstrapping a study of
/// thousands of cells needs thousands of them. Errors where the samples differ in length, hold
/// fewer than 2 pairs or a NaN, or one variable is constant (τ-b is 0/0 there).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pairs(x, y)?;
    let (tau, _) = kendalls::tau_b_with_comparator(x, y, |a: &f64, b: &f64| a.total_cmp(b))
        .map_err(|e| Error::Invalid(format!("Kendall tau: {e:?}")))?;
    if !tau.is_finite() {
        return Err(Error::Invalid(
            "Kendall tau is undefined: one variable is constant".into(),
        ));
    }
    Ok(tau)
}

/// Spearman's ρ: Pearson correlation of the ranks, ties getting their average rank.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pairs(x, y)?;
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Pearson's correlation coefficient.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pairs(x, y)?;
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(Error::Invalid(
            "correlation is undefined: one variable is constant".into(),
        ));
    }
    Ok(sxy / (sxx * syy).sqrt())
}

/// 1-based ranks; tied values share the mean of the ranks they span.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + 1 + end) as f64 / 2.0; // mean of ranks start+1 ..= end
        for &i in &order[start..end] {
            ranks[i] = average;
        }
        start = end;
    }
    ranks
}

/// A bootstrap estimate with its percentile confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapInterval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// Resamples on which the statistic was defined (a resample of tied points can be constant).
    pub valid_resamples: usize,
}

/// Percentile bootstrap of a paired statistic: `resamples` draws of n pairs with replacement from
/// a ChaCha8 stream seeded with `seed`; the interval holds the central `level` mass
/// (e.g. 0.95). Resamples where the statistic errors are skipped and counted out.
pub fn bootstrap_ci(
    x: &[f64],
    y: &[f64],
    statistic: impl Fn(&[f64], &[f64]) -> Result<f64>,
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<BootstrapInterval> {
    check_pairs(x, y)?;
    check_bootstrap(resamples, level)?;
    let estimate = statistic(x, y)?;
    let (mut xs, mut ys) = (vec![0.0; x.len()], vec![0.0; y.len()]);
    percentile_interval(estimate, x.len(), resamples, level, seed, |drawn| {
        for (k, &i) in drawn.iter().enumerate() {
            xs[k] = x[i];
            ys[k] = y[i];
        }
        statistic(&xs, &ys).ok()
    })
}

/// Percentile bootstrap of the mean of `values` (seeded as [`bootstrap_ci`]). One value has no
/// interval: its bounds are NaN and `valid_resamples` is 0, since one value says nothing about
/// how the mean varies.
pub fn bootstrap_mean(
    values: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<BootstrapInterval> {
    check_bootstrap(resamples, level)?;
    if values.is_empty() {
        return Err(Error::Invalid("the mean of no values".into()));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::Invalid(format!(
            "bootstrap of the mean: a value is {v}"
        )));
    }
    let estimate = mean(values);
    if values.len() == 1 {
        return Ok(BootstrapInterval {
            estimate,
            lower: f64::NAN,
            upper: f64::NAN,
            valid_resamples: 0,
        });
    }
    percentile_interval(estimate, values.len(), resamples, level, seed, |drawn| {
        Some(drawn.iter().map(|&i| values[i]).sum::<f64>() / drawn.len() as f64)
    })
}

/// Differences `b − a` of paired values (the same seed under two settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    /// Mean of `b − a`, with the bootstrap interval from resampling pairs.
    pub mean: BootstrapInterval,
    /// Pairs with `b > a`, `b == a` and `b < a`.
    pub improved: usize,
    pub tied: usize,
    pub worsened: usize,
}

impl PairedDifference {
    pub fn n(&self) -> usize {
        self.improved + self.tied + self.worsened
    }
}

/// The mean paired difference `b − a` with a percentile-bootstrap interval over pairs, and how
/// many pairs went up, stayed equal and went down.
pub fn paired_difference(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<PairedDifference> {
    if a.len() != b.len() {
        return Err(Error::Invalid(format!(
            "paired samples differ in length: {} vs {}",
            a.len(),
            b.len()
        )));
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| b - a).collect();
    let count = |keep: fn(f64) -> bool| differences.iter().filter(|&&d| keep(d)).count();
    Ok(PairedDifference {
        mean: bootstrap_mean(&differences, resamples, level, seed)?,
        improved: count(|d| d > 0.0),
        tied: count(|d| d == 0.0),
        worsened: count(|d| d < 0.0),
    })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn check_bootstrap(resamples: usize, level: f64) -> Result<()> {
    if !(0.0 < level && level < 1.0) || resamples == 0 {
        return Err(Error::Invalid(format!(
            "bootstrap needs 0 < level < 1 and at least one resample, got level {level}, {resamples} resamples"
        )));
    }
    Ok(())
}

/// Draws `resamples` sets of `n` indices with replacement from a ChaCha8 stream seeded with
/// `seed`, evaluates `statistic` on each (undefined or non-finite values are skipped) and
/// returns the central `level` percentile interval around `estimate`.
fn percentile_interval(
    estimate: f64,
    n: usize,
    resamples: usize,
    level: f64,
    seed: u64,
    mut statistic: impl FnMut(&[usize]) -> Option<f64>,
) -> Result<BootstrapInterval> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut drawn = vec![0; n];
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in drawn.iter_mut() {
            *slot = rng.random_range(0..n);
        }
        if let Some(value) = statistic(&drawn).filter(|v| v.is_finite()) {
            stats.push(value);
        }
    }
    if stats.is_empty() {
        return Err(Error::Invalid(
            "bootstrap: the statistic was undefined on every resample".into(),
        ));
    }
    stats.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Ok(BootstrapInterval {
        estimate,
        lower: percentile(&stats, alpha),
        upper: percentile(&stats, 1.0 - alpha),
        valid_resamples: stats.len(),
    })
}

/// Linear interpolation between order statistics (numpy's default `percentile`).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

fn check_pairs(x: &[f64], y: &[f64]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::Invalid(format!(
            "paired samples differ in length: {} vs {}",
            x.len(),
            y.len()
        )));
    }
    if x.len() < 2 {
        return Err(Error::Invalid(format!(
            "need at least 2 pairs, got {}",
            x.len()
        )));
    }
    if let Some(v) = x.iter().chain(y).find(|v| v.is_nan()) {
        return Err(Error::Invalid(format!("paired samples contain {v}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    fn sign(v: f64) -> i8 {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn kendall_without_ties() {
        // x = 1..5, y = 1,3,2,5,4: discordant pairs (3,2) and (5,4) → C = 8, D = 2, τ = 6/10.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        assert!(close(kendall_tau_b(&x, &y).unwrap(), 0.6));
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        assert!(close(kendall_tau_b(&x, &reversed).unwrap(), -1.0));
    }

    #[test]
    fn kendall_tau_b_with_ties() {
        // x = 1,2,2,3  y = 1,3,2,3. Pairs (i<j):
        // (0,1) C  (0,2) C  (0,3) C  (1,2) tie x only  (1,3) tie y only  (2,3) C
        // C = 4, D = 0, tied_x = 1, tied_y = 1 → τb = 4 / sqrt(5 * 5) = 0.8 (scipy agrees).
        let x = [1.0, 2.0, 2.0, 3.0];
        let y = [1.0, 3.0, 2.0, 3.0];
        assert!(close(kendall_tau_b(&x, &y).unwrap(), 0.8));
        // A pair tied in both drops out of both denominators:
        // x = 1,1,2  y = 5,5,6: C = 2, the (0,1) pair is tied in both → τb = 2/sqrt(2*2) = 1.
        assert!(close(
            kendall_tau_b(&[1.0, 1.0, 2.0], &[5.0, 5.0, 6.0]).unwrap(),
            1.0
        ));
    }

    /// τ-b by counting every pair: the definition, as an oracle.
    fn kendall_by_pairs(x: &[f64], y: &[f64]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let (dx, dy) = (sign(x[j] - x[i]), sign(y[j] - y[i]));
                match (dx, dy) {
                    (0, 0) => {}
                    (0, _) => tx += 1,
                    (_, 0) => ty += 1,
                    _ if dx == dy => c += 1,
                    _ => d += 1,
                }
            }
        }
        (c - d) as f64 / (((c + d + ty) * (c + d + tx)) as f64).sqrt()
    }

    /// At every size τ-b is defined, and equals the pair count, unless a variable is constant;
    /// then it is an error saying so (the pair count is 0/0 there).
    #[test]
    fn kendall_matches_pair_counting_with_many_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let constant = |v: &[f64]| v.iter().all(|&a| a == v[0]);
        let mut checked = [0usize; 2]; // defined, constant
        for n in [2usize, 3, 7, 50, 301, 1000] {
            let x: Vec<f64> = (0..n).map(|_| rng.random_range(0..6) as f64).collect();
            let y: Vec<f64> = (0..n).map(|_| rng.random_range(0..4) as f64).collect();
            let flat = vec![2.0; n];
            for (x, y) in [(&x, &y), (&x, &flat), (&flat, &y)] {
                let oracle = kendall_by_pairs(x, y);
                if constant(x) || constant(y) {
                    let err = kendall_tau_b(x, y).unwrap_err().to_string();
                    assert!(err.contains("one variable is constant"), "n = {n}: {err}");
                    assert!(oracle.is_nan(), "n = {n}");
                    checked[1] += 1;
                } else {
                    let tau = kendall_tau_b(x, y).unwrap();
                    assert!((tau - oracle).abs() < 1e-12, "n = {n}: {tau} vs {oracle}");
                    checked[0] += 1;
                }
            }
        }
        assert!(checked[0] >= 5 && checked[1] >= 12, "{checked:?}");
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0, 20.0]),
            vec![2.0, 4.0, 4.0, 1.0, 4.0]
        );
    }

    #[test]
    fn spearman_with_ties() {
        // ranks x = 1, 2.5, 2.5, 4; ranks y = 1, 3.5, 2, 3.5 (mean 2.5 for both).
        // dx = -1.5, 0, 0, 1.5; dy = -1.5, 1, -0.5, 1
        // Σdxdy = 2.25 + 0 + 0 + 1.5 = 3.75; Σdx² = 4.5; Σdy² = 2.25 + 1 + 0.25 + 1 = 4.5
        // ρ = 3.75 / 4.5 = 0.8333…
        let rho = spearman_rho(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 3.0]).unwrap();
        assert!(close(rho, 3.75 / 4.5), "{rho}");
        // Without ties ρ = 1 − 6Σd²/(n(n²−1)): d = 0,1,1,1,1 → 1 − 24/120 = 0.8.
        let rho = spearman_rho(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 3.0, 2.0, 5.0, 4.0]).unwrap();
        assert!(close(rho, 0.8), "{rho}");
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        assert!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]).is_err());
        assert!(spearman_rho(&[1.0, 2.0], &[3.0, 3.0]).is_err());
        assert!(kendall_tau_b(&[1.0], &[1.0]).is_err());
        assert!(kendall_tau_b(&[1.0, 2.0], &[1.0]).is_err());
        assert!(spearman_rho(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_estimate() {
        let x: Vec<f64> = (0..60).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 25.0 * ((v * 1.7).sin())).collect();
        let a = bootstrap_ci(&x, &y, kendall_tau_b, 400, 0.95, 42).unwrap();
        let b = bootstrap_ci(&x, &y, kendall_tau_b, 400, 0.95, 42).unwrap();
        let c = bootstrap_ci(&x, &y, kendall_tau_b, 400, 0.95, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
        assert!(a.lower > 0.0 && a.upper <= 1.0, "{a:?}");
        assert_eq!(a.valid_resamples, 400);
        let narrow = bootstrap_ci(&x, &y, kendall_tau_b, 400, 0.5, 42).unwrap();
        assert!(narrow.upper - narrow.lower < a.upper - a.lower);
    }

    #[test]
    fn bootstrap_mean_of_two_points_by_hand() {
        // Resampled means of [0, 1] are 0, 0.5, 1 with chances 1/4, 1/2, 1/4: the central 95%
        // runs from 0 to 1, the central 40% (30th to 70th percentile) is 0.5 alone.
        let wide = bootstrap_mean(&[0.0, 1.0], 10_000, 0.95, 7).unwrap();
        assert_eq!(
            (wide.estimate, wide.lower, wide.upper, wide.valid_resamples),
            (0.5, 0.0, 1.0, 10_000)
        );
        let narrow = bootstrap_mean(&[0.0, 1.0], 10_000, 0.4, 7).unwrap();
        assert_eq!((narrow.lower, narrow.upper), (0.5, 0.5));
        let constant = bootstrap_mean(&[3.0, 3.0, 3.0], 100, 0.95, 7).unwrap();
        assert_eq!((constant.lower, constant.upper), (3.0, 3.0));
    }

    #[test]
    fn bootstrap_mean_covers_the_true_mean_about_95_percent() {
        // 300 samples of 25 from N(5, 2²): the percentile interval should hold 5 in about 93–95%
        // of them (it runs slightly short at small n) and be about 2·1.96·2/√25 = 1.57 wide.
        let normal = Normal::new(5.0, 2.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut covered, mut width) = (0, 0.0);
        let trials = 300;
        for trial in 0..trials {
            let sample: Vec<f64> = (0..25).map(|_| normal.sample(&mut rng)).collect();
            let ci = bootstrap_mean(&sample, 1000, 0.95, trial).unwrap();
            covered += usize::from(ci.lower <= 5.0 && 5.0 <= ci.upper);
            width += (ci.upper - ci.lower) / trials as f64;
        }
        let coverage = covered as f64 / trials as f64;
        assert!((0.88..=0.99).contains(&coverage), "coverage {coverage}");
        assert!((width - 1.568).abs() < 0.15 * 1.568, "mean width {width}");
    }

    #[test]
    fn bootstrap_mean_is_seeded_and_holds_the_mean() {
        let skewed = [0.1, 0.2, 0.2, 0.5, 3.0, 0.3, 0.4, 0.25];
        let a = bootstrap_mean(&skewed, 2000, 0.95, 1).unwrap();
        assert_eq!(a, bootstrap_mean(&skewed, 2000, 0.95, 1).unwrap());
        assert_ne!(a, bootstrap_mean(&skewed, 2000, 0.95, 2).unwrap());
        assert!(close(a.estimate, 4.95 / 8.0), "{a:?}");
        assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
        assert!(a.lower >= 0.1 && a.upper <= 3.0, "{a:?}");
    }

    #[test]
    fn bootstrap_mean_of_one_value_has_no_interval() {
        let one = bootstrap_mean(&[93.5], 1000, 0.95, 0).unwrap();
        assert_eq!((one.estimate, one.valid_resamples), (93.5, 0));
        assert!(one.lower.is_nan() && one.upper.is_nan(), "{one:?}");
        assert!(bootstrap_mean(&[], 1000, 0.95, 0).is_err());
        assert!(bootstrap_mean(&[1.0, f64::NAN], 1000, 0.95, 0).is_err());
        assert!(bootstrap_mean(&[1.0, 2.0], 1000, 1.0, 0).is_err());
        assert!(bootstrap_mean(&[1.0, 2.0], 0, 0.95, 0).is_err());
    }

    #[test]
    fn paired_difference_counts_and_brackets_the_mean() {
        // b − a = 1, 0, −0.5, 1: mean 0.375, two up, one equal, one down.
        let a = [90.0, 91.0, 92.0, 93.0];
        let b = [91.0, 91.0, 91.5, 94.0];
        let d = paired_difference(&a, &b, 5000, 0.95, 3).unwrap();
        assert_eq!((d.improved, d.tied, d.worsened, d.n()), (2, 1, 1, 4));
        assert!(close(d.mean.estimate, 0.375), "{d:?}");
        assert!(d.mean.lower < 0.375 && 0.375 < d.mean.upper, "{d:?}");
        assert!(d.mean.lower >= -0.5 && d.mean.upper <= 1.0, "{d:?}");
        // Swapping the settings mirrors everything.
        let r = paired_difference(&b, &a, 5000, 0.95, 3).unwrap();
        assert_eq!((r.improved, r.tied, r.worsened), (1, 1, 2));
        assert!(close(r.mean.lower, -d.mean.upper) && close(r.mean.upper, -d.mean.lower));
        // A constant shift is known exactly.
        let shifted: Vec<f64> = a.iter().map(|v| v + 0.5).collect();
        let s = paired_difference(&a, &shifted, 500, 0.95, 3).unwrap();
        assert_eq!((s.mean.lower, s.mean.upper, s.improved), (0.5, 0.5, 4));
        assert!(paired_difference(&a, &b[..3], 500, 0.95, 3).is_err());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 0.5), 2.5);
        assert_eq!(percentile(&sorted, 1.0), 4.0);
        assert!(close(percentile(&sorted, 0.025), 1.075));
    }
}
