//! Rank correlations (Kendall τ-b, Spearman ρ with average ranks) and a seeded percentile
//! bootstrap, for comparing proxy scores with benchmark accuracies.
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Kendall's τ-b, which corrects for ties in either variable (as `scipy.stats.kendalltau`),
/// in O(n log n) (Knight's algorithm, from the `kendalls` crate): bootstrapping a study of
/// thousands of cells needs thousands of them.
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
    if !(0.0 < level && level < 1.0) || resamples == 0 {
        return Err(Error::Invalid(format!(
            "bootstrap needs 0 < level < 1 and at least one resample, got level {level}, {resamples} resamples"
        )));
    }
    let estimate = statistic(x, y)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = x.len();
    let (mut xs, mut ys) = (vec![0.0; n], vec![0.0; n]);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.random_range(0..n);
            xs[k] = x[i];
            ys[k] = y[i];
        }
        if let Ok(value) = statistic(&xs, &ys) {
            if value.is_finite() {
                stats.push(value);
            }
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

    #[test]
    fn kendall_matches_pair_counting_with_many_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [2usize, 7, 50, 301] {
            let x: Vec<f64> = (0..n).map(|_| rng.random_range(0..6) as f64).collect();
            let y: Vec<f64> = (0..n).map(|_| rng.random_range(0..4) as f64).collect();
            if let Ok(tau) = kendall_tau_b(&x, &y) {
                assert!((tau - kendall_by_pairs(&x, &y)).abs() < 1e-12, "n = {n}");
            }
        }
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
    fn percentile_interpolates_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 0.5), 2.5);
        assert_eq!(percentile(&sorted, 1.0), 4.0);
        assert!(close(percentile(&sorted, 0.025), 1.075));
    }
}
