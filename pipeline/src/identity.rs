//! What names a plan node and its output: the components that determine it and their key.
//! Shared by the plan, the running stage's context, run records and Slurm job specs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hash::key_of;

/// Everything that determines a stage node's output; its hash is the node's key.
/// Stored readable in manifests and run records so `explain` can diff them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyComponents {
    pub kind: String,
    pub version: u32,
    pub params: Value,
    /// Input reference (as the experiment names it) -> the input's key.
    pub inputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `Settings::device`, only for stages that use the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
}

impl KeyComponents {
    pub fn key(&self) -> String {
        key_of(&serde_json::to_value(self).expect("components serialize"))
    }
}

/// What names a node and its output, shared by the plan, run records and Slurm job specs
/// (flattened into their JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The stage's name in the experiment.
    pub name: String,
    pub kind: String,
    pub seed: Option<u64>,
    /// The hash of `components`: where the node's artifact is stored.
    pub key: String,
    pub components: KeyComponents,
}
