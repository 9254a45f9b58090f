//! Where each found cell stands in NAS-Bench-201: its rank among all cells and its regret
//! against the benchmark's best cell, on each dataset.
use std::path::PathBuf;

use super::datasets::DATASETS;
use super::sources::RunData;
use crate::error::{Error, Result};
use crate::stage::bench::{ResultRow, TABLE_ENV};
use tenas_core::bench::nb201::Nb201Table;
use tenas_core::bench::source::TableSource;

/// One seed's found cell against the whole benchmark, per dataset in [`DATASETS`] order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// 1 = best; cells with equal accuracy share the better rank (1 + cells strictly better).
    pub rank: [u64; 3],
    /// The benchmark's best accuracy minus the found cell's, in percentage points.
    pub regret: [f64; 3],
}

/// Largest difference between the run's recorded accuracy and the table's for the same cell.
const SAME_ACCURACY: f64 = 1e-6;

/// Ranks and regret of a found cell. The run recorded the cell's index and accuracies from the
/// table it used; a table that disagrees would rank the cell against other numbers, so that is
/// an error.
pub fn standing(table: &Nb201Table, row: &ResultRow) -> Result<Standing> {
    let entry = table.lookup(&row.arch)?;
    let disagree = |what: String| {
        Error::data(
            table.path(),
            format!(
                "the run of {} (seed {}) recorded cell {} with {what}; set {TABLE_ENV} to the table the run used",
                row.experiment, row.seed, row.arch
            ),
        )
    };
    if entry.index as u64 != row.nb201_index {
        return Err(disagree(format!(
            "index {}, this table has {}",
            row.nb201_index, entry.index
        )));
    }
    for d in DATASETS {
        let (recorded, here) = ((d.accuracy)(row), entry.accuracy(d.dataset));
        if (recorded - here).abs() > SAME_ACCURACY {
            return Err(disagree(format!(
                "{} accuracy {recorded}, this table has {here}",
                d.title
            )));
        }
    }
    Ok(Standing {
        rank: DATASETS.map(|d| entry.rank(d.dataset) as u64),
        regret: DATASETS.map(|d| table.best(d.dataset) - entry.accuracy(d.dataset)),
    })
}

/// The table to rank found cells in: `set` (the `TENAS_NB201` override) when given, else the
/// first `bench.table` of the runs that exists (the runs record it resolved), else the table
/// tenas ships.
pub fn find_table(set: Option<PathBuf>, runs: &[RunData]) -> Result<Nb201Table> {
    if let Some(path) = set {
        return Ok(Nb201Table::load(&path)?);
    }
    let mut named: Vec<PathBuf> = runs
        .iter()
        .filter_map(|r| r.params.get("bench.table").map(PathBuf::from))
        .collect();
    named.sort();
    named.dedup();
    match named.iter().find(|p| p.is_file()) {
        Some(path) => Ok(Nb201Table::load(path)?),
        None => Ok(TableSource::Shipped.load()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenas_core::test_support::test_data_root;

    fn table_path() -> PathBuf {
        test_data_root().join("nb201/nb201_accuracy.csv")
    }

    /// The result row a run records for `arch`, as the bench stage writes it.
    fn found(table: &Nb201Table, arch: &str) -> ResultRow {
        let e = table.lookup(arch).unwrap();
        ResultRow {
            experiment: "e".into(),
            seed: 4,
            arch: arch.into(),
            nb201_index: e.index as u64,
            cifar10: e.cifar10,
            cifar100: e.cifar100,
            imagenet16_120: e.imagenet16_120,
            rank_cifar10: e.rank_cifar10 as u64,
            search_seconds: 0.0,
            device: "cpu".into(),
        }
    }

    const BEST_C10: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
    const ALL_CONV3: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";

    #[test]
    fn best_cell_has_rank_one_and_no_regret() {
        let table = find_table(Some(table_path()), &[]).unwrap();
        let row = found(&table, BEST_C10);
        assert_eq!(row.nb201_index, 6111);
        let s = standing(&table, &row).unwrap();
        assert_eq!((s.rank[0], s.regret[0]), (1, 0.0));
        // The best CIFAR-10 cell is not the best on the other two datasets.
        assert!(s.rank[1] > 1 && s.regret[1] > 0.0, "{s:?}");
        assert!(s.rank[2] > 1 && s.regret[2] > 0.0, "{s:?}");
    }

    #[test]
    fn all_conv3x3_regret_is_the_gap_to_the_best() {
        let table = find_table(Some(table_path()), &[]).unwrap();
        let row = found(&table, ALL_CONV3);
        assert_eq!(row.nb201_index, 1462);
        let s = standing(&table, &row).unwrap();
        assert!((s.regret[0] - (94.3733 - 93.76)).abs() < 0.01, "{s:?}");
        let entry = table.lookup(ALL_CONV3).unwrap();
        assert_eq!(
            s.rank,
            [
                entry.rank_cifar10,
                entry.rank_cifar100,
                entry.rank_imagenet16_120
            ]
            .map(|r| r as u64)
        );
        assert_eq!(s.rank[0], row.rank_cifar10);
    }

    #[test]
    fn a_table_that_disagrees_with_the_run_is_an_error() {
        let table = find_table(Some(table_path()), &[]).unwrap();
        let mut row = found(&table, ALL_CONV3);
        row.cifar100 += 0.5;
        let err = standing(&table, &row).unwrap_err().to_string();
        assert!(
            err.contains("nb201_accuracy.csv")
                && err.contains("CIFAR-100")
                && err.contains(TABLE_ENV),
            "{err}"
        );
        row = found(&table, ALL_CONV3);
        row.nb201_index = 7;
        let err = standing(&table, &row).unwrap_err().to_string();
        assert!(err.contains("index 7"), "{err}");
    }

    #[test]
    fn without_a_named_table_the_shipped_one_ranks_and_a_missing_override_is_an_error() {
        let shipped = find_table(None, &[]).unwrap();
        assert_eq!(shipped.lookup(BEST_C10).unwrap().index, 6111);
        let missing = std::env::temp_dir().join("tenas-no-such-table.csv");
        let err = find_table(Some(missing), &[]).unwrap_err().to_string();
        assert!(err.contains("tenas-no-such-table.csv"), "{err}");
    }
}
