//! What the prune and correlation stages share to score networks: the score settings, checked
//! the same way in both, and the loading of their inputs into a [`Scorer`] on the run's device.
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use tenas_core::data::pool::ImagePool;
use tenas_core::data::sample::Augmentation;
use tenas_core::device;
use tenas_core::proxy::ntk::NtkMode;
use tenas_core::proxy::score::{Sampling, ScoreConfig, Scorer};
use tenas_core::space::SpaceNet;
use tenas_pipeline::{ParamError, StageContext};

use super::dataset::DatasetOutput;
use super::supernet::SupernetOutput;
use super::{check_range, input, read_json};
use crate::error::Result;

/// The score settings of a stage's params.
pub(crate) struct ScoreSettings {
    pub batch: usize,
    pub repeat: usize,
    pub ntk: NtkMode,
    pub sampling: Sampling,
    pub lr_samples: usize,
    pub lr_batches: usize,
    pub lr_crop: usize,
    pub augment: Option<Augmentation>,
}

impl ScoreSettings {
    /// The ranges every scoring stage allows.
    pub fn check(&self) -> std::result::Result<(), ParamError> {
        check_range("batch", self.batch, 2..)?;
        check_range("repeat", self.repeat, 1..)?;
        check_range("lr_samples", self.lr_samples, 1..)?;
        check_range("lr_batches", self.lr_batches, 1..)?;
        check_range("lr_crop", self.lr_crop, 1..=32)
    }
}

/// A scoring stage's inputs: the dataset's image pool and the supernet artifact's networks.
pub(crate) struct ScoringInputs {
    pub net: SupernetOutput,
    pub config: ScoreConfig,
    net_dir: PathBuf,
    pool: ImagePool,
}

impl ScoringInputs {
    /// Reads the `dataset` and `supernet` inputs of the stage.
    pub fn load(ctx: &StageContext<'_>, settings: &ScoreSettings) -> Result<Self> {
        let data_dir = input(ctx, "dataset")?;
        let data: DatasetOutput = read_json(&data_dir.join(DatasetOutput::FILE))?;
        let net_dir = input(ctx, "supernet")?;
        let net: SupernetOutput = read_json(&net_dir.join(SupernetOutput::FILE))?;
        let pool = ImagePool::load(&data_dir.join(DatasetOutput::POOL))?;
        let config = ScoreConfig {
            num_classes: data.num_classes,
            channels: net.channels,
            layers: net.layers,
            batch: settings.batch,
            repeat: settings.repeat,
            ntk: settings.ntk,
            init: net.init,
            sampling: settings.sampling,
            lr_samples: settings.lr_samples,
            lr_batches: settings.lr_batches,
            lr_crop: settings.lr_crop,
            augment: settings.augment,
        };
        Ok(ScoringInputs {
            net,
            config,
            net_dir: net_dir.to_path_buf(),
            pool,
        })
    }

    /// The dataset's image pool.
    pub fn pool(&self) -> &ImagePool {
        &self.pool
    }

    /// The scorer of the supernet's networks, built by `build` from their recorded configs,
    /// on the device the run's settings name (opened now, when the stage computes).
    pub fn scorer<N: SpaceNet, C: DeserializeOwned>(
        &self,
        ctx: &StageContext<'_>,
        build: impl Fn(C) -> N,
    ) -> Result<Scorer<'_, N>> {
        let device = device::for_settings(&ctx.settings().device)?;
        let dir: &Path = &self.net_dir;
        let (ntk, thin) = self.net.networks(dir, self.config.num_classes, build)?;
        let view = self.pool.view_for(self.config.augment);
        Ok(Scorer::new(self.config.clone(), ntk, thin, view, device))
    }
}
