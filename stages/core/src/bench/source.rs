//! Where the NAS-Bench-201 table comes from: the one tenas ships, or a file the user names.
use std::fmt;
use std::path::{Path, PathBuf};

use super::nb201::Nb201Table;
use super::shipped;
use crate::error::Result;
use crate::hashing::file_sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// The table embedded in the binary (`stages/assets/nb201/`).
    Shipped,
    /// A CSV or Parquet file.
    File(PathBuf),
}

impl TableSource {
    /// `overriding` (the `TENAS_NB201` variable) when set, else the stage's `table` param, else
    /// the shipped table.
    pub fn choose(overriding: Option<PathBuf>, param: Option<&Path>) -> TableSource {
        overriding
            .or_else(|| param.map(Path::to_path_buf))
            .map_or(TableSource::Shipped, TableSource::File)
    }

    /// sha256 (hex) of the table's bytes (for the shipped one, of its unpacked CSV, so a file
    /// holding that same CSV gets the same hash).
    pub fn content_sha256(&self) -> Result<String> {
        match self {
            TableSource::Shipped => shipped::content_sha256(),
            TableSource::File(path) => file_sha256(path),
        }
    }

    pub fn load(&self) -> Result<Nb201Table> {
        match self {
            TableSource::Shipped => shipped::load(),
            TableSource::File(path) => Nb201Table::load(path),
        }
    }
}

impl fmt::Display for TableSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableSource::Shipped => f.write_str(shipped::LABEL),
            TableSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_over_the_param_which_wins_over_the_shipped_table() {
        let (var, param) = (PathBuf::from("var.csv"), PathBuf::from("param.csv"));
        assert_eq!(
            TableSource::choose(Some(var.clone()), Some(&param)),
            TableSource::File(var)
        );
        assert_eq!(
            TableSource::choose(None, Some(&param)),
            TableSource::File(param)
        );
        assert_eq!(TableSource::choose(None, None), TableSource::Shipped);
    }

    #[test]
    fn a_file_with_the_shipped_csv_hashes_like_the_shipped_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nb201.csv");
        std::fs::write(&path, shipped::csv_bytes().unwrap()).unwrap();
        let file = TableSource::File(path);
        assert_eq!(
            file.content_sha256().unwrap(),
            TableSource::Shipped.content_sha256().unwrap()
        );
        assert_eq!(file.load().unwrap().len(), shipped::CELLS);
    }
}
