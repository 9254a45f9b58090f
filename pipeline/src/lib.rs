//! A content-hashed experiment pipeline: TOML experiments compile to a DAG of stages,
//! each stage's output is an artifact keyed by the hash of everything that determines
//! it, and runs resume from whatever valid artifacts (and sub-units) exist.
//! See README.md for the on-disk layout.

mod budget;
mod context;
mod error;
mod exec;
mod executor;
mod experiment;
mod forget;
mod gc;
mod hash;
mod identity;
mod lifecycle;
mod manifest;
mod matrix;
mod plan;
mod progress;
mod record;
mod report;
mod results;
mod runner;
mod settings;
pub mod slurm;
mod stage;
mod store;
mod util;

pub use context::{Shard, StageContext, Units};
pub use error::{Error, Result};
pub use exec::run;
pub use executor::{ExecutorConfig, ExecutorKind, JobOptions, SlurmConfig};
pub use experiment::{Experiment, StageDecl};
pub use forget::{Forget, ForgetReport};
pub use gc::{GcReport, Listing, RunSummary};
pub use hash::{canonical_json, file_digest, key_of, sha256_hex};
pub use identity::{KeyComponents, NodeIdentity};
pub use manifest::{FileEntry, Manifest, Validity};
pub use matrix::{Axis, Configuration};
pub use plan::{Node, NodeInput, Plan, PlannedConfiguration};
pub use progress::Progress;
pub use record::{ConfigurationRecord, NodeRecord, RunRecord, RunStatus, UnitCounts};
pub use report::{
    diff_components, explain, status, ExplainReport, Explanation, NodeState, NodeStatus,
    StatusReport,
};
pub use results::table_part_path;
pub use settings::{Settings, Verbosity};
pub use stage::{
    deserialize_params, resolve_params_as, resolve_path_param, ParamError, Registry, Stage,
};
pub use store::{Area, Outcome, Store};
pub use util::write_atomic;
