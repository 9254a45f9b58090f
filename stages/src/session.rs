//! One experiment opened for a command: the stage registry, the device settings, the compiled
//! plan and the store, assembled once, in one place, for `run`, `status`, `explain` and the
//! Slurm driver.
use std::path::PathBuf;

use tenas_core::device;
use tenas_pipeline::{
    ExecutorConfig, ExecutorKind, Experiment, Plan, Registry, Settings, Store, Verbosity,
};

use crate::error::Result;
use crate::register_all;

/// What a command asks of an experiment.
#[derive(Clone, Debug, Default)]
pub struct SessionRequest {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// `stage.key=value` overrides.
    pub set: Vec<String>,
    /// Seeds instead of the experiment's.
    pub seeds: Option<Vec<u64>>,
    /// `auto`, `cpu`, `cuda` or `cuda:N` instead of the experiment's `device`.
    pub device: Option<String>,
    /// The store instead of the experiment's.
    pub store: Option<PathBuf>,
    /// The process's CPU budget (0: the experiment's `jobs`, else one per core).
    pub jobs: usize,
    /// `local` or `slurm` instead of the experiment's `[executor] kind`.
    pub executor: Option<String>,
    pub verbosity: Verbosity,
}

/// Whether this process computes the stages (and opens the device) or only plans them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `tenas run`: computes here with the local executor; a Slurm driver only plans.
    Run,
    /// `status` and `explain`: plan, compute nothing, open no device and fetch no data.
    Plan,
}

/// An experiment compiled for this process.
pub struct Session {
    pub registry: Registry,
    pub executor: ExecutorConfig,
    pub settings: Settings,
    pub plan: Plan,
    pub store: Store,
}

impl Session {
    pub fn open(request: &SessionRequest, purpose: Purpose) -> Result<Session> {
        let experiment = Experiment::load(&request.file, &request.set)?;
        let registry = registry();
        let executor =
            ExecutorConfig::from_experiment(&experiment, request.executor.as_deref(), &registry)?;
        let computes_here = purpose == Purpose::Run && executor.kind == ExecutorKind::Local;
        let spec = request.device.as_deref().unwrap_or(&experiment.device);
        let device = if computes_here {
            device::settings(&device::open(spec)?)
        } else {
            device::planned_settings(spec)?
        };
        if request.verbosity != Verbosity::Quiet {
            let kind = device["device"].as_str().unwrap_or("?");
            let how = if computes_here {
                ""
            } else {
                "; planned, not opened"
            };
            eprintln!("device: {kind} (asked for `{spec}`{how})");
        }
        let settings = Settings {
            device,
            jobs: request.jobs,
            verbosity: request.verbosity,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let plan = Plan::compile(&experiment, &registry, request.seeds.clone(), &settings)?;
        let store = Store::open(request.store.clone().unwrap_or_else(|| plan.store.clone()))?;
        Ok(Session {
            registry,
            executor,
            settings,
            plan,
            store,
        })
    }
}

/// Every stage kind of this crate.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    register_all(&mut registry);
    registry
}
