//! NAS-Bench-201 accuracy table: load it with polars (CSV or Parquet) and look up a cell.
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};

pub const COL_INDEX: &str = "arch_index";
pub const COL_ARCH: &str = "arch";
pub const COL_CIFAR10: &str = "cifar10_test";
pub const COL_CIFAR100: &str = "cifar100_test";
pub const COL_IMAGENET16: &str = "imagenet16_120_test";
pub const ACCURACY_COLUMNS: [&str; 3] = [COL_CIFAR10, COL_CIFAR100, COL_IMAGENET16];

/// One cell's benchmark accuracies (%) and ranks among all rows (1 = best; ties share the best).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEntry {
    pub index: i64,
    pub arch: String,
    pub cifar10: f64,
    pub cifar100: f64,
    pub imagenet16_120: f64,
    pub rank_cifar10: usize,
    pub rank_cifar100: usize,
    pub rank_imagenet16_120: usize,
    /// Rows in the table (the rank denominator).
    pub total: usize,
}

impl BenchEntry {
    pub fn accuracy(&self, dataset: Dataset) -> f64 {
        match dataset {
            Dataset::Cifar10 => self.cifar10,
            Dataset::Cifar100 => self.cifar100,
            Dataset::ImageNet16_120 => self.imagenet16_120,
            Dataset::ImageNet1k => unreachable!("NAS-Bench-201 has no ImageNet-1k accuracies"),
        }
    }

    pub fn rank(&self, dataset: Dataset) -> usize {
        match dataset {
            Dataset::Cifar10 => self.rank_cifar10,
            Dataset::Cifar100 => self.rank_cifar100,
            Dataset::ImageNet16_120 => self.rank_imagenet16_120,
            Dataset::ImageNet1k => unreachable!("NAS-Bench-201 has no ImageNet-1k accuracies"),
        }
    }
}

/// The table in memory, indexed by arch string.
#[derive(Debug, Clone)]
pub struct Nb201Table {
    path: PathBuf,
    indices: Vec<i64>,
    archs: Vec<String>,
    /// Accuracies per dataset, in [`ACCURACY_COLUMNS`] order.
    accuracies: [Vec<f64>; 3],
    /// The same, sorted descending, for ranks by binary search.
    sorted_desc: [Vec<f64>; 3],
    row_of_arch: HashMap<String, usize>,
}

impl Nb201Table {
    /// Reads `.csv` or `.parquet` (by extension).
    pub fn load(path: &Path) -> Result<Nb201Table> {
        if !path.is_file() {
            return Err(Error::data(
                path,
                "NAS-Bench-201 table not found (it is named by TENAS_NB201 or the stage's `table` \
                 param; with neither set, tenas uses the table it ships)",
            ));
        }
        let frame = read_frame(path)?;
        Nb201Table::from_frame(&frame, path)
    }

    /// Builds the table from a frame; `path` only labels errors.
    pub fn from_frame(frame: &DataFrame, path: &Path) -> Result<Nb201Table> {
        let indices = int_column(frame, COL_INDEX, path)?;
        let archs = string_column(frame, COL_ARCH, path)?;
        let accuracies = [
            float_column(frame, COL_CIFAR10, path)?,
            float_column(frame, COL_CIFAR100, path)?,
            float_column(frame, COL_IMAGENET16, path)?,
        ];
        let mut row_of_arch = HashMap::with_capacity(archs.len());
        for (row, arch) in archs.iter().enumerate() {
            if row_of_arch.insert(arch.clone(), row).is_some() {
                return Err(Error::data(
                    path,
                    format!("arch {arch} appears more than once"),
                ));
            }
        }
        let sorted_desc = accuracies.clone().map(|mut v| {
            v.sort_by(|a, b| b.total_cmp(a));
            v
        });
        Ok(Nb201Table {
            path: path.to_path_buf(),
            indices,
            archs,
            accuracies,
            sorted_desc,
            row_of_arch,
        })
    }

    pub fn len(&self) -> usize {
        self.archs.len()
    }

