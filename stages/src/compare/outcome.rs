//! What a configuration's found cells reach on each NB201 dataset: the accuracy spread over
//! seeds, a bootstrap interval of the mean, and the cells' mean rank and regret.
use super::datasets::DATASETS;
use super::standing::Standing;
use super::summary::Spread;
use crate::error::Result;
use crate::stage::bench::ResultRow;
use tenas_core::stats::{self, BootstrapInterval};

/// Bootstrap resamples for every interval of a comparison.
pub const RESAMPLES: usize = 10_000;
/// Central mass of every interval.
pub const LEVEL: f64 = 0.95;
/// Fixed, so a comparison prints the same intervals every time.
pub const BOOTSTRAP_SEED: u64 = 0;

/// One configuration on one dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub accuracy: Spread,
    /// Mean accuracy with its percentile-bootstrap interval over seeds (NaN bounds for one seed).
    pub mean: BootstrapInterval,
    pub mean_rank: f64,
    pub mean_regret: f64,
}

/// One outcome per dataset in [`DATASETS`] order; `standings[i]` belongs to `seeds[i]`. No
/// seeds, no outcomes.
pub fn outcomes(seeds: &[ResultRow], standings: &[Standing]) -> Result<Vec<Outcome>> {
    if seeds.is_empty() {
        return Ok(Vec::new());
    }
    DATASETS
        .iter()
        .enumerate()
        .map(|(d, dataset)| {
            let accuracy: Vec<f64> = seeds.iter().map(dataset.accuracy).collect();
            let n = standings.len() as f64;
            Ok(Outcome {
                accuracy: Spread::of(&accuracy),
                mean: stats::bootstrap_mean(&accuracy, RESAMPLES, LEVEL, BOOTSTRAP_SEED)?,
                mean_rank: standings.iter().map(|s| s.rank[d] as f64).sum::<f64>() / n,
                mean_regret: standings.iter().map(|s| s.regret[d]).sum::<f64>() / n,
            })
        })
        .collect()
}

/// Below this many seeds a percentile-bootstrap interval is far narrower than its level
/// claims (from two seeds it is their range), so the printed report marks it.
pub const FEW_SEEDS: usize = 5;

/// `[lower, upper]` from `seeds` values, marked `*` when they are fewer than [`FEW_SEEDS`];
/// `n/a` where one seed leaves no interval.
pub fn interval_text(ci: &BootstrapInterval, seeds: usize, signed: bool) -> String {
    if ci.lower.is_nan() {
        return "n/a".into();
    }
    let mark = if is_marked(seeds) { "*" } else { "" };
    if signed {
        format!("[{:+.2}, {:+.2}]{mark}", ci.lower, ci.upper)
    } else {
        format!("[{:.2}, {:.2}]{mark}", ci.lower, ci.upper)
    }
}

/// Whether [`interval_text`] marks an interval from `seeds` values.
pub fn is_marked(seeds: usize) -> bool {
    (2..FEW_SEEDS).contains(&seeds)
}

/// The line that explains [`interval_text`]'s mark.
pub fn few_seeds_note() -> String {
    format!(
        "* from fewer than {FEW_SEEDS} seeds: far narrower than a {:.0}% interval (from two seeds it is their range), so no evidence either way",
        100.0 * LEVEL
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, accuracy: [f64; 3]) -> ResultRow {
        ResultRow {
            experiment: "e".into(),
            seed,
            arch: String::new(),
            nb201_index: 0,
            cifar10: accuracy[0],
            cifar100: accuracy[1],
            imagenet16_120: accuracy[2],
            rank_cifar10: 0,
            search_seconds: 0.0,
            device: "cpu".into(),
        }
    }

    #[test]
    fn outcomes_per_dataset_by_hand() -> Result<()> {
        let seeds = [row(0, [93.0, 70.0, 40.0]), row(1, [94.0, 72.0, 44.0])];
        let standings = [
            Standing {
                rank: [30, 10, 100],
                regret: [1.0, 3.0, 7.0],
            },
            Standing {
                rank: [2, 4, 1],
                regret: [0.0, 1.0, 3.0],
            },
        ];
        let o = outcomes(&seeds, &standings)?;
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].accuracy.mean, o[0].mean_rank, o[0].mean_regret),
            (93.5, 16.0, 0.5)
        );
        assert_eq!((o[2].accuracy.min, o[2].accuracy.max), (40.0, 44.0));
        assert_eq!((o[2].mean_rank, o[2].mean_regret), (50.5, 5.0));
        // Two seeds: resampled means are 40, 42 or 44, an interval printed as a mere range.
        assert_eq!(
            (o[2].mean.lower, o[2].mean.estimate, o[2].mean.upper),
            (40.0, 42.0, 44.0)
        );
        assert_eq!(interval_text(&o[2].mean, 2, false), "[40.00, 44.00]*");
        assert!(outcomes(&[], &[])?.is_empty());
        Ok(())
    }

    #[test]
    fn one_seed_has_an_outcome_without_interval() -> Result<()> {
        let o = outcomes(
            &[row(3, [93.0, 70.0, 40.0])],
            &[Standing {
                rank: [5, 5, 5],
                regret: [1.0, 1.0, 1.0],
            }],
        )?;
        assert_eq!((o[1].accuracy.n, o[1].mean.estimate), (1, 70.0));
        assert_eq!(interval_text(&o[1].mean, 1, false), "n/a");
        Ok(())
    }

    #[test]
    fn intervals_from_five_seeds_are_not_marked() -> Result<()> {
        let seeds: Vec<ResultRow> = (0..5)
            .map(|s| row(s, [93.0 + s as f64 / 10.0, 70.0, 40.0]))
            .collect();
        let standings = vec![
            Standing {
                rank: [1, 1, 1],
                regret: [0.0, 0.0, 0.0],
            };
            5
        ];
        let o = outcomes(&seeds, &standings)?;
        let text = interval_text(&o[0].mean, o[0].accuracy.n, false);
        assert!(text.starts_with('[') && text.ends_with(']'), "{text}");
        assert!(!is_marked(5) && is_marked(4) && !is_marked(1));
        Ok(())
    }
}
