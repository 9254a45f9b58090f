//! SNIP (Lee et al., 2019, as AZ-NAS runs it): the connection sensitivity Σ |W ⊙ ∂L/∂W|
//! over the conv and linear weights, L the cross-entropy of one real labelled batch.
use super::cell_proxy::{sum_of, CellInput, CellProxy, InputKind};
use super::gradients::weight_gradients;
use crate::error::Result;
use crate::net::params::InitScheme;

pub struct Snip;

impl CellProxy for Snip {
    fn name(&self) -> &'static str {
        "snip"
    }

    /// 2: gradients through the CPU convolution's own backward (`net::conv`).
    fn version(&self) -> u32 {
        2
    }

    fn components(&self) -> &'static [&'static str] {
        &["snip"]
    }

    fn input(&self) -> InputKind {
        InputKind::LabelledImages
    }

    fn compute(&self, input: &CellInput) -> Result<Vec<f64>> {
        let weights = input.weights(InitScheme::KaimingFanIn)?;
        let batch = input.data_batch(self.name(), 0)?;
        let grads = weight_gradients(input.network, &weights, &batch.images, &batch.labels)?;
        let saliences = weights
            .layer_weights()
            .zip(&grads)
            .map(|(w, g)| Ok((w.as_tensor() * g)?.abs()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![sum_of(saliences)?])
    }
}