    /// The best accuracy any cell reaches on `dataset`.
    pub fn best(&self, dataset: Dataset) -> f64 {
        let d = Dataset::NB201
            .iter()
            .position(|x| *x == dataset)
            .expect("NAS-Bench-201 reports CIFAR-10, CIFAR-100 and ImageNet16-120");
        self.sorted_desc[d].first().copied().unwrap_or(f64::NAN)
    }

    pub fn is_empty(&self) -> bool {
        self.archs.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks up an arch string exactly as the benchmark writes it.
    pub fn lookup(&self, arch: &str) -> Result<BenchEntry> {
        let row = *self.row_of_arch.get(arch).ok_or_else(|| {
            Error::data(
                &self.path,
                format!("arch {arch} is not in the NAS-Bench-201 table"),
            )
        })?;
        let [c10, c100, img] = [0, 1, 2].map(|d| self.accuracies[d][row]);
        Ok(BenchEntry {
            index: self.indices[row],
            arch: self.archs[row].clone(),
            cifar10: c10,
            cifar100: c100,
            imagenet16_120: img,
            rank_cifar10: self.rank_of(0, c10),
            rank_cifar100: self.rank_of(1, c100),
            rank_imagenet16_120: self.rank_of(2, img),
            total: self.len(),
        })
    }

    /// 1 + number of rows strictly better.
    fn rank_of(&self, dataset: usize, accuracy: f64) -> usize {
        self.sorted_desc[dataset].partition_point(|&v| v > accuracy) + 1
    }
}

/// Parses CSV text held in memory; `label` names it in errors.
pub(crate) fn parse_csv(csv: Vec<u8>, label: &Path) -> Result<Nb201Table> {
    let frame = CsvReadOptions::default()
        .with_has_header(true)
        .into_reader_with_file_handle(std::io::Cursor::new(csv))
        .finish()
        .map_err(|e| Error::data(label, format!("reading the NAS-Bench-201 table: {e}")))?;
    Nb201Table::from_frame(&frame, label)
}

fn read_frame(path: &Path) -> Result<DataFrame> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let frame = match extension.as_deref() {
        Some("csv") => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish(),
        Some("parquet") => {
            let file = File::open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            ParquetReader::new(file).finish()
        }
        _ => {
            return Err(Error::data(
                path,
                "expected a .csv or .parquet NAS-Bench-201 table",
            ))
        }
    };
    frame.map_err(|e| Error::data(path, format!("reading the NAS-Bench-201 table: {e}")))
}

fn column<'a>(frame: &'a DataFrame, name: &str, path: &Path) -> Result<&'a Column> {
    let column = frame.column(name).map_err(|_| {
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        Error::data(path, format!("missing column {name:?} (found {names:?})"))
    })?;
    if column.null_count() > 0 {
        return Err(Error::data(
            path,
            format!("column {name:?} has {} empty values", column.null_count()),
        ));
    }
    Ok(column)
}

fn cast_error(path: &Path, name: &str, e: PolarsError) -> Error {
    Error::data(path, format!("column {name:?}: {e}"))
}

fn float_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<f64>> {
    let cast = column(frame, name, path)?
        .cast(&DataType::Float64)
        .map_err(|e| cast_error(path, name, e))?;
    let values: Vec<f64> = cast
        .f64()
        .map_err(|e| cast_error(path, name, e))?
        .into_no_null_iter()
        .collect();
    if let Some(row) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            path,
            format!("column {name:?} row {row} is not a finite number"),
        ));
    }
    Ok(values)
}

fn int_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<i64>> {
    let cast = column(frame, name, path)?
        .cast(&DataType::Int64)
        .map_err(|e| cast_error(path, name, e))?;
    Ok(cast
        .i64()
        .map_err(|e| cast_error(path, name, e))?
        .into_no_null_iter()
        .collect())
}

