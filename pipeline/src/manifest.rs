//! `manifest.json`: what an artifact holds and how it was made; the basis of validation.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, IoContext, Result};
use crate::hash::file_digest;

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    /// The readable key components (what was hashed into `key`).
    pub components: Value,
    pub files: Vec<FileEntry>,
    /// Keys of the units a stage used; keeps them alive through `gc`.
    #[serde(default)]
    pub units: Vec<String>,
    pub started: String,
    pub finished: String,
    pub wall_seconds: f64,
    pub tool_version: String,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the artifact dir, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The state of an artifact directory.
#[derive(Debug)]
pub enum Validity {
    Valid(Box<Manifest>),
    Missing,
    Invalid { file: String, reason: String },
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).at(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptArtifact {
            path: path.clone(),
            reason: e.to_string(),
        })
    }
}

/// Checks that the manifest's key matches and every listed file has its size and sha256.
pub fn validate(dir: &Path, key: &str) -> Validity {
    if !dir.exists() {
        return Validity::Missing;
    }
    let invalid = |file: &str, reason: String| Validity::Invalid {
        file: file.to_string(),
        reason,
    };
    let manifest = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => return invalid(MANIFEST_FILE, e.to_string()),
    };
    if manifest.key != key {
        return invalid(
            MANIFEST_FILE,
            format!("key {} does not match", manifest.key),
        );
    }
    for entry in &manifest.files {
        let path = dir.join(&entry.path);
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(_) => return invalid(&entry.path, "missing".into()),
        };
        if size != entry.size {
            return invalid(&entry.path, format!("size {size}, expected {}", entry.size));
        }
        match file_digest(&path) {
            Ok((_, sha)) if sha == entry.sha256 => {}
            Ok(_) => return invalid(&entry.path, "sha256 mismatch".into()),
            Err(e) => return invalid(&entry.path, e.to_string()),
        }
    }
    Validity::Valid(Box::new(manifest))
}

pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
