//! Sweeps: the `[matrix]` table expands an experiment into the cartesian product of its
//! axes, each configuration labelled by its values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One `"stage.param" = [values...]` entry of `[matrix]`.
#[derive(Debug, Clone)]
pub struct Axis {
    pub stage: String,
    pub param: String,
    pub values: Vec<toml::Value>,
    /// Line of the key in the experiment file.
    pub(crate) line: usize,
    /// The `--set` argument that pinned this axis to one value, if any.
    pub(crate) pinned_by: Option<String>,
}

impl Axis {
    /// `stage.param`, as written in `[matrix]`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.stage, self.param)
    }
}

/// One point of the sweep: a value per axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// `optimizer=adam,init=normal`; empty for an experiment without `[matrix]`.
    pub label: String,
    /// Short axis name (the param, or `stage.param` where params collide) -> value, in
    /// matrix order.
    pub values: Vec<(String, serde_json::Value)>,
}

impl Configuration {
    /// Where this configuration's tables lie below a results table folder:
    /// `optimizer=sgd/init=normal` (empty outside a sweep).
    pub fn partition(&self) -> std::path::PathBuf {
        self.values
            .iter()
            .map(|(name, value)| partition_segment(name, value))
            .collect()
    }
}

/// The configurations of a matrix, in row-major order of the axes as written.
pub(crate) fn expand(axes: &[Axis]) -> Vec<(Configuration, Vec<&toml::Value>)> {
    let names = short_names(axes);
    let mut points: Vec<Vec<&toml::Value>> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut point = prefix.clone();
                    point.push(v);
                    point
                })
            })
            .collect();
    }
    points
        .into_iter()
        .map(|point| {
            let values: Vec<(String, serde_json::Value)> = names
                .iter()
                .zip(&point)
                .map(|(name, v)| (name.clone(), json_of(v)))
                .collect();
            let label = label_of(&names, &point);
            (Configuration { label, values }, point)
        })
        .collect()
}

/// Each axis by its param name, or by `stage.param` when two axes share a param name.
pub(crate) fn short_names(axes: &[Axis]) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for axis in axes {
        *counts.entry(axis.param.as_str()).or_default() += 1;
    }
    axes.iter()
        .map(|a| match counts[a.param.as_str()] {
            1 => a.param.clone(),
            _ => a.key(),
        })
        .collect()
}

fn label_of(names: &[String], point: &[&toml::Value]) -> String {
    let mut label = String::new();
    for (i, (name, value)) in names.iter().zip(point).enumerate() {
        if i > 0 {
            label.push(',');
        }
        let _ = write!(label, "{name}={}", value_text(value));
    }
    label
}

/// A value as it reads in a label: strings bare, everything else as TOML writes it.
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_of(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).expect("TOML values convert to JSON")
}

/// A path segment `name=value` for a hive-partitioned results tree, with characters that
/// are unsafe in a file name percent-encoded.
pub(crate) fn partition_segment(name: &str, value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("{}={}", escape(name), escape(&text))
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'+' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(stage: &str, param: &str, values: &[toml::Value]) -> Axis {
        Axis {
            stage: stage.into(),
            param: param.into(),
            values: values.to_vec(),
            line: 1,
            pinned_by: None,
        }
    }

    fn s(x: &str) -> toml::Value {
        toml::Value::String(x.into())
    }

    #[test]
    fn expands_the_cartesian_product_in_row_major_order() {
        let axes = [
            axis("train", "optimizer", &[s("sgd"), s("adam")]),
            axis("model", "init", &[s("zeros"), s("normal")]),
        ];
        let labels: Vec<String> = expand(&axes).into_iter().map(|(c, _)| c.label).collect();
        assert_eq!(
            labels,
            [
                "optimizer=sgd,init=zeros",
                "optimizer=sgd,init=normal",
                "optimizer=adam,init=zeros",
                "optimizer=adam,init=normal"
            ]
        );
    }

    #[test]
    fn colliding_param_names_keep_their_stage() {
        let axes = [
            axis("train", "batch", &[toml::Value::Integer(8)]),
            axis("eval", "batch", &[toml::Value::Integer(4)]),
            axis("train", "repeat", &[toml::Value::Integer(2)]),
        ];
        let (config, _) = expand(&axes).remove(0);
        assert_eq!(config.label, "train.batch=8,eval.batch=4,repeat=2");
        assert_eq!(config.values[2], ("repeat".into(), serde_json::json!(2)));
    }

    #[test]
    fn no_axes_is_one_unlabelled_configuration() {
        let configs = expand(&[]);
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].0.label, "");
    }

    #[test]
    fn partition_segments_are_safe_file_names() {
        assert_eq!(
            partition_segment("init", &serde_json::json!("normal")),
            "init=normal"
        );
        assert_eq!(partition_segment("lr", &serde_json::json!(0.5)), "lr=0.5");
        assert_eq!(
            partition_segment("table", &serde_json::json!("a/b c")),
            "table=a%2Fb%20c"
        );
    }
}
