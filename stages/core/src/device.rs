//! Opening the compute device and describing it for keys.
//!
//! The kind of device (and the dtype) enters the keys of stages whose numbers depend on it;
//! which card of a kind does not. The stages that compute open the device the run's settings
//! name when they run.
pub use candle_core::Device;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The device a spec asks for: `auto` (CUDA when built with it and a GPU answers, else CPU),
/// `cpu`, `cuda` or `cuda:N`.
pub fn open(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => Err(Error::invalid_param(
                "device",
                format!("unknown device `{other}` (expected auto, cpu, cuda or cuda:N)"),
            )),
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

/// The key settings of the device a spec asks for, without opening it: for a process that
/// plans work other processes compute (a Slurm driver on a login node, `status`). `auto`
/// still asks this machine.
pub fn planned_settings(spec: &str) -> Result<Value> {
    let kind = match spec {
        "cpu" => "cpu",
        "auto" => describe(&open("auto")?),
        "cuda" => "cuda",
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(_)) => "cuda",
            _ => {
                return Err(Error::invalid_param(
                    "device",
                    format!("unknown device `{other}` (expected auto, cpu, cuda or cuda:N)"),
                ))
            }
        },
    };
    Ok(json!({ "device": kind, "dtype": "f32" }))
}

/// What enters the keys of device-dependent stages.
pub fn settings(device: &Device) -> Value {
    json!({ "device": describe(device), "dtype": "f32" })
}

/// The device that [`settings`] describes: the CPU for `{"device": "cpu", ...}`, CUDA device 0
/// for `{"device": "cuda", ...}`. A process handed a job's settings opens its device this way.
pub fn for_settings(settings: &Value) -> Result<Device> {
    match settings.get("device").and_then(Value::as_str) {
        Some("cpu") => open("cpu"),
        Some("cuda") => open("cuda"),
        _ => Err(Error::Invalid(format!(
            "device settings {settings} name no known device (expected \"device\": \"cpu\" or \"cuda\")"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planned_device_is_not_opened() -> Result<()> {
        // No CUDA here (or no `cuda` feature): planning for CUDA still works.
        assert_eq!(planned_settings("cuda")?["device"], "cuda");
        assert_eq!(planned_settings("cuda:3")?["device"], "cuda");
        assert_eq!(planned_settings("cpu")?, settings(&Device::Cpu));
        let err = planned_settings("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        Ok(())
    }

    #[test]
    fn settings_name_the_device_they_were_made_from() -> Result<()> {
        let cpu = settings(&Device::Cpu);
        assert_eq!(cpu, json!({ "device": "cpu", "dtype": "f32" }));
        assert!(for_settings(&cpu)?.is_cpu());
        assert_eq!(settings(&for_settings(&cpu)?), cpu);
        Ok(())
    }

    #[test]
    fn settings_without_a_known_device_are_refused() {
        for bad in [
            json!({}),
            json!({ "device": "tpu" }),
            json!({ "device": 3 }),
        ] {
            let err = for_settings(&bad).expect_err("no such device").to_string();
            assert!(err.contains("cpu") && err.contains("cuda"), "{err}");
        }
        if !candle_core::utils::cuda_is_available() {
            let err = for_settings(&json!({ "device": "cuda", "dtype": "f32" }))
                .expect_err("no CUDA in this build")
                .to_string();
            assert!(err.contains("cuda"), "{err}");
        }
    }
}
