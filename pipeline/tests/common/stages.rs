//! Small test stages shared by the integration tests (`resume.rs` runs them in a process it kills):
//! `source` (seedless numbers) -> `square` (per seed, one unit per number) -> `sum`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tenas_pipeline::{resolve_params_as, Error, ParamError, Registry, Result, Stage, StageContext};

/// When set, every computed unit appends `seed index` to this file (to count work).
pub const UNIT_LOG_ENV: &str = "TESTBED_UNIT_LOG";

/// Square units computing right now in this process, and the most there ever were.
static UNITS_NOW: AtomicUsize = AtomicUsize::new(0);
pub static MOST_UNITS_AT_ONCE: AtomicUsize = AtomicUsize::new(0);

pub fn registry(square_version: u32) -> Registry {
    let mut registry = Registry::new();
    registry
        .register(Box::new(Source) as Box<dyn Stage>)
        .register(Box::new(Square {
            version: square_version,
        }) as Box<dyn Stage>)
        .register(Box::new(Sum) as Box<dyn Stage>);
    registry
}

fn read_numbers(path: &Path) -> Result<Vec<i64>> {
    let text = fs::read_to_string(path).map_err(Error::stage)?;
    text.lines()
        .map(|l| l.trim().parse::<i64>().map_err(Error::stage))
        .collect()
}

fn write_numbers(path: &Path, numbers: &[i64]) -> Result<()> {
    let text: String = numbers.iter().map(|n| format!("{n}\n")).collect();
    fs::write(path, text).map_err(Error::stage)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceParams {
    pub n: u64,
    pub offset: i64,
}

impl Default for SourceParams {
    fn default() -> Self {
        SourceParams { n: 5, offset: 0 }
    }
}

pub struct Source;

impl Stage for Source {
    fn kind(&self) -> &'static str {
        "source"
    }
    fn version(&self) -> u32 {
        1
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
    }
    fn resolve_params(
        &self,
        params: &toml::Table,
    ) -> std::result::Result<serde_json::Value, ParamError> {
        resolve_params_as::<SourceParams>(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let p: SourceParams = ctx.params_as()?;
        let numbers: Vec<i64> = (0..p.n as i64).map(|i| i + p.offset).collect();
        write_numbers(&ctx.out_dir().join("numbers.txt"), &numbers)?;
        write_numbers(&ctx.table_path("numbers"), &numbers)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SquareParams {
    pub units: usize,
    /// Units are scheduled in rounds of this size (exercises a growing DAG).
    pub round: usize,
    pub sleep_ms: u64,
}

impl Default for SquareParams {
    fn default() -> Self {
        SquareParams {
            units: 6,
            round: 4,
            sleep_ms: 0,
        }
    }
}

pub struct Square {
    pub version: u32,
}

impl Stage for Square {
    fn kind(&self) -> &'static str {
        "square"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["source"]
    }
    fn uses_seed(&self) -> bool {
        true
    }
    fn uses_device(&self) -> bool {
        true
    }
    fn resolve_params(
        &self,
        params: &toml::Table,
    ) -> std::result::Result<serde_json::Value, ParamError> {
        resolve_params_as::<SquareParams>(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let p: SquareParams = ctx.params_as()?;
        let numbers = read_numbers(&ctx.input("source")?.join("numbers.txt"))?;
        let seed = ctx.seed().expect("square uses the seed") as i64;
        let mut squares = Vec::new();
        let mut next = 0;
        while next < p.units {
            // Each round is decided after the previous one finished.
            let end = (next + p.round.max(1)).min(p.units);
            let descriptors: Vec<_> = (next..end).map(|i| json!({ "index": i })).collect();
            let dirs = ctx
                .units("square", &descriptors, |i, out| {
                    let index = next + i;
                    let now = UNITS_NOW.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST_UNITS_AT_ONCE.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(p.sleep_ms));
                    UNITS_NOW.fetch_sub(1, Ordering::SeqCst);
                    let x = numbers[index % numbers.len()] + seed;
                    fs::write(out.join("value.txt"), format!("{}\n", x * x))
                        .map_err(Error::stage)?;
                    if let Ok(log) = std::env::var(UNIT_LOG_ENV) {
                        let mut file = fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(log)
                            .map_err(Error::stage)?;
                        file.write_all(format!("{seed} {index}\n").as_bytes())
                            .map_err(Error::stage)?;
                    }
                    Ok(())
                })?
                .expect_done()?;
            for dir in dirs {
                squares.extend(read_numbers(&dir.join("value.txt"))?);
            }
            next = end;
        }
        ctx.progress().log(format!("{} squares", squares.len()));
        write_numbers(&ctx.out_dir().join("squares.txt"), &squares)?;
        write_numbers(&ctx.table_path("squares"), &squares)?;
        fs::write(
            ctx.report_path("summary.txt"),
            format!("{} squares\n", squares.len()),
        )
        .map_err(Error::stage)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SumParams {
    pub scale: i64,
}

impl Default for SumParams {
    fn default() -> Self {
        SumParams { scale: 1 }
    }
}

pub struct Sum;

impl Stage for Sum {
    fn kind(&self) -> &'static str {
        "sum"
    }
    fn version(&self) -> u32 {
        1
    }
    fn default_inputs(&self) -> Vec<&'static str> {
        vec!["square"]
    }
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
    }
    fn resolve_params(
        &self,
        params: &toml::Table,
    ) -> std::result::Result<serde_json::Value, ParamError> {
        resolve_params_as::<SumParams>(params)
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let p: SumParams = ctx.params_as()?;
        let squares = read_numbers(&ctx.input("square")?.join("squares.txt"))?;
        let total: i64 = squares.iter().sum::<i64>() * p.scale;
        write_numbers(&ctx.out_dir().join("sum.txt"), &[total])?;
        write_numbers(&ctx.table_path("sum"), &[total])
    }
}
