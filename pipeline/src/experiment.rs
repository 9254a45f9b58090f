//! Experiment files: TOML with a few top-level settings and one table per stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::error::{Error, IoContext, Result};
use crate::hash::sha256_hex;
use crate::matrix::Axis;

#[derive(Debug, Clone)]
pub struct Experiment {
    /// From `name`; defaults to the file stem.
    pub name: String,
    pub seeds: Vec<u64>,
    /// As written (`auto` by default); the caller turns it into `Settings::device`.
    pub device: String,
    /// As written in the file, relative to the file's folder; by default `artifacts` in the
    /// working directory.
    pub store: PathBuf,
    pub jobs: Option<usize>,
    /// sha256 of the file's bytes (before overrides).
    pub source_sha256: String,
    /// The path as given, used in error messages.
    pub file: String,
    /// The file's folder (absolute), against which paths written in the file resolve; none
    /// for text parsed without a file.
    pub base_dir: Option<PathBuf>,
    pub stages: Vec<StageDecl>,
    /// `[matrix]` axes in file order; empty for a single configuration.
    pub matrix: Vec<Axis>,
    /// `[executor]` as written, checked by `ExecutorConfig::from_experiment`.
    pub executor: toml::Table,
    /// Line of each key of `[executor]` (dotted for sub-tables: `slurm.partition`).
    pub(crate) executor_lines: BTreeMap<String, usize>,
    /// Whether `store` was written in the file (and so resolves against its folder).
    store_written: bool,
}

#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: String,
    pub kind: String,
    /// `None`: the kind's default inputs.
    pub inputs: Option<Vec<String>>,
    pub params: toml::Table,
    pub(crate) line: usize,
    pub(crate) key_lines: BTreeMap<String, usize>,
    /// Param keys replaced by `--set`, with the argument that set them.
    pub(crate) overrides: BTreeMap<String, String>,
    /// Param keys whose value comes from `[matrix]`, with the matrix key's line.
    pub(crate) matrix_lines: BTreeMap<String, usize>,
}

const TOP_LEVEL_KEYS: &str =
    "name, seeds, device, store, jobs, [matrix], [executor], or a [stage] table";