fn string_column(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>> {
    let column = column(frame, name, path)?;
    let strings = column.str().map_err(|e| cast_error(path, name, e))?;
    Ok(strings
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::test_data_root;

    fn real_table() -> Nb201Table {
        Nb201Table::load(&test_data_root().join("nb201/nb201_accuracy.csv")).unwrap()
    }

    #[test]
    fn real_table_optimum_and_all_conv3x3() {
        let table = real_table();
        assert_eq!(table.len(), 15625);
        let best = table
            .lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
            .unwrap();
        assert_eq!(best.index, 6111);
        assert!((best.cifar10 - 94.3733).abs() < 1e-3, "{best:?}");
        assert_eq!(best.rank_cifar10, 1);
        assert_eq!(best.total, 15625);
        assert_eq!(best.rank(Dataset::Cifar10), 1);

        let conv = table
            .lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
            .unwrap();
        assert_eq!(conv.index, 1462);
        assert!((conv.cifar10 - 93.76).abs() < 0.01, "{conv:?}");
        assert!((conv.cifar100 - 71.11).abs() < 0.01, "{conv:?}");
        assert!((conv.imagenet16_120 - 41.44).abs() < 0.01, "{conv:?}");
        assert!(conv.rank_cifar10 > 1 && conv.rank_cifar10 < 200, "{conv:?}");
        assert_eq!(conv.accuracy(Dataset::Cifar100), conv.cifar100);

        let none = table
            .lookup("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
            .unwrap();
        assert_eq!(none.index, 1651);
        assert!(none.rank_cifar10 > 15000, "{none:?}");
    }

    #[test]
    fn real_table_ranks_match_a_brute_force_count() {
        let table = real_table();
        for arch in table.archs.iter().step_by(997) {
            let entry = table.lookup(arch).unwrap();
            let better = table.accuracies[1]
                .iter()
                .filter(|&&v| v > entry.cifar100)
                .count();
            assert_eq!(entry.rank_cifar100, better + 1);
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn ties_share_the_best_rank_and_parquet_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "t.csv",
            "arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test\n\
             0,a,90,70,40\n1,b,95,70,41\n2,c,90,60,42\n3,d,80,71,40\n",
        );
        let table = Nb201Table::load(&csv).unwrap();
        let a = table.lookup("a").unwrap();
        assert_eq!(
            (a.rank_cifar10, a.rank_cifar100, a.rank_imagenet16_120),
            (2, 2, 3)
        );
        let c = table.lookup("c").unwrap();
        assert_eq!(
            (c.rank_cifar10, c.rank_cifar100, c.rank_imagenet16_120),
            (2, 4, 1)
        );
        assert_eq!(c.cifar10, 90.0); // integer CSV cells are read as floats

        let mut frame = read_frame(&csv).unwrap();
        let parquet = dir.path().join("t.parquet");
        ParquetWriter::new(File::create(&parquet).unwrap())
            .finish(&mut frame)
            .unwrap();
        assert_eq!(Nb201Table::load(&parquet).unwrap().lookup("c").unwrap(), c);
    }

    #[test]
    fn errors_name_the_file_the_column_and_the_arch() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.csv");
        let err = Nb201Table::load(&missing).unwrap_err().to_string();
        assert!(err.contains("absent.csv"), "{err}");

        let no_c100 = write(
            dir.path(),
            "x.csv",
            "arch_index,arch,cifar10_test,imagenet16_120_test\n0,a,1,2\n",
        );
        let err = Nb201Table::load(&no_c100).unwrap_err().to_string();
        assert!(
            err.contains("cifar100_test") && err.contains("x.csv"),
            "{err}"
        );

        let ok = write(
            dir.path(),
            "y.csv",
            "arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test\n0,a,1,2,3\n",
        );
        let err = Nb201Table::load(&ok)
            .unwrap()
            .lookup("|zz~0|")
            .unwrap_err()
            .to_string();
        assert!(err.contains("|zz~0|"), "{err}");

        let txt = write(dir.path(), "z.txt", "");
        assert!(Nb201Table::load(&txt)
            .unwrap_err()
            .to_string()
            .contains(".csv or .parquet"));
    }
}
