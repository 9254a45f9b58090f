//! The `result` table: one row per seed, of one of two kinds, each declared once here and
//! shared by its writer and its readers: a NAS-Bench-201 lookup ([`BenchResult`], written by
//! the bench stage) or a DARTS genotype ([`GenotypeResult`], written by the genotype stage).
//! A reader takes the files whose columns are exactly its kind's.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::table::{read_parquet, schema_text, Row};

crate::table_row! {
    /// A found NAS-Bench-201 cell with its benchmark accuracies (%) and ranks.
    #[derive(Clone, Debug, PartialEq)]
    pub struct BenchResult {
        pub experiment: String,
        pub seed: u64,
        pub arch: String,
        pub nb201_index: u64,
        pub cifar10_test: f64,
        pub cifar100_test: f64,
        pub imagenet16_120_test: f64,
        pub rank_cifar10: u64,
        pub rank_cifar100: u64,
        pub rank_imagenet16_120: u64,
        pub cells_in_table: u64,
        pub search_seconds: f64,
        /// Compute time of each upstream stage (from its manifest, also when it was cached).
        pub dataset_seconds: f64,
        pub supernet_seconds: f64,
        pub prune_seconds: f64,
        pub candidates_scored: u64,
        pub device: String,
    }
}

crate::table_row! {
    /// A DARTS search's genotype: its text and each cell's `[(op, input), ...]` as JSON.
    #[derive(Clone, Debug, PartialEq)]
    pub struct GenotypeResult {
        pub experiment: String,
        pub seed: u64,
        pub dataset: String,
        pub genotype: String,
        pub normal: String,
        pub reduce: String,
        pub search_seconds: f64,
        pub candidates_scored: u64,
        pub device: String,
    }
}

/// Every row of kind `R` under a run's `result/` folder (all seeds). Files of the other kind
/// are skipped; a file of neither kind is an error that names it.
pub fn read<R: Row>(dir: &Path) -> Result<Vec<R>> {
    let mut rows = Vec::new();
    for file in parquet_files(dir) {
        let df = read_parquet(&file)?;
        if R::matches(&df) {
            rows.extend(R::read_all(&df, &file)?);
        } else if !BenchResult::matches(&df) && !GenotypeResult::matches(&df) {
            return Err(Error::data(
                &file,
                format!(
                    "not a result table of a known kind (NAS-Bench-201 lookup or DARTS genotype); its columns are {}",
                    schema_text(&df)
                ),
            ));
        }
    }
    Ok(rows)
}

/// The Parquet files below `dir`, sorted; none when it does not exist.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{names, write_rows, Columns};
    use tenas_pipeline::table_part_path;

    fn bench(seed: u64) -> BenchResult {
        BenchResult {
            experiment: "e".into(),
            seed,
            arch: "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|".into(),
            nb201_index: 7,
            cifar10_test: 91.5,
            cifar100_test: 70.25,
            imagenet16_120_test: 44.0,
            rank_cifar10: 12,
            rank_cifar100: 13,
            rank_imagenet16_120: 14,
            cells_in_table: 15625,
            search_seconds: 1.5,
            dataset_seconds: 0.5,
            supernet_seconds: 0.0,
            prune_seconds: 1.0,
            candidates_scored: 54,
            device: "cpu".into(),
        }
    }

    fn genotype(seed: u64) -> GenotypeResult {
        GenotypeResult {
            experiment: "d".into(),
            seed,
            dataset: "cifar10".into(),
            genotype: "Genotype(normal=[], normal_concat=[2, 3, 4, 5], reduce=[], reduce_concat=[2, 3, 4, 5])".into(),
            normal: "[]".into(),
            reduce: "[]".into(),
            search_seconds: 2.0,
            candidates_scored: 332,
            device: "cpu".into(),
        }
    }

    /// Both kinds in one `result` folder: each reader gets its own rows back as written.
    #[test]
    fn each_reader_takes_its_own_kind() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let part = |seed, stage| {
            table_part_path(dir.path(), names::RESULT, Path::new(""), Some(seed), stage)
        };
        write_rows(&[bench(0)], &part(0, "bench"))?;
        write_rows(&[bench(1)], &part(1, "bench"))?;
        write_rows(&[genotype(0)], &part(0, "genotype"))?;
        let result = dir.path().join(names::RESULT);
        assert_eq!(read::<BenchResult>(&result)?, [bench(0), bench(1)]);
        assert_eq!(read::<GenotypeResult>(&result)?, [genotype(0)]);
        assert!(read::<BenchResult>(&dir.path().join("absent"))?.is_empty());
        Ok(())
    }

    /// A file that is neither kind (here a bench row that lost a column) is an error naming
    /// it, not a silently skipped file.
    #[test]
    fn a_file_of_no_known_kind_is_an_error() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut partial = Columns::default();
        partial.str("experiment", "e");
        partial.u64("seed", 0);
        partial.str("arch", "|none~0|");
        let file = table_part_path(dir.path(), "", Path::new(""), Some(0), "odd");
        partial.write_parquet(&file)?;
        for err in [
            read::<BenchResult>(dir.path()).unwrap_err(),
            read::<GenotypeResult>(dir.path()).unwrap_err(),
        ] {
            let err = err.to_string();
            assert!(
                err.contains("part-odd.parquet") && err.contains("arch: str"),
                "{err}"
            );
        }
        Ok(())
    }
}
