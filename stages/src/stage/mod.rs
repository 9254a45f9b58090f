//! The pipeline stages, one module each, and their registration.
pub mod bench;
pub mod correlation;
pub mod dataset;
pub mod genotype;
pub mod prune;
pub mod supernet;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tenas_pipeline::Registry;

use crate::error::{Error, Result};

/// Registers every stage kind of this crate.
pub fn register_all(registry: &mut Registry) {
    registry
        .register(Box::new(dataset::DatasetStage) as Box<dyn tenas_pipeline::Stage>)
        .register(Box::new(supernet::SupernetStage) as Box<dyn tenas_pipeline::Stage>)
        .register(Box::new(prune::PruneStage) as Box<dyn tenas_pipeline::Stage>)
        .register(Box::new(bench::BenchStage) as Box<dyn tenas_pipeline::Stage>)
        .register(Box::new(genotype::GenotypeStage) as Box<dyn tenas_pipeline::Stage>)
        .register(Box::new(correlation::CorrelationStage) as Box<dyn tenas_pipeline::Stage>);
}

/// The artifact folder of the stage's input `name`.
pub(crate) fn input<'c>(ctx: &'c tenas_pipeline::StageContext<'_>, name: &str) -> Result<&'c Path> {
    ctx.input(name).map_err(|e| Error::Invalid(e.to_string()))
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