impl Experiment {
    pub fn load(path: &Path, overrides: &[String]) -> Result<Experiment> {
        let bytes = std::fs::read(path).at(path)?;
        let file = path.display().to_string();
        let source = String::from_utf8(bytes).map_err(|_| Error::Experiment {
            file: file.clone(),
            line: 1,
            key: "file".into(),
            message: "not valid UTF-8".into(),
        })?;
        let default_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        })
        .at(path)?;
        let mut exp = Self::parse(&source, &file, &default_name, overrides)?;
        if exp.store_written {
            exp.store = base.join(&exp.store);
        }
        exp.base_dir = Some(base);
        Ok(exp)
    }

    /// The name an experiment file gives its runs (`name`, else the file stem), without
    /// compiling it.
    pub fn name_in(path: &Path) -> Result<String> {
        Ok(Self::load(path, &[])?.name)
    }

    /// Parses experiment text; `file` only labels error messages.
    pub fn parse(
        source: &str,
        file: &str,
        default_name: &str,
        overrides: &[String],
    ) -> Result<Experiment> {
        let err = |line: usize, key: &str, message: String| Error::Experiment {
            file: file.to_string(),
            line,
            key: key.to_string(),
            message,
        };
        let syntax = |e: toml::de::Error| {
            let line = e.span().map_or(1, |s| line_of(source, s.start));
            err(line, "TOML syntax", e.message().trim().to_string())
        };
        // Two parses: DeTable keeps spans (for lines), Table gives owned values.
        let spanned = DeTable::parse(source).map_err(syntax)?;
        let values: toml::Table = toml::from_str(source).map_err(syntax)?;

        let mut exp = Experiment {
            name: default_name.to_string(),
            seeds: vec![0],
            device: "auto".into(),
            store: PathBuf::from("artifacts"),
            jobs: None,
            source_sha256: sha256_hex(source.as_bytes()),
            file: file.to_string(),
            stages: Vec::new(),
            base_dir: None,
            store_written: false,
            matrix: Vec::new(),
            executor: toml::Table::new(),
            executor_lines: BTreeMap::new(),
        };
        let mut matrix = None;
        for (key, value) in spanned.get_ref().iter() {
            let name = key.get_ref().as_ref();
            let line = line_of(source, key.span().start);
            let toml_value = &values[name];
            let wrong = |expected: &str| {
                err(
                    line,
                    name,
                    format!("expected {expected}, found {}", toml_value.type_str()),
                )
            };
            match (name, value.get_ref()) {
                ("name", _) => {
                    exp.name = toml_value.as_str().ok_or_else(|| wrong("a string"))?.into()
                }
                ("device", _) => {
                    exp.device = toml_value.as_str().ok_or_else(|| wrong("a string"))?.into()
                }
                ("store", _) => {
                    exp.store = toml_value.as_str().ok_or_else(|| wrong("a string"))?.into();
                    exp.store_written = true;
                }
                ("jobs", _) => {
                    let jobs = toml_value.as_integer().filter(|j| *j > 0);
                    exp.jobs = Some(jobs.ok_or_else(|| wrong("a positive integer"))? as usize)
                }
                ("seeds", _) => {
                    exp.seeds = parse_seeds(toml_value)
                        .ok_or_else(|| wrong("an array of non-negative integers"))?
                }
                ("matrix", DeValue::Table(table)) => matrix = Some((line, table)),
                ("executor", DeValue::Table(table)) => {
                    exp.executor = toml_value.as_table().expect("both parses agree").clone();
                    exp.executor_lines = key_lines(table, source, "");
                }
                (_, DeValue::Table(table)) => {
                    let params = toml_value.as_table().expect("both parses agree").clone();
                    exp.stages
                        .push(stage_decl(name, line, table, params, source, &err)?);
                }
                _ => {
                    return Err(err(
                        line,
                        name,
                        format!("unknown top-level key (expected {TOP_LEVEL_KEYS})"),
                    ))
                }
            }
        }
        if let Some((line, table)) = matrix {
            exp.matrix = parse_matrix(table, &values["matrix"], line, source, &exp.stages, &err)?;
        }
        for arg in overrides {
            exp.apply_override(arg)?;
        }
        Ok(exp)
    }

    /// `stage.key=value`; the value is TOML, or else taken as a string.
    fn apply_override(&mut self, arg: &str) -> Result<()> {
        let bad = |message: String| Error::Override {
            arg: arg.to_string(),
            message,
        };
        let (path, raw) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected stage.key=value".into()))?;
        let (stage, key) = path
            .trim()
            .split_once('.')
            .ok_or_else(|| bad("expected stage.key=value".into()))?;
        let names: Vec<_> = self.stages.iter().map(|s| s.name.as_str()).collect();
        let known = names.join(", ");
        let decl = self
            .stages
            .iter_mut()
            .find(|s| s.name == stage)
            .ok_or_else(|| bad(format!("no stage named `{stage}` (stages: {known})")))?;
        let value = match format!("v = {raw}").parse::<toml::Table>() {
            Ok(mut t) => t.remove("v").expect("parsed key"),
            Err(_) => toml::Value::String(raw.to_string()),
        };
        match key {
            "kind" => {
                decl.kind = value
                    .as_str()
                    .ok_or_else(|| bad("kind must be a string".into()))?
                    .into()
            }
            "inputs" => {
                decl.inputs = Some(
                    string_array(&value)
                        .ok_or_else(|| bad("inputs must be an array of stage names".into()))?,
                )
            }
            _ => {
                let axis = self
                    .matrix
                    .iter_mut()
                    .find(|a| a.stage == stage && a.param == key);
                match axis {
                    Some(axis) => {
                        axis.values = vec![value];
                        axis.pinned_by = Some(arg.to_string());
                    }
                    None => {
                        decl.params.insert(key.to_string(), value);
                    }
                }
                decl.overrides.insert(key.to_string(), arg.to_string());
            }
        }
        Ok(())
    }

    /// The error for a problem with a key of `[executor]` (`slurm.partition` for sub-tables).
    pub(crate) fn executor_error(&self, key: &str, message: String) -> Error {
        let line = (0..=key.matches('.').count())
            .filter_map(|cut| {
                let prefix: Vec<&str> = key.split('.').collect();
                self.executor_lines
                    .get(&prefix[..prefix.len() - cut].join("."))
                    .copied()
            })
            .next()
            .unwrap_or(1);
        Error::Experiment {
            file: self.file.clone(),
            line,
            key: format!("[executor] {key}"),
            message,
        }
    }

    /// The error for a problem with one of a stage's keys, located in the file or the override.
    pub(crate) fn stage_error(&self, decl: &StageDecl, key: &str, message: String) -> Error {
        if let Some(arg) = decl.overrides.get(key) {
            return Error::Override {
                arg: arg.clone(),
                message,
            };
        }
        if let Some(&line) = decl.matrix_lines.get(key) {
            return Error::Experiment {
                file: self.file.clone(),
                line,
                key: format!("[matrix] {}.{key}", decl.name),
                message,
            };
        }
        Error::Experiment {
            file: self.file.clone(),
            line: decl.key_lines.get(key).copied().unwrap_or(decl.line),
            key: if key.is_empty() {
                format!("[{}]", decl.name)
            } else {
                format!("[{}] {key}", decl.name)
            },
            message,
        }
    }
}

