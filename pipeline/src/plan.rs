//! Compiling an experiment into a DAG of stage nodes, one per seed where the seed matters.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::experiment::{Experiment, StageDecl};
use crate::hash::canonical_json;
use crate::identity::{KeyComponents, NodeIdentity};
use crate::matrix::{self, Configuration};
use crate::settings::Settings;
use crate::stage::{Registry, Stage};

/// A stage instance of the plan: one stage, for one seed where the seed matters, serving
/// the configurations whose keys for it coincide.
pub struct Node {
    pub id: NodeIdentity,
    /// The resolved params the stage runs with (components hold the keyed view).
    pub params: Value,
    pub inputs: Vec<NodeInput>,
    /// Indices into `Plan::configurations` of the configurations this node serves: a node
    /// whose key coincides across configurations is planned (and computed) once.
    pub configs: Vec<usize>,
    /// The matrix values this node depends on (its own stage's axes and its ancestors').
    pub axes: Vec<(String, Value)>,
    pub(crate) stage: Arc<dyn Stage>,
}

impl Node {
    /// `name`, `name[seed=3]` or `name[init=normal,seed=3]`, for messages and records.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self
            .axes
            .iter()
            .map(|(name, value)| match value {
                Value::String(s) => format!("{name}={s}"),
                other => format!("{name}={other}"),
            })
            .collect();
        if let Some(seed) = self.id.seed {
            parts.push(format!("seed={seed}"));
        }
        match parts.is_empty() {
            true => self.id.name.clone(),
            false => format!("{}[{}]", self.id.name, parts.join(",")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeInput {
    /// The name the experiment (or the kind's defaults) used for this input.
    pub reference: String,
    /// Index into `Plan::nodes`.
    pub node: usize,
}

pub struct Plan {
    pub experiment: String,
    pub experiment_sha256: String,
    pub store: PathBuf,
    pub jobs: Option<usize>,
    pub seeds: Vec<u64>,
    /// The sweep's configurations; one, unlabelled, for an experiment without `[matrix]`.
    pub configurations: Vec<PlannedConfiguration>,
    /// In dependency order: every node comes after its inputs.
    pub nodes: Vec<Node>,
}

/// A configuration and the params it resolved to.
pub struct PlannedConfiguration {
    pub config: Configuration,
    /// Resolved params per stage name.
    pub params: BTreeMap<String, Value>,
}

impl Plan {
    /// Whether the experiment has a `[matrix]` (its configurations carry labels).
    pub fn is_sweep(&self) -> bool {
        self.configurations
            .first()
            .is_some_and(|c| !c.config.values.is_empty())
    }
}

struct Resolved<'a> {
    decl: &'a StageDecl,
    stage: Arc<dyn Stage>,
    params: Value,
    keyed_params: Value,
    inputs: Vec<(String, usize)>,
}

impl Plan {
    pub fn compile(
        exp: &Experiment,
        registry: &Registry,
        seeds_override: Option<Vec<u64>>,
        settings: &Settings,
    ) -> Result<Plan> {
        let seeds = seeds_override.unwrap_or_else(|| exp.seeds.clone());
        if seeds.is_empty() {
            return Err(Error::NoSeeds);
        }
        let mut keyed_cache = HashMap::new();
        let mut builder = Builder {
            nodes: Vec::new(),
            by_key: HashMap::new(),
        };
        let mut configurations = Vec::new();
        for (index, (config, point)) in matrix::expand(&exp.matrix).into_iter().enumerate() {
            let decls = configured_stages(exp, &point);
            let resolved = resolve_stages(exp, &decls, registry, &mut keyed_cache)?;
            let order = topological_order(exp, &resolved)?;
            builder.add_configuration(index, &resolved, &order, &seeds, settings, exp);
            configurations.push(PlannedConfiguration {
                params: resolved
                    .iter()
                    .map(|r| (r.decl.name.clone(), r.params.clone()))
                    .collect(),
                config,
            });
        }
        Ok(Plan {
            experiment: exp.name.clone(),
            experiment_sha256: exp.source_sha256.clone(),
            store: exp.store.clone(),
            jobs: exp.jobs,
            seeds,
            configurations,
            nodes: builder.nodes,
        })
    }
}

/// The experiment's stage declarations with one configuration's matrix values filled in.
fn configured_stages(exp: &Experiment, point: &[&toml::Value]) -> Vec<StageDecl> {
    let mut decls = exp.stages.clone();
    for (axis, value) in exp.matrix.iter().zip(point) {
        let decl = decls
            .iter_mut()
            .find(|d| d.name == axis.stage)
            .expect("matrix axes name declared stages");
        decl.params.insert(axis.param.clone(), (*value).clone());
        decl.matrix_lines.insert(axis.param.clone(), axis.line);
    }
    decls
}

/// Accumulates the nodes of every configuration, sharing nodes whose keys coincide.
struct Builder {
    nodes: Vec<Node>,
    /// (stage index, seed, key) -> node index.
    by_key: HashMap<(usize, Option<u64>, String), usize>,
}

impl Builder {
    fn add_configuration(
        &mut self,
        config: usize,
        resolved: &[Resolved<'_>],
        order: &[usize],
        seeds: &[u64],
        settings: &Settings,
        exp: &Experiment,
    ) {
        let mut seeded = vec![false; resolved.len()];
        let mut node_of: HashMap<(usize, Option<u64>), usize> = HashMap::new();
        for &i in order {
            let r = &resolved[i];
            seeded[i] = r.stage.uses_seed() || r.inputs.iter().any(|(_, j)| seeded[*j]);
            let node_seeds: Vec<Option<u64>> = if seeded[i] {
                seeds.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for seed in node_seeds {
                let inputs: Vec<NodeInput> = r
                    .inputs
                    .iter()
                    .map(|(reference, j)| NodeInput {
                        reference: reference.clone(),
                        node: node_of[&(*j, if seeded[*j] { seed } else { None })],
                    })
                    .collect();
                let components = KeyComponents {
                    kind: r.decl.kind.clone(),
                    version: r.stage.version(),
                    params: r.keyed_params.clone(),
                    inputs: inputs
                        .iter()
                        .map(|input| {
                            (
                                input.reference.clone(),
                                self.nodes[input.node].id.key.clone(),
                            )
                        })
                        .collect(),
                    seed: seed.filter(|_| r.stage.uses_seed()),
                    settings: r.stage.uses_device().then(|| settings.device.clone()),
                };
                let key = components.key();
                let index = match self.by_key.get(&(i, seed, key.clone())) {
                    Some(&existing) => {
                        self.nodes[existing].configs.push(config);
                        existing
                    }
                    None => {
                        self.by_key.insert((i, seed, key.clone()), self.nodes.len());
                        self.nodes.push(Node {
                            id: NodeIdentity {
                                name: r.decl.name.clone(),
                                kind: r.decl.kind.clone(),
                                seed,
                                key,
                                components,
                            },
                            params: r.params.clone(),
                            inputs,
                            configs: vec![config],
                            axes: relevant_axes(exp, resolved, i),
                            stage: r.stage.clone(),
                        });
                        self.nodes.len() - 1
                    }
                };
                node_of.insert((i, seed), index);
            }
        }
    }
}

/// The matrix values of the axes on stage `i` and its ancestors, as short name -> value.
fn relevant_axes(exp: &Experiment, resolved: &[Resolved<'_>], i: usize) -> Vec<(String, Value)> {
    let mut upstream = vec![false; resolved.len()];
    let mut stack = vec![i];
    while let Some(j) = stack.pop() {
        if !std::mem::replace(&mut upstream[j], true) {
            stack.extend(resolved[j].inputs.iter().map(|(_, k)| *k));
        }
    }
    let names = matrix::short_names(&exp.matrix);
    exp.matrix
        .iter()
        .zip(names)
        .filter_map(|(axis, name)| {
            let stage = resolved.iter().position(|r| r.decl.name == axis.stage)?;
            let value = resolved[stage].decl.params.get(&axis.param)?;
            upstream[stage].then(|| (name, serde_json::to_value(value).expect("TOML to JSON")))
        })
        .collect()
}

/// Resolved and keyed params of every stage. Keyed params are cached by resolved params:
/// a stage's keyed view may hash data files, and most configurations share most stages.
fn resolve_stages<'a>(
    exp: &Experiment,
    decls: &'a [StageDecl],
    registry: &Registry,
    keyed_cache: &mut HashMap<(String, String), Value>,
) -> Result<Vec<Resolved<'a>>> {
    let mut resolved = Vec::new();
    for decl in decls {
        let stage = registry.get(&decl.kind).ok_or_else(|| {
            let known: Vec<_> = registry.kinds().collect();
            let key = if decl.key_lines.contains_key("kind") {
                "kind"
            } else {
                ""
            };
            exp.stage_error(
                decl,
                key,
                format!(
                    "unknown stage kind `{}` (known: {})",
                    decl.kind,
                    known.join(", ")
                ),
            )
        })?;
        let params = stage
            .resolve_params(&file_relative(exp, decl, stage.as_ref()))
            .map_err(|e| exp.stage_error(decl, &e.key, e.message))?;
        let cache_key = (decl.name.clone(), canonical_json(&params));
        let keyed_params = match keyed_cache.get(&cache_key) {
            Some(keyed) => keyed.clone(),
            None => {
                let keyed = stage
                    .keyed_params(&params)
                    .map_err(|e| exp.stage_error(decl, &e.key, e.message))?;
                keyed_cache.insert(cache_key, keyed.clone());
                keyed
            }
        };
        let references: Vec<String> = match &decl.inputs {
            Some(inputs) => inputs.clone(),
            None => stage
                .default_inputs()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let inputs = references
            .into_iter()
            .map(|reference| {
                let index = find_input(exp, &reference)
                    .map_err(|message| exp.stage_error(decl, "inputs", message))?;
                Ok((reference, index))
            })
            .collect::<Result<_>>()?;
        resolved.push(Resolved {
            decl,
            stage: stage.clone(),
            params,
            keyed_params,
            inputs,
        });
    }
    Ok(resolved)
}

/// A stage's params with the paths written in the experiment file resolved against its
/// folder (`--set` values are left as given).
fn file_relative(exp: &Experiment, decl: &StageDecl, stage: &dyn Stage) -> toml::Table {
    let mut params = decl.params.clone();
    if let Some(base) = &exp.base_dir {
        let mut written: toml::Table = params
            .iter()
            .filter(|(key, _)| !decl.overrides.contains_key(*key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        stage.resolve_paths(&mut written, base);
        params.extend(written);
    }
    params
}

/// A reference is a stage name, or else a kind with exactly one stage.
fn find_input(exp: &Experiment, reference: &str) -> std::result::Result<usize, String> {
    if let Some(i) = exp.stages.iter().position(|s| s.name == reference) {
        return Ok(i);
    }
    let of_kind: Vec<usize> = (0..exp.stages.len())
        .filter(|&i| exp.stages[i].kind == reference)
        .collect();
    match of_kind[..] {
        [i] => Ok(i),
        [] => Err(format!("input `{reference}` names no stage")),
        _ => Err(format!(
            "input `{reference}` is ambiguous: several stages have that kind; name one in `inputs`"
        )),
    }
}

/// Depth-first order; a back edge is a cycle, reported with its path.
fn topological_order(exp: &Experiment, resolved: &[Resolved<'_>]) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        resolved: &[Resolved<'_>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> std::result::Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = path
                    .iter()
                    .position(|&p| p == i)
                    .expect("active is on path");
                let mut cycle = path[start..].to_vec();
                cycle.push(i);
                return Err(cycle);
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        path.push(i);
        for &(_, j) in &resolved[i].inputs {
            visit(j, resolved, marks, path, order)?;
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }

    let mut marks = vec![Mark::New; resolved.len()];
    let mut order = Vec::new();
    for i in 0..resolved.len() {
        visit(i, resolved, &mut marks, &mut Vec::new(), &mut order).map_err(|cycle| {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&c| resolved[c].decl.name.as_str())
                .collect();
            // Inputs point upstream, so reverse to read in data-flow order.
            let text: Vec<&str> = names.iter().rev().copied().collect();
            exp.stage_error(
                resolved[cycle[0]].decl,
                "inputs",
                format!("cycle: {}", text.join(" -> ")),
            )
        })?;
    }
    Ok(order)
}
