//! Scoring one network of a pruning round: NTK condition number on the supernet and the
//! linear-region count on the thin net, with every random draw derived from the seed.
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::data::sample::{Augmentation, PoolView};
use crate::error::Result;
use crate::net::params::InitMode;
use crate::net::tape::Tape;
use crate::proxy::ntk::{ntk_condition, NtkMode};
use crate::proxy::regions::{PatternSet, RegionCount};
use crate::seeds;
use crate::space::SpaceNet;

/// Which networks share random draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Common random numbers: in a round, repeat r uses the same weights, NTK batch and crops
    /// for the un-pruned supernet and every candidate, so the un-pruned scores are computed once
    /// per repeat and every candidate is compared on equal terms.
    Shared,
    /// The published code's draws: every (candidate, repeat) draws its own NTK batch and
    /// crops, thin nets are drawn per candidate, and the un-pruned supernet is re-scored
    /// alongside each candidate.
    PerCandidate,
}

/// Everything that decides a score besides the network mask and the draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreConfig {
    pub num_classes: usize,
    pub channels: usize,
    pub layers: usize,
    pub batch: usize,
    pub repeat: usize,
    pub ntk: NtkMode,
    pub init: InitMode,
    pub sampling: Sampling,
    pub lr_samples: usize,
    pub lr_batches: usize,
    pub lr_crop: usize,
    /// Unset: the dataset's default (ImageNet16 augmented as the reference, the others as
    /// stored), and keys as before the choice existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augmentation>,
}

/// The seeds of one evaluation's random draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub ntk_weights: u64,
    pub ntk_batch: u64,
    pub thin_weights: u64,
    pub crops: u64,
}

/// One evaluation of one network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub kappa: f64,
    pub regions: RegionCount,
}

impl ScoreConfig {
    /// The draws of repeat `repeat` in round `round`; `candidate` names the candidate under
    /// per-candidate sampling and is ignored under shared sampling.
    pub fn draw(&self, seed: u64, round: usize, repeat: usize, candidate: &str) -> Draw {
        let who = match self.sampling {
            Sampling::Shared => "shared",
            Sampling::PerCandidate => candidate,
        };
        // Reference init keeps weights across repeats; Kaiming re-draws them each repeat.
        let weights_repeat = match self.init {
            InitMode::Reference => "all".to_string(),
            InitMode::Kaiming => repeat.to_string(),
        };
        let ntk_who = match (self.init, self.sampling) {
            // The published code draws the NTK supernet once per round for all candidates.
            (InitMode::Reference, _) => "shared",
            _ => who,
        };
        Draw {
            ntk_weights: seeds::derive(seed, &[&"ntk-weights", &round, &ntk_who, &weights_repeat]),
            ntk_batch: seeds::derive(seed, &[&"ntk-batch", &round, &who, &repeat]),
            thin_weights: seeds::derive(seed, &[&"thin-weights", &round, &who, &weights_repeat]),
            crops: seeds::derive(seed, &[&"crops", &round, &who, &repeat]),
        }
    }
}

/// Scores networks of one search space on one image pool.
pub struct Scorer<'a, N: SpaceNet> {
    config: ScoreConfig,
    pool: PoolView<'a>,
    ntk_net: N,
    thin_net: N,
    device: Device,
    /// Jacobian rows per backward pass (memory bound).
    chunk: usize,
}

impl<'a, N: SpaceNet> Scorer<'a, N> {
    /// Scores the NTK on `ntk_net` and linear regions on `thin_net`.
    pub fn new(
        config: ScoreConfig,
        ntk_net: N,
        thin_net: N,
        pool: PoolView<'a>,
        device: Device,
    ) -> Self {
        // The CPU backward holds one row at a time, so all rows go in one call (the forward
        // data is converted once); the stacked backward on other devices holds a whole chunk.
        let chunk = if device.is_cpu() {
            config.batch.max(1)
        } else {
            config.batch.clamp(1, 24)
        };
        Scorer {
            config,
            pool,
            ntk_net,
            thin_net,
            device,
            chunk,
        }
    }

    pub fn config(&self) -> &ScoreConfig {
        &self.config
    }

    /// NTK condition number and region count of the network with the ops of `mask`.
    pub fn score(&self, mask: &N::Mask, draw: &Draw) -> Result<Score> {
        Ok(Score {
            kappa: self.kappa(mask, draw)?,
            regions: self.regions(mask, draw)?,
        })
    }

    pub fn kappa(&self, mask: &N::Mask, draw: &Draw) -> Result<f64> {
        let (scheme, _) = self.config.init.schemes();
        let params = self
            .ntk_net
            .specs()
            .init(scheme, draw.ntk_weights, &self.device)?;
        let images = self
            .pool
            .image_batch(self.config.batch, draw.ntk_batch, &self.device)?;
        let mut tape = Tape::new(&params);
        let logits = self.ntk_net.forward(&mut tape, images, mask)?;
        ntk_condition(&tape, logits, self.config.ntk, self.chunk)
    }

    pub fn regions(&self, mask: &N::Mask, draw: &Draw) -> Result<RegionCount> {
        let (_, scheme) = self.config.init.schemes();
        let params = self
            .thin_net
            .specs()
            .init(scheme, draw.thin_weights, &self.device)?;
        let mut patterns = PatternSet::default();
        for b in 0..self.config.lr_batches {
            let crops_seed = seeds::derive(draw.crops, &[&b]);
            let crops = self.pool.crops(
                self.config.lr_samples,
                self.config.lr_crop,
                crops_seed,
                &self.device,
            )?;
            let mut tape = Tape::new(&params);
            self.thin_net.forward(&mut tape, crops, mask)?;
            patterns.add_batch(&tape)?;
        }
        Ok(patterns.count())
    }
}
