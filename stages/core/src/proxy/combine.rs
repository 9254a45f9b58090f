//! Combinations of proxy components over a population of cells, computed from the components
//! alone (no new scoring): TE-NAS's rank sum, AZ-NAS's Σ ln(rank / N), and a weighted sum of
//! normalised ranks. Every component is "higher is better"; ranks are 1..N ascending with
//! ties averaged, so −∞ (a degenerate cell) ranks last.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::average_ranks;

/// How the components' ranks are aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Σ rank (TE-NAS).
    RankSum,
    /// Σ ln(rank / N) (AZ-NAS): a cell must rank well on every component.
    LogRank,
    /// Σ wᵢ · rankᵢ / N.
    Weighted,
}

/// A declared combination: its name, the components it reads and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combination {
    pub name: String,
    pub components: Vec<String>,
    pub aggregation: Aggregation,
    /// One weight per component, for `weighted` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
}

impl Combination {
    /// AZ-NAS's own: Σ ln(rank / N) over its four components.
    pub fn az_nas() -> Combination {
        Combination {
            name: "az_nas".into(),
            components: [
                "expressivity",
                "progressivity",
                "trainability",
                "complexity",
            ]
            .map(String::from)
            .to_vec(),
            aggregation: Aggregation::LogRank,
            weights: Vec::new(),
        }
    }

    /// Checks the declaration against the components a study has.
    pub fn check(&self, available: &[&str]) -> Result<()> {
        let fail = |reason: String| {
            Err(Error::Invalid(format!(
                "combination {:?}: {reason}",
                self.name
            )))
        };
        if self.components.is_empty() {
            return fail("lists no components".into());
        }
        if let Some(c) = self
            .components
            .iter()
            .find(|c| !available.contains(&c.as_str()))
        {
            return fail(format!(
                "unknown component {c:?} (known: {})",
                available.join(", ")
            ));
        }
        match (self.aggregation, self.weights.len()) {
            (Aggregation::Weighted, n) if n != self.components.len() => fail(format!(
                "weighted needs one weight per component: {n} weights for {} components",
                self.components.len()
            )),
            (Aggregation::Weighted, _) if self.weights.iter().any(|w| !w.is_finite()) => {
                fail("a weight is not finite".into())
            }
            (Aggregation::RankSum | Aggregation::LogRank, n) if n > 0 => {
                fail("weights are only read by the weighted aggregation".into())
            }
            _ => Ok(()),
        }
    }

