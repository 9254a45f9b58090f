//! Building result tables row by row and writing them as Parquet with polars.
use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

pub mod names;
mod row;
pub use row::{schema_text, write_rows, Cell, Row};

enum Values {
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    OptF64(Vec<Option<f64>>),
    Str(Vec<String>),
    Bool(Vec<bool>),
}

/// Named columns filled in row order; every row sets every column in the same order.
#[derive(Default)]
pub struct Columns {
    columns: Vec<(String, Values)>,
}

impl Columns {
    fn column(&mut self, name: &str, empty: fn() -> Values) -> &mut Values {
        let i = match self.columns.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.columns.push((name.to_string(), empty()));
                self.columns.len() - 1
            }
        };
        &mut self.columns[i].1
    }

    pub fn u64(&mut self, name: &str, v: u64) {
        if let Values::U64(c) = self.column(name, || Values::U64(Vec::new())) {
            c.push(v);
        }
    }

    pub fn i64(&mut self, name: &str, v: i64) {
        if let Values::I64(c) = self.column(name, || Values::I64(Vec::new())) {
            c.push(v);
        }
    }

    pub fn f64(&mut self, name: &str, v: f64) {
        if let Values::F64(c) = self.column(name, || Values::F64(Vec::new())) {
            c.push(v);
        }
    }

    /// A nullable f64 column: `None` leaves the row's value null.
    pub fn opt_f64(&mut self, name: &str, v: Option<f64>) {
        if let Values::OptF64(c) = self.column(name, || Values::OptF64(Vec::new())) {
            c.push(v);
        }
    }

    pub fn str(&mut self, name: &str, v: &str) {
        if let Values::Str(c) = self.column(name, || Values::Str(Vec::new())) {
            c.push(v.to_string());
        }
    }

    pub fn bool(&mut self, name: &str, v: bool) {
        if let Values::Bool(c) = self.column(name, || Values::Bool(Vec::new())) {
            c.push(v);
        }
    }

    /// No column has been started.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn frame(&self) -> Result<DataFrame> {
        let cols: Vec<Column> = self
            .columns
            .iter()
            .map(|(name, values)| {
                let name = PlSmallStr::from(name.as_str());
                match values {
                    Values::U64(v) => Column::new(name, v),
                    Values::I64(v) => Column::new(name, v),
                    Values::F64(v) => Column::new(name, v),
                    Values::OptF64(v) => Column::new(name, v),
                    Values::Str(v) => Column::new(name, v),
                    Values::Bool(v) => Column::new(name, v),
                }
            })
            .collect();
        Ok(DataFrame::new_infer_height(cols)?)
    }

    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        write_parquet(&mut self.frame()?, path)
    }
}

pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let file =
        File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    ParquetWriter::new(file).finish(frame)?;
    Ok(())
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok(ParquetReader::new(file).finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_parquet() -> Result<()> {
        let mut c = Columns::default();
        for i in 0..3u64 {
            c.u64("round", i);
            c.str("op", "skip_connect");
            c.f64("kappa", i as f64 * 1.5);
            c.bool("pruned", i == 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/x.parquet");
        c.write_parquet(&path)?;
        let back = read_parquet(&path)?;
        assert_eq!(back.shape(), (3, 4));
        assert_eq!(back.column("kappa")?.f64()?.get(2), Some(3.0));
        assert_eq!(back.column("pruned")?.bool()?.get(1), Some(true));
        Ok(())
    }
}
