//! Table schemas: one struct per table kind whose fields are the columns, so the writer and
//! every reader of a table use the same definition ([`table_row!`](crate::table_row)).
use std::path::Path;

use polars::prelude::{DataFrame, DataType};

use super::Columns;
use crate::error::{Error, Result};

/// A value one column holds.
pub trait Cell: Sized {
    const TYPE: DataType;
    fn push(&self, columns: &mut Columns, name: &str);
    /// Row `row` of column `name`; `path` names the file in errors.
    fn get(df: &DataFrame, name: &str, row: usize, path: &Path) -> Result<Self>;
}

fn missing(path: &Path, name: &str, row: usize) -> Error {
    Error::data(path, format!("column `{name}` has no value in row {row}"))
}

macro_rules! cell {
    ($ty:ty, $dtype:expr, $push:ident, $series:ident, |$v:ident| $own:expr) => {
        impl Cell for $ty {
            const TYPE: DataType = $dtype;
            fn push(&self, columns: &mut Columns, name: &str) {
                columns.$push(name, *self);
            }
            fn get(df: &DataFrame, name: &str, row: usize, path: &Path) -> Result<Self> {
                let $v = df
                    .column(name)?
                    .$series()?
                    .get(row)
                    .ok_or_else(|| missing(path, name, row))?;
                Ok($own)
            }
        }
    };
}

cell!(u64, DataType::UInt64, u64, u64, |v| v);
cell!(f64, DataType::Float64, f64, f64, |v| v);
cell!(bool, DataType::Boolean, bool, bool, |v| v);

impl Cell for String {
    const TYPE: DataType = DataType::String;
    fn push(&self, columns: &mut Columns, name: &str) {
        columns.str(name, self);
    }
    fn get(df: &DataFrame, name: &str, row: usize, path: &Path) -> Result<Self> {
        let v = df
            .column(name)?
            .str()?
            .get(row)
            .ok_or_else(|| missing(path, name, row))?;
        Ok(v.to_string())
    }
}

/// One row of a table kind. Implemented by [`table_row!`](crate::table_row).
pub trait Row: Sized {
    /// The columns, in order, with their types.
    fn columns() -> Vec<(&'static str, DataType)>;
    fn push(&self, columns: &mut Columns);
    fn get(df: &DataFrame, row: usize, path: &Path) -> Result<Self>;

    /// Whether `df` has exactly this kind's columns (any order).
    fn matches(df: &DataFrame) -> bool {
        let expected = Self::columns();
        df.width() == expected.len()
            && expected
                .iter()
                .all(|(name, dtype)| df.column(name).is_ok_and(|c| c.dtype() == dtype))
    }

    /// Every row of `df`, which must be of this kind; `path` names it in errors.
    fn read_all(df: &DataFrame, path: &Path) -> Result<Vec<Self>> {
        if !Self::matches(df) {
            return Err(Error::data(
                path,
                format!(
                    "the columns {} are not {}",
                    schema_text(df),
                    describe::<Self>()
                ),
            ));
        }
        (0..df.height()).map(|i| Self::get(df, i, path)).collect()
    }
}

/// Writes `rows` as one Parquet file.
pub fn write_rows<R: Row>(rows: &[R], path: &Path) -> Result<()> {
    let mut columns = Columns::default();
    for row in rows {
        row.push(&mut columns);
    }
    columns.write_parquet(path)
}

/// `name: type, ...` of a frame.
pub fn schema_text(df: &DataFrame) -> String {
    df.columns()
        .iter()
        .map(|c| format!("{}: {}", c.name(), c.dtype()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe<R: Row>() -> String {
    let columns: Vec<String> = R::columns()
        .iter()
        .map(|(name, dtype)| format!("{name}: {dtype}"))
        .collect();
    format!("the expected {}", columns.join(", "))
}

/// Declares a table kind: a struct whose fields are its columns (names and types), with the
/// [`Row`] impl that writes and reads them.
#[macro_export]
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $crate::table::Row for $name {
            fn columns() -> Vec<(&'static str, polars::prelude::DataType)> {
                vec![$((stringify!($field), <$ty as $crate::table::Cell>::TYPE)),*]
            }
            fn push(&self, columns: &mut $crate::table::Columns) {
                $($crate::table::Cell::push(&self.$field, columns, stringify!($field));)*
            }
            fn get(
                df: &polars::prelude::DataFrame,
                row: usize,
                path: &std::path::Path,
            ) -> $crate::error::Result<Self> {
                Ok($name {
                    $($field: $crate::table::Cell::get(df, stringify!($field), row, path)?,)*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::read_parquet;

    crate::table_row! {
        #[derive(Debug, Clone, PartialEq)]
        pub struct Sample {
            pub name: String,
            pub count: u64,
            pub score: f64,
            pub kept: bool,
        }
    }

    crate::table_row! {
        #[derive(Debug)]
        pub struct Other {
            pub name: String,
            pub count: f64,
            pub score: f64,
            pub kept: bool,
        }
    }

    #[test]
    fn rows_round_trip_and_other_kinds_are_told_apart() -> Result<()> {
        let rows = vec![
            Sample {
                name: "a".into(),
                count: 3,
                score: 0.5,
                kept: true,
            },
            Sample {
                name: "b".into(),
                count: 4,
                score: f64::NAN,
                kept: false,
            },
        ];
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t/sample.parquet");
        write_rows(&rows, &path)?;
        let df = read_parquet(&path)?;
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["name", "count", "score", "kept"]);
        let back = Sample::read_all(&df, &path)?;
        assert_eq!(back[0], rows[0]);
        assert!(back[1].score.is_nan() && back[1].count == 4);
        // Same width, one column of another type: not this kind, and the error says so.
        assert!(!Other::matches(&df));
        let err = Other::read_all(&df, &path).unwrap_err().to_string();
        assert!(
            err.contains("sample.parquet") && err.contains("count: f64"),
            "{err}"
        );
        Ok(())
    }
}
