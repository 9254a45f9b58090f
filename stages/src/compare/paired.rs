//! Paired effects: each configuration against a baseline on the seeds both ran, per dataset
//! (the same seed is the same data order and initialisation, so its difference isolates the
//! choice that differs).
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::datasets::DATASETS;
use super::outcome::{few_seeds_note, interval_text, is_marked, BOOTSTRAP_SEED, LEVEL, RESAMPLES};
use super::summary::ConfigRuns;
use crate::error::{Error, Result};
use crate::stage::bench::ResultRow;
use crate::table::Columns;
use tenas_core::stats::{self, PairedDifference};

/// One param whose value differs between the baseline and another configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One configuration against the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedEffect {
    /// Position of the configuration among the compared ones.
    pub other: usize,
    pub choice: Vec<Change>,
    /// Seeds both configurations ran, ascending.
    pub seeds: Vec<u64>,
    /// Per dataset in [`DATASETS`] order; empty when no seed is shared.
    pub differences: Vec<PairedDifference>,
}

/// The baseline's position: `wanted` as a 1-based number, a label or a configuration hash;
/// the first configuration when not given.
pub fn choose_baseline(configs: &[&ConfigRuns], wanted: Option<&str>) -> Result<usize> {
    let Some(wanted) = wanted else {
        return Ok(0);
    };
    let listing = || {
        configs
            .iter()
            .enumerate()
            .map(|(i, c)| format!("#{} {} [{}]", i + 1, c.label, c.config))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Ok(number) = wanted.parse::<usize>() {
        if number == 0 || number > configs.len() {
            return Err(Error::invalid(format!(
                "--baseline {number}: there are {} configurations: {}",
                configs.len(),
                listing()
            )));
        }
        return Ok(number - 1);
    }
    let matching: Vec<usize> = (0..configs.len())
        .filter(|&i| configs[i].label == wanted || configs[i].config == wanted)
        .collect();
    match matching[..] {
        [i] => Ok(i),
        [] => Err(Error::invalid(format!(
            "--baseline `{wanted}` names no configuration; give a number, label or hash of: {}",
            listing()
        ))),
        _ => Err(Error::invalid(format!(
            "--baseline `{wanted}` names {} configurations; give a number or hash of: {}",
            matching.len(),
            listing()
        ))),
    }
}

/// Every configuration but the baseline, against it.
pub fn paired_effects(configs: &[&ConfigRuns], baseline: usize) -> Result<Vec<PairedEffect>> {
    let base = configs[baseline];
    (0..configs.len())
        .filter(|&i| i != baseline)
        .map(|other| {
            let (seeds, pairs) = common_seeds(&base.seeds, &configs[other].seeds);
            let differences = if pairs.is_empty() {
                Vec::new()
            } else {
                DATASETS
                    .iter()
                    .map(|d| {
                        let a: Vec<f64> = pairs.iter().map(|(a, _)| (d.accuracy)(a)).collect();
                        let b: Vec<f64> = pairs.iter().map(|(_, b)| (d.accuracy)(b)).collect();
                        stats::paired_difference(&a, &b, RESAMPLES, LEVEL, BOOTSTRAP_SEED)
                    })
                    .collect::<tenas_core::Result<_>>()?
            };
            Ok(PairedEffect {
                other,
                choice: choice(base, configs[other]),
                seeds,
                differences,
            })
        })
        .collect()
}

type Pair<'a> = (&'a ResultRow, &'a ResultRow);

/// The seeds both ran, ascending, and their rows (baseline first).
fn common_seeds<'a>(base: &'a [ResultRow], other: &'a [ResultRow]) -> (Vec<u64>, Vec<Pair<'a>>) {
    let by_seed: BTreeMap<u64, &ResultRow> = other.iter().map(|r| (r.seed, r)).collect();
    let mut pairs: Vec<Pair<'a>> = base
        .iter()
        .filter_map(|a| by_seed.get(&a.seed).map(|b| (a, *b)))
        .collect();
    pairs.sort_by_key(|(a, _)| a.seed);
    (pairs.iter().map(|(a, _)| a.seed).collect(), pairs)
}

