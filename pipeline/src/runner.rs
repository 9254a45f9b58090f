//! Running one node into the store: its artifact, computed unless a valid one exists.
//! Shared by the local executor and Slurm jobs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::budget::Budget;
use crate::context::{InputArtifact, NodeView, Shard, StageContext};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::plan::Node;
use crate::progress::Reporter;
use crate::record::{NodeRecord, UnitCounts};
use crate::settings::Settings;
use crate::store::{Area, Outcome, Produced, Store};

/// What running a node needs besides the node and its inputs.
pub(crate) struct NodeRunner<'a> {
    pub experiment: &'a str,
    pub store: &'a Store,
    pub settings: &'a Settings,
    pub reporter: &'a Reporter,
    /// Parallel units inside the node, at most.
    pub jobs: usize,
    /// Permits shared by every node and unit of the process.
    pub budget: &'a Budget,
    /// Append-only list of unit keys, so gc keeps an interrupted run's units.
    pub journal: &'a Path,
}

/// A finished node: its record and its artifact.
pub(crate) struct NodeOutput {
    pub record: NodeRecord,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl NodeRunner<'_> {
    /// Returns the node's valid artifact, computing it when there is none. `configs` are the
    /// labels recorded for the node.
    pub fn run(
        &self,
        node: &Node,
        inputs: Vec<InputArtifact>,
        configs: Vec<String>,
    ) -> Result<NodeOutput> {
        let label = node.label();
        let progress = self.reporter.stage(label.clone());
        let clock = Instant::now();
        let units_hit = AtomicU64::new(0);
        let units_computed = AtomicU64::new(0);
        let components = serde_json::to_value(&node.id.components)?;
        let artifact = self.store.get_or_compute(
            Area::Objects,
            &node.id.key,
            &components,
            &self.settings.tool_version,
            &|line| progress.warn(&line),
            |out| {
                self.reporter.info(&format!("{label}: running"));
                let ctx = self.context(node, inputs, out, &progress, None);
                let result = node.stage.run(&ctx).map_err(|e| e.in_stage(&label));
                units_hit.store(ctx.units_hit.into_inner(), Ordering::Relaxed);
                units_computed.store(ctx.units_computed.into_inner(), Ordering::Relaxed);
                result?;
                let mut units = ctx.unit_keys.into_inner().expect("unit keys lock");
                units.sort();
                units.dedup();
                Ok(Produced { units })
            },
        );
        progress.finish();
        let artifact = artifact?;
        let wall_seconds = clock.elapsed().as_secs_f64();
        let units = UnitCounts {
            hit: units_hit.into_inner(),
            computed: units_computed.into_inner(),
        };
        self.reporter.info(&match artifact.outcome {
            Outcome::Hit => format!("{label}: cached"),
            _ => format!(
                "{label}: done in {wall_seconds:.1}s (units: {} computed, {} cached)",
                units.computed, units.hit
            ),
        });
        Ok(NodeOutput {
            record: NodeRecord {
                label,
                configs,
                id: node.id.clone(),
                outcome: artifact.outcome,
                wall_seconds,
                units,
            },
            dir: artifact.dir,
            manifest: artifact.manifest,
        })
    }

    /// Computes one shard of a node's units (those whose index is `shard.index` modulo
    /// `shard.count`) into the store, and no artifact: the node itself runs once every
    /// shard is done, and finds its units cached.
    pub fn run_shard(
        &self,
        node: &Node,
        inputs: Vec<InputArtifact>,
        shard: Shard,
    ) -> Result<UnitCounts> {
        let label = format!(
            "{} (shard {} of {})",
            node.label(),
            shard.index + 1,
            shard.count
        );
        let progress = self.reporter.stage(label.clone());
        let scratch = self.store.scratch_dir()?;
        let ctx = self.context(node, inputs, scratch.path(), &progress, Some(shard));
        let result = node.stage.run(&ctx);
        progress.finish();
        result.map_err(|e| e.in_stage(&label))?;
        if !ctx.shard_done.load(Ordering::Relaxed) {
            return Err(Error::ShardNotReached.in_stage(&label));
        }
        Ok(UnitCounts {
            hit: ctx.units_hit.into_inner(),
            computed: ctx.units_computed.into_inner(),
        })
    }

    fn context<'c>(
        &'c self,
        node: &'c Node,
        inputs: Vec<InputArtifact>,
        out: &Path,
        progress: &'c crate::progress::Progress<'c>,
        shard: Option<Shard>,
    ) -> StageContext<'c> {
        StageContext {
            node: NodeView {
                id: &node.id,
                params: &node.params,
                version: node.stage.version(),
            },
            settings: self.settings,
            experiment: self.experiment,
            store: self.store,
            inputs,
            out_dir: out.to_path_buf(),
            progress,
            jobs: self.jobs,
            budget: self.budget,
            journal: self.journal,
            shard,
            shard_done: AtomicBool::new(false),
            unit_keys: Mutex::new(Vec::new()),
            units_hit: AtomicU64::new(0),
            units_computed: AtomicU64::new(0),
        }
    }
}
