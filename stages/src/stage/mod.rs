//! The pipeline stages, one module each, and their registration.
pub mod bench;
pub mod correlation;
pub mod dataset;
pub mod genotype;
pub mod prune;
pub mod result;
mod scoring;
pub mod supernet;

use std::ops::{Bound, RangeBounds};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tenas_pipeline::{ParamError, Registry, Stage};

use crate::error::{Error, Result};

/// Registers every stage kind of this crate. The stages that compute open the device the
/// run's settings name when they run.
pub fn register_all(registry: &mut Registry) {
    let stages: [Box<dyn Stage>; 6] = [
        Box::new(dataset::DatasetStage),
        Box::new(supernet::SupernetStage),
        Box::new(prune::PruneStage),
        Box::new(bench::BenchStage),
        Box::new(genotype::GenotypeStage),
        Box::new(correlation::CorrelationStage),
    ];
    for stage in stages {
        registry.register(stage);
    }
}

/// Checks that param `key` lies in `allowed`; the error says the range and the value given.
pub(crate) fn check_range(
    key: &str,
    value: usize,
    allowed: impl RangeBounds<usize>,
) -> std::result::Result<(), ParamError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let lowest = match allowed.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n + 1,
        Bound::Unbounded => 0,
    };
    let range = match allowed.end_bound() {
        Bound::Included(&n) => format!("between {lowest} and {n}"),
        Bound::Excluded(&n) => format!("between {lowest} and {}", n - 1),
        Bound::Unbounded => format!("at least {lowest}"),
    };
    Err(ParamError::new(
        key,
        format!("`{key}` must be {range}, got {value}"),
    ))
}

/// The stage's resolved params.
pub(crate) fn params<T: DeserializeOwned>(ctx: &tenas_pipeline::StageContext<'_>) -> Result<T> {
    ctx.params_as().map_err(Error::from)
}

/// The device kind the run's settings name (`cpu` or `cuda`), for result rows.
pub(crate) fn device_kind<'c>(ctx: &'c tenas_pipeline::StageContext<'_>) -> &'c str {
    ctx.settings()
        .device
        .get("device")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("cpu")
}

/// The artifact folder of the stage's input `name`.
pub(crate) fn input<'c>(ctx: &'c tenas_pipeline::StageContext<'_>, name: &str) -> Result<&'c Path> {
    ctx.input(name).map_err(Error::from)
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, format!("malformed JSON: {e}")))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("plain data serializes");
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_say_the_range_and_the_value() {
        assert!(check_range("batch", 2, 2..).is_ok());
        let err = check_range("batch", 0, 2..).unwrap_err();
        assert_eq!(err.key, "batch");
        assert_eq!(err.message, "`batch` must be at least 2, got 0");
        let err = check_range("lr_crop", 40, 1..=32).unwrap_err();
        assert_eq!(err.message, "`lr_crop` must be between 1 and 32, got 40");
        assert!(check_range("lr_crop", 32, 1..=32).is_ok());
    }
}
