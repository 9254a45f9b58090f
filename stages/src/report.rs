//! What `tenas run` prints when a run completes: the found cells and their benchmark
//! accuracies, one line per seed; DARTS genotypes; a correlation study's τ and ρ. A sweep's
//! configurations one after another, each under its label (a study shared by several
//! configurations is printed once).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tenas_pipeline::RunRecord;

use crate::error::Result;
use crate::stage::{bench, correlation, genotype};
use crate::table::names::{CORRELATION, RESULT};

/// The report of the complete run `record`, read from its results folder `results`.
pub fn run_report(record: &RunRecord, results: &Path) -> Result<String> {
    let mut text = String::new();
    let mut studies = Vec::new();
    if record.configurations.is_empty() {
        configuration_report(&mut text, results, Path::new(""), &mut studies)?;
    }
    for configuration in &record.configurations {
        let _ = writeln!(text, "configuration {}:", configuration.config.label);
        let partition = configuration.config.partition();
        configuration_report(&mut text, results, &partition, &mut studies)?;
    }
    Ok(text)
}

/// One configuration's results from its partition of the `result` and `correlation` tables;
/// `studies` holds the study summaries already printed.
fn configuration_report(
    text: &mut String,
    results: &Path,
    partition: &Path,
    studies: &mut Vec<String>,
) -> Result<()> {
    let folder = |table: &str| -> PathBuf { results.join(table).join(partition) };
    let rows = bench::read_results(&folder(RESULT))?;
    if !rows.is_empty() {
        let _ = writeln!(text, "{}", bench::format_results(&rows));
    }
    let genotypes = genotype::read_genotypes(&folder(RESULT))?;
    if !genotypes.is_empty() {
        let _ = writeln!(text, "{}", genotype::format_genotypes(&genotypes));
    }
    let study = folder(CORRELATION);
    if study.is_dir() {
        let summary = correlation::summarize(&study)?;
        if !studies.contains(&summary) {
            let _ = writeln!(text, "{summary}");
            studies.push(summary);
        }
    }
    Ok(())
}
