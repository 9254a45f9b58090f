//! The stage interface and the registry of known stage kinds.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::StageContext;
use crate::error::Result;

pub trait Stage: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Bumped when a code change changes results: part of every key.
    fn version(&self) -> u32;
    /// Inputs used when the experiment gives none: stage names or kinds. Default: none.
    fn default_inputs(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Whether the seed enters this stage's key, so it runs once per seed. Default: no.
    fn uses_seed(&self) -> bool {
        false
    }
    /// Whether `Settings::device` enters this stage's keys. Default: no.
    fn uses_device(&self) -> bool {
        false
    }
    /// Checks the params table and returns the resolved params (defaults filled in).
    fn resolve_params(
        &self,
        params: &toml::Table,
    ) -> std::result::Result<serde_json::Value, ParamError>;
    /// The view of the resolved params that enters the key. A stage that reads files outside
    /// the store puts their content hashes here in place of their paths, so a key never depends
    /// on where the data lives. Called when the plan is compiled.
    fn keyed_params(
        &self,
        params: &serde_json::Value,
    ) -> std::result::Result<serde_json::Value, ParamError> {
        Ok(params.clone())
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<()>;
    /// Rewrites the params that name files, as written in an experiment file in the folder
    /// `base`, so that a relative path means the same wherever tenas is started
    /// (`resolve_path_param` does one). `--set` values stay relative to the working directory.
    fn resolve_paths(&self, _params: &mut toml::Table, _base: &std::path::Path) {}
    /// Whether an executor may split the stage's units into shards run as separate jobs.
    /// Only a stage that computes all its units in one `StageContext::units` call before
    /// using any of them may say yes.
    fn shardable(&self) -> bool {
        false
    }
}

/// A param problem; the engine adds the file and line of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub key: String,
    pub message: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Deserializes a params table, naming the offending key on error.
///
/// serde names unknown fields in its message; for other errors (wrong types) the
/// culprit is found by removing one key at a time and seeing whether the error goes
/// away or changes.
pub fn deserialize_params<T: DeserializeOwned>(
    table: &toml::Table,
) -> std::result::Result<T, ParamError> {
    let attempt = |t: &toml::Table| toml::Value::Table(t.clone()).try_into::<T>();
    let err = match attempt(table) {
        Ok(value) => return Ok(value),
        Err(err) => err.message().to_string(),
    };
    if let Some(field) = backticked_after(&err, "unknown field `") {
        let message = format!("unknown param `{field}`");
        return Err(ParamError::new(field, message));
    }
    for key in table.keys() {
        let mut without = table.clone();
        without.remove(key);
        let changed = match attempt(&without) {
            Ok(_) => true,
            Err(e) => e.message() != err,
        };
        if changed {
            return Err(ParamError::new(key.clone(), err));
        }
    }
    let key = backticked_after(&err, "missing field `").unwrap_or_default();
    Err(ParamError::new(key, err))
}

/// `deserialize_params` then back to JSON: the usual body of `Stage::resolve_params`.
pub fn resolve_params_as<T: DeserializeOwned + Serialize>(
    table: &toml::Table,
) -> std::result::Result<serde_json::Value, ParamError> {
    let params: T = deserialize_params(table)?;
    serde_json::to_value(&params).map_err(|e| ParamError::new("", e.to_string()))
}

/// `params[key]`, when it is a relative path, joined onto `base`.
pub fn resolve_path_param(params: &mut toml::Table, key: &str, base: &std::path::Path) {
    if let Some(toml::Value::String(path)) = params.get(key) {
        if std::path::Path::new(path).is_relative() {
            let joined = base.join(path).display().to_string();
            params.insert(key.to_string(), toml::Value::String(joined));
        }
    }
}

fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Known stage kinds.
#[derive(Default, Clone)]
pub struct Registry {
    stages: BTreeMap<&'static str, Arc<dyn Stage>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a stage kind. Panics on a duplicate kind: that is a programming error.
    pub fn register(&mut self, stage: impl Into<Arc<dyn Stage>>) -> &mut Self {
        let stage = stage.into();
        let kind = stage.kind();
        assert!(
            self.stages.insert(kind, stage).is_none(),
            "stage kind `{kind}` registered twice"
        );
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Stage>> {
        self.stages.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stages.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Params {
        batch: u32,
        name: String,
        ratio: f64,
    }
    impl Default for Params {
        fn default() -> Self {
            Params {
                batch: 8,
                name: "n".into(),
                ratio: 0.5,
            }
        }
    }

    fn table(src: &str) -> toml::Table {
        src.parse().unwrap()
    }

    #[test]
    fn fills_defaults() {
        let p: Params = deserialize_params(&table("batch = 3")).unwrap();
        assert_eq!(p.batch, 3);
        assert_eq!(p.name, "n");
    }

    #[test]
    fn names_unknown_field() {
        let e = deserialize_params::<Params>(&table("batch = 3\nbacth = 4")).unwrap_err();
        assert_eq!(e.key, "bacth");
        assert!(e.message.contains("unknown param"), "{}", e.message);
    }

    #[test]
    fn names_wrongly_typed_field() {
        let e = deserialize_params::<Params>(&table("name = \"x\"\nbatch = \"a\"\nratio = 1.0"))
            .unwrap_err();
        assert_eq!(e.key, "batch");
        assert!(e.message.contains("invalid type"), "{}", e.message);
        let e = deserialize_params::<Params>(&table("ratio = \"x\"")).unwrap_err();
        assert_eq!(e.key, "ratio");
    }

    #[test]
    fn names_missing_required_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Required {
            size: u32,
        }
        let e = deserialize_params::<Required>(&table("")).unwrap_err();
        assert_eq!(e.key, "size");
    }
}
