//! Choosing the compute device once per process.
//!
//! The kind of device (and the dtype) enters the keys of stages whose numbers depend on it;
//! which card of a kind does not, so the selected candle device lives here rather than in keys.
use std::sync::OnceLock;

use candle_core::Device;
use serde_json::{json, Value};

use crate::error::{Error, Result};

static SELECTED: OnceLock<Device> = OnceLock::new();

/// The device a spec asks for: `auto` (CUDA when built with it and a GPU answers, else CPU),
/// `cpu`, `cuda` or `cuda:N`.
pub fn open(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => Err(Error::Invalid(format!(
                "unknown device `{other}` (expected auto, cpu, cuda or cuda:N)"
            ))),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Invalid("device `cuda` asked for, but this binary was built without the `cuda` feature (build with `just build-cuda`)".into()));
    }
    Device::new_cuda(ordinal)
        .map_err(|e| Error::Invalid(format!("cannot open CUDA device {ordinal}: {e}")))
}

/// What enters the keys of device-dependent stages.
pub fn settings(device: &Device) -> Value {
    let kind = if device.is_cuda() { "cuda" } else { "cpu" };
    json!({ "device": kind, "dtype": "f32" })
}

/// The device a job opens to compute with the keys `settings` made (a Slurm job on a
/// compute node: the driver chose the device kind).
pub fn for_settings(settings: &Value) -> Result<Device> {
    match settings.get("device").and_then(Value::as_str) {
        Some("cpu") => Ok(Device::Cpu),
        Some("cuda") => cuda(0),
        _ => Err(Error::Invalid(format!(
            "unknown device settings {settings} in the job spec"
        ))),
    }
}

/// A human name for messages.
pub fn describe(device: &Device) -> &'static str {
    if device.is_cuda() {
        "cuda"
    } else {
        "cpu"
    }
}

/// Selects the process's device; later calls keep the first choice.
pub fn select(device: Device) {
    let _ = SELECTED.set(device);
}

/// The selected device (CPU when none was selected).
pub fn current() -> Device {
    SELECTED.get().cloned().unwrap_or(Device::Cpu)
}