fn stage_decl(
    name: &str,
    line: usize,
    table: &DeTable<'_>,
    mut params: toml::Table,
    source: &str,
    err: &dyn Fn(usize, &str, String) -> Error,
) -> Result<StageDecl> {
    let key_lines = key_lines(table, source, "");
    let at = |key: &str| key_lines.get(key).copied().unwrap_or(line);
    let kind = match params.remove("kind") {
        None => name.to_string(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| {
                err(
                    at("kind"),
                    &format!("[{name}] kind"),
                    "expected a string".into(),
                )
            })?
            .to_string(),
    };
    let inputs = match params.remove("inputs") {
        None => None,
        Some(v) => Some(string_array(&v).ok_or_else(|| {
            err(
                at("inputs"),
                &format!("[{name}] inputs"),
                "expected an array of stage names".into(),
            )
        })?),
    };
    Ok(StageDecl {
        name: name.to_string(),
        kind,
        inputs,
        params,
        line,
        key_lines,
        overrides: BTreeMap::new(),
        matrix_lines: BTreeMap::new(),
    })
}

/// The line of every key of a table, sub-tables' keys as `sub.key`.
fn key_lines(table: &DeTable<'_>, source: &str, prefix: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for (key, value) in table.iter() {
        let name = format!("{prefix}{}", key.get_ref());
        if let DeValue::Table(inner) = value.get_ref() {
            lines.extend(key_lines(inner, source, &format!("{name}.")));
        }
        lines.insert(name, line_of(source, key.span().start));
    }
    lines
}