/// The params whose values differ between two configurations.
fn choice(base: &ConfigRuns, other: &ConfigRuns) -> Vec<Change> {
    let keys: BTreeSet<&String> = base.params.keys().chain(other.params.keys()).collect();
    keys.into_iter()
        .filter(|k| base.params.get(*k) != other.params.get(*k))
        .map(|k| Change {
            key: k.clone(),
            from: base.params.get(k).cloned(),
            to: other.params.get(k).cloned(),
        })
        .collect()
}

fn choice_text(choice: &[Change]) -> String {
    if choice.is_empty() {
        return "same params".into();
    }
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
    choice
        .iter()
        .map(|c| format!("{}: {} → {}", c.key, shown(&c.from), shown(&c.to)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The printed section: per configuration its choice and seeds, then a line per dataset.
pub fn format_paired(configs: &[&ConfigRuns], baseline: usize, effects: &[PairedEffect]) -> String {
    let base = configs[baseline];
    let mut t = format!(
        "\nPaired effects vs #{} {} [{}]\n(other − baseline on the seeds both ran, accuracy points: mean [{:.0}% bootstrap interval over seeds]; seeds improved / tied / worsened)\n",
        baseline + 1,
        base.label,
        base.config,
        LEVEL * 100.0
    );
    for e in effects {
        let c = configs[e.other];
        let _ = write!(
            t,
            "#{} {} [{}]: {}; ",
            e.other + 1,
            c.label,
            c.config,
            choice_text(&e.choice)
        );
        if e.seeds.is_empty() {
            let _ = writeln!(t, "no seeds in common");
            continue;
        }
        let _ = writeln!(t, "seeds {}", seed_list(&e.seeds));
        for (d, diff) in DATASETS.iter().zip(&e.differences) {
            let _ = writeln!(
                t,
                "  {:<15} {:+.2} {:<17} {} / {} / {}",
                d.title,
                diff.mean.estimate,
                interval_text(&diff.mean, diff.n(), true),
                diff.improved,
                diff.tied,
                diff.worsened
            );
        }
    }
    if effects
        .iter()
        .any(|e| e.differences.iter().any(|d| is_marked(d.n())))
    {
        let _ = writeln!(t, "{}", few_seeds_note());
    }
    t
}

/// The `paired` table: one row per configuration and dataset (NaN and zero counts where no
/// seed is shared).
pub fn paired_table(configs: &[&ConfigRuns], baseline: usize, effects: &[PairedEffect]) -> Columns {
    let mut cols = Columns::default();
    // Correlation studies alone have no configuration to pair.
    let Some(base) = configs.get(baseline) else {
        return cols;
    };
    for e in effects {
        let c = configs[e.other];
        for (d, dataset) in DATASETS.iter().enumerate() {
            let diff = e.differences.get(d);
            cols.str("baseline_config", &base.config);
            cols.str("baseline_label", &base.label);
            cols.str("config", &c.config);
            cols.str("label", &c.label);
            cols.str("choice", &choice_text(&e.choice));
            cols.str("dataset", dataset.key);
            cols.u64("seeds", e.seeds.len() as u64);
            cols.str("seed_list", &seed_list(&e.seeds));
            cols.f64(
                "mean_difference",
                diff.map_or(f64::NAN, |x| x.mean.estimate),
            );
            cols.f64("ci_lower", diff.map_or(f64::NAN, |x| x.mean.lower));
            cols.f64("ci_upper", diff.map_or(f64::NAN, |x| x.mean.upper));
            cols.u64("improved", diff.map_or(0, |x| x.improved as u64));
            cols.u64("tied", diff.map_or(0, |x| x.tied as u64));
            cols.u64("worsened", diff.map_or(0, |x| x.worsened as u64));
        }
    }
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, cifar10: f64) -> ResultRow {
        ResultRow {
            experiment: "e".into(),
            seed,
            arch: String::new(),
            nb201_index: 0,
            cifar10,
            cifar100: cifar10 - 20.0,
            imagenet16_120: 40.0,
            rank_cifar10: 0,
            search_seconds: 0.0,
            device: "cpu".into(),
        }
    }

    fn config(hash: &str, label: &str, ntk: &str, seeds: &[(u64, f64)]) -> ConfigRuns {
        ConfigRuns {
            config: hash.into(),
            label: label.into(),
            experiment: "e".into(),
            params: [("prune.ntk", ntk), ("prune.batch", "6")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            seeds: seeds.iter().map(|&(s, a)| row(s, a)).collect(),
            genotypes: Vec::new(),
            candidates: Vec::new(),
        }
    }

    #[test]
    fn pairs_only_the_seeds_both_ran() -> Result<()> {
        let base = config(
            "aaa",
            "e (ntk=summed)",
            "summed",
            &[(0, 93.0), (1, 94.0), (2, 92.0)],
        );
        let other = config(
            "bbb",
            "e (ntk=full)",
            "full",
            &[(1, 94.5), (2, 91.0), (3, 90.0)],
        );
        let lone = config("ccc", "e (ntk=x)", "x", &[(7, 90.0)]);
        let configs = [&base, &other, &lone];
        let effects = paired_effects(&configs, 0)?;
        assert_eq!(effects.len(), 2);
        let e = &effects[0];
        assert_eq!((e.other, e.seeds.as_slice()), (1, &[1, 2][..]));
        // CIFAR-10 differences: seed 1 +0.5, seed 2 −1.0; with two pairs the resampled means
        // are −1, −0.25 and +0.5.
        let c10 = e.differences[0];
        assert_eq!((c10.improved, c10.tied, c10.worsened), (1, 0, 1));
        assert_eq!(
            (c10.mean.lower, c10.mean.estimate, c10.mean.upper),
            (-1.0, -0.25, 0.5)
        );
        // ImageNet16-120 is 40 everywhere: both seeds tied.
        assert_eq!(
            (e.differences[2].tied, e.differences[2].mean.estimate),
            (2, 0.0)
        );
        assert_eq!(
            e.choice,
            vec![Change {
                key: "prune.ntk".into(),
                from: Some("summed".into()),
                to: Some("full".into()),
            }]
        );
        assert!(effects[1].seeds.is_empty() && effects[1].differences.is_empty());

        let text = format_paired(&configs, 0, &effects);
        assert!(
            text.contains("Paired effects vs #1 e (ntk=summed)"),
            "{text}"
        );
        assert!(
            text.contains("prune.ntk: summed → full; seeds 1,2"),
            "{text}"
        );
        assert!(
            text.contains("CIFAR-10        -0.25 [-1.00, +0.50]* "),
            "{text}"
        );
        assert!(text.contains(&few_seeds_note()), "{text}");
        assert!(
            text.contains("#3 e (ntk=x) [ccc]: prune.ntk: summed → x; no seeds in common"),
            "{text}"
        );
        let frame = paired_table(&configs, 0, &effects).frame()?;
        assert_eq!(frame.height(), 6);
        assert_eq!(frame.column("seed_list")?.str()?.get(0), Some("1,2"));
        assert_eq!(frame.column("seeds")?.u64()?.get(5), Some(0));
        Ok(())
    }

    #[test]
    fn one_shared_seed_gives_a_difference_without_interval() -> Result<()> {
        let base = config("aaa", "a", "summed", &[(0, 93.0)]);
        let other = config("bbb", "b", "full", &[(0, 93.5), (1, 90.0)]);
        let effects = paired_effects(&[&other, &base], 1)?;
        let d = effects[0].differences[0];
        assert_eq!((d.n(), d.improved, d.mean.estimate), (1, 1, 0.5));
        assert!(d.mean.lower.is_nan());
        Ok(())
    }

    #[test]
    fn baseline_by_number_label_or_hash() {
        let a = config("aaa", "first", "summed", &[(0, 93.0)]);
        let b = config("bbb", "second", "full", &[(0, 93.0)]);
        let c = config("ccc", "second", "x", &[(0, 93.0)]);
        let configs = [&a, &b, &c];
        let choose = |w| choose_baseline(&configs, w);
        assert_eq!(choose(None).unwrap(), 0);
        assert_eq!(choose(Some("3")).unwrap(), 2);
        assert_eq!(choose(Some("first")).unwrap(), 0);
        assert_eq!(choose(Some("ccc")).unwrap(), 2);
        for (wanted, says) in [
            ("0", "there are 3 configurations"),
            ("4", "there are 3 configurations"),
            ("second", "names 2 configurations"),
            ("nothing", "names no configuration"),
        ] {
            let err = choose(Some(wanted)).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("#2 second [bbb]"),
                "{err}"
            );
        }
    }
}