    /// The combined score of every cell; `column(name)` gives a component's values over the
    /// population (one per cell, all the same length). Higher is better.
    pub fn combine<'a>(&self, column: impl Fn(&str) -> Option<&'a [f64]>) -> Result<Vec<f64>> {
        let mut total: Option<Vec<f64>> = None;
        for (i, name) in self.components.iter().enumerate() {
            let values = column(name).ok_or_else(|| {
                Error::Invalid(format!("combination {:?}: no column {name:?}", self.name))
            })?;
            if values.iter().any(|v| v.is_nan()) {
                return Err(Error::Invalid(format!(
                    "combination {:?}: component {name:?} holds NaN",
                    self.name
                )));
            }
            let n = values.len() as f64;
            let term: Vec<f64> = average_ranks(values)
                .into_iter()
                .map(|r| match self.aggregation {
                    Aggregation::RankSum => r,
                    Aggregation::LogRank => (r / n).ln(),
                    Aggregation::Weighted => self.weights[i] * r / n,
                })
                .collect();
            total = Some(match total {
                None => term,
                Some(t) if t.len() != term.len() => {
                    return Err(Error::Invalid(format!(
                        "combination {:?}: components cover {} and {} cells",
                        self.name,
                        t.len(),
                        term.len()
                    )))
                }
                Some(t) => t.iter().zip(&term).map(|(a, b)| a + b).collect(),
            });
        }
        total.ok_or_else(|| {
            Error::Invalid(format!("combination {:?} lists no components", self.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns<'a>(table: &'a [(&'a str, Vec<f64>)]) -> impl Fn(&str) -> Option<&'a [f64]> {
        move |name| {
            table
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        }
    }

    #[test]
    fn rank_sum_and_log_rank_follow_their_definitions() {
        let table = [
            ("a", vec![1.0, 3.0, 2.0, f64::NEG_INFINITY]),
            ("b", vec![10.0, 20.0, 20.0, 5.0]),
        ];
        let mut c = Combination {
            name: "c".into(),
            components: vec!["a".into(), "b".into()],
            aggregation: Aggregation::RankSum,
            weights: vec![],
        };
        // Ranks: a = 2, 4, 3, 1 (−∞ last); b = 2, 3.5, 3.5, 1.
        assert_eq!(
            c.combine(columns(&table)).unwrap(),
            vec![4.0, 7.5, 6.5, 2.0]
        );
        c.aggregation = Aggregation::LogRank;
        let got = c.combine(columns(&table)).unwrap();
        let want = [(0.5f64).ln() + (0.5f64).ln(), 0.0 + (3.5f64 / 4.0).ln()];
        assert!((got[0] - want[0]).abs() < 1e-12 && (got[1] - want[1]).abs() < 1e-12);
        c.aggregation = Aggregation::Weighted;
        c.weights = vec![1.0, -2.0];
        let got = c.combine(columns(&table)).unwrap();
        assert!((got[1] - (1.0 - 2.0 * 3.5 / 4.0)).abs() < 1e-12, "{got:?}");
    }

    #[test]
    fn bad_declarations_and_columns_are_errors() {
        let mut c = Combination::az_nas();
        let all = [
            "expressivity",
            "progressivity",
            "trainability",
            "complexity",
        ];
        assert!(c.check(&all).is_ok());
        let err = c.check(&all[..3]).unwrap_err().to_string();
        assert!(err.contains("unknown component \"complexity\""), "{err}");
        c.aggregation = Aggregation::Weighted;
        assert!(c
            .check(&all)
            .unwrap_err()
            .to_string()
            .contains("one weight per component"));
        let nan = [("x", vec![1.0, f64::NAN])];
        let x = Combination {
            name: "x".into(),
            components: vec!["x".into()],
            aggregation: Aggregation::RankSum,
            weights: vec![],
        };
        assert!(x
            .combine(columns(&nan))
            .unwrap_err()
            .to_string()
            .contains("NaN"));
        assert!(x.combine(|_| None).is_err());
    }

    #[test]
    fn a_combination_reads_from_toml() {
        let c: Combination = toml::from_str(
            "name = \"mine\"\ncomponents = [\"zico\", \"flops\"]\naggregation = \"weighted\"\nweights = [1.0, 0.5]",
        )
        .unwrap();
        assert_eq!(c.weights, vec![1.0, 0.5]);
        assert!(toml::from_str::<Combination>(
            "name = \"m\"\ncomponents = []\naggregation = \"mean\""
        )
        .is_err());
    }
}

#[cfg(test)]
mod published {
    use std::collections::BTreeMap;

    use super::*;

    /// Our AZ-NAS aggregation of the published code's components reproduces the published
    /// aggregate (`rank_agg`, the notebook's Σ ln(rank / N) over the run's 30 cells) exactly.
    #[test]
    fn az_nas_log_rank_matches_the_published_aggregate() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/proxies/reference-cifar10-seed0.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut cells: Vec<String> = Vec::new();
        let mut values: BTreeMap<(String, String), f64> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 4 || f[1] != "az_nas" || f[3].is_empty() {
                continue;
            }
            if !cells.contains(&f[0].to_string()) {
                cells.push(f[0].to_string());
            }
            let v = if f[3] == "-inf" {
                f64::NEG_INFINITY
            } else {
                f[3].parse().unwrap()
            };
            values.insert((f[0].to_string(), f[2].to_string()), v);
        }
        let column = |name: &str| -> Vec<f64> {
            cells
                .iter()
                .map(|c| values[&(c.clone(), name.to_string())])
                .collect()
        };
        let combination = Combination::az_nas();
        let table: Vec<(String, Vec<f64>)> = combination
            .components
            .iter()
            .map(|c| (c.clone(), column(c)))
            .collect();
        let ours = combination
            .combine(|name| {
                table
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_slice())
            })
            .unwrap();
        let published = column("rank_agg");
        assert_eq!(cells.len(), 30);
        for ((cell, a), b) in cells.iter().zip(&ours).zip(&published) {
            assert!((a - b).abs() < 1e-12, "{cell}: ours {a}, published {b}");
        }
    }
}