/// `[matrix]`: `"stage.param" = [values]` (or `stage.param = [...]`, which TOML reads as a
/// sub-table). Checks what needs no stage code: the key names a stage, the list is a
/// non-empty list of distinct values. Param names and value types are checked when the plan
/// resolves each configuration.
fn parse_matrix(
    table: &DeTable<'_>,
    values: &toml::Value,
    table_line: usize,
    source: &str,
    stages: &[StageDecl],
    err: &dyn Fn(usize, &str, String) -> Error,
) -> Result<Vec<Axis>> {
    let lines = key_lines(table, source, "");
    let mut entries: Vec<(String, &toml::Value)> = Vec::new();
    for (key, value) in values.as_table().expect("[matrix] is a table") {
        match value.as_table() {
            Some(inner) => entries.extend(inner.iter().map(|(k, v)| (format!("{key}.{k}"), v))),
            None => entries.push((key.clone(), value)),
        }
    }
    entries.sort_by_key(|(key, _)| lines.get(key).copied().unwrap_or(table_line));
    let mut axes = Vec::new();
    for (key, value) in entries {
        let line = lines.get(&key).copied().unwrap_or(table_line);
        let fail = |message: String| err(line, &format!("[matrix] {key}"), message);
        let (stage, param) = key
            .split_once('.')
            .filter(|(s, p)| !s.is_empty() && !p.is_empty() && !p.contains('.'))
            .ok_or_else(|| fail("expected a key of the form \"stage.param\"".into()))?;
        let decl = stages.iter().find(|s| s.name == stage).ok_or_else(|| {
            let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
            fail(format!(
                "no stage named `{stage}` (stages: {})",
                names.join(", ")
            ))
        })?;
        if param == "kind" || param == "inputs" {
            return Err(fail(format!(
                "`{param}` cannot vary; a matrix varies params"
            )));
        }
        if let Some(at) = decl.key_lines.get(param) {
            return Err(fail(format!(
                "`{param}` is also set in [{stage}] (line {at}); give its values in one place"
            )));
        }
        let list = value.as_array().ok_or_else(|| {
            fail(format!(
                "expected a list of values, found {}",
                value.type_str()
            ))
        })?;
        if list.is_empty() {
            return Err(fail("empty list: give at least one value".into()));
        }
        for (i, v) in list.iter().enumerate() {
            if list[..i].contains(v) {
                return Err(fail(format!(
                    "duplicate value `{}`",
                    crate::matrix::value_text(v)
                )));
            }
        }
        axes.push(Axis {
            stage: stage.to_string(),
            param: param.to_string(),
            values: list.clone(),
            line,
            pinned_by: None,
        });
    }
    Ok(axes)
}

fn parse_seeds(value: &toml::Value) -> Option<Vec<u64>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_integer().and_then(|i| u64::try_from(i).ok()))
        .collect()
}

fn string_array(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Experiment> {
        Experiment::parse(src, "x.toml", "x", &[])
    }

    fn message(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn parses_settings_and_stages() {
        let exp = parse(
            "name = \"demo\"\nseeds = [1, 2]\njobs = 3\n\n[data]\nn = 4\n\n[fit]\nkind = \"model\"\ninputs = [\"data\"]\nlr = 0.1\n",
        )
        .unwrap();
        assert_eq!(exp.name, "demo");
        assert_eq!(exp.seeds, vec![1, 2]);
        assert_eq!(exp.jobs, Some(3));
        assert_eq!(exp.device, "auto");
        assert_eq!(exp.store, PathBuf::from("artifacts"));
        let fit = exp.stages.iter().find(|s| s.name == "fit").unwrap();
        assert_eq!(fit.kind, "model");
        assert_eq!(fit.inputs.as_deref(), Some(&["data".to_string()][..]));
        assert_eq!(fit.params.len(), 1);
        assert_eq!(fit.key_lines["lr"], 11);
    }

    #[test]
    fn locates_errors() {
        assert!(message("name = \"a\"\nseeds = [1,\n").starts_with("x.toml:"));
        assert_eq!(
            message("name = \"a\"\nbogus = 1\n"),
            format!("x.toml:2: bogus: unknown top-level key (expected {TOP_LEVEL_KEYS})")
        );
        assert_eq!(
            message("\nseeds = [-1]"),
            "x.toml:2: seeds: expected an array of non-negative integers, found array"
        );
        assert_eq!(
            message("[a]\n\ninputs = \"b\""),
            "x.toml:3: [a] inputs: expected an array of stage names"
        );
    }

    #[test]
    fn overrides_replace_params_and_reject_unknown_stages() {
        let sets = ["a.n=5".to_string(), "a.label=hello world".to_string()];
        let exp = Experiment::parse("[a]\nn = 1\n", "x.toml", "x", &sets).unwrap();
        assert_eq!(exp.stages[0].params["n"], toml::Value::Integer(5));
        assert_eq!(exp.stages[0].params["label"].as_str(), Some("hello world"));
        let err = Experiment::parse("[a]\n", "x.toml", "x", &["b.n=1".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set b.n=1: no stage named `b` (stages: a)"
        );
    }
}
