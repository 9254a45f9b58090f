//! Drawing score inputs from an image pool: NTK batches of whole images and linear-region
//! crops, normalised per channel as the reference's transforms do.
use candle_core::{Device, Tensor};
use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const IMAGE: usize = 3 * PLANE;

/// Images as stored by CIFAR (`n` records of 3 planes of 32x32 bytes) with the dataset's
/// normalisation.
pub struct PoolView<'a> {
    pub pixels: &'a [u8],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PoolView<'_> {
    pub fn len(&self) -> usize {
        self.pixels.len() / IMAGE
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn normalised(&self, image: usize, channel: usize, y: usize, x: usize) -> f32 {
        let byte = self.pixels[image * IMAGE + channel * PLANE + y * SIDE + x];
        (f32::from(byte) / 255.0 - self.mean[channel]) / self.std[channel]
    }

    /// `batch` distinct images, normalised, shape `(batch, 3, 32, 32)`.
    pub fn image_batch(&self, batch: usize, seed: u64, device: &Device) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = self.distinct(batch, &mut rng)?;
        let mut data = Vec::with_capacity(batch * IMAGE);
        for &i in &picks {
            for c in 0..3 {
                for y in 0..SIDE {
                    data.extend((0..SIDE).map(|x| self.normalised(i, c, y, x)));
                }
            }
        }
        Ok(Tensor::from_vec(data, (batch, 3, SIDE, SIDE), device)?)
    }

    /// `count` random `crop x crop` patches of one random channel of distinct images,
    /// normalised, shape `(count, 1, crop, crop)` (the reference's RandomCrop + RandChannel).
    pub fn crops(&self, count: usize, crop: usize, seed: u64, device: &Device) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = self.distinct(count, &mut rng)?;
        let mut data = Vec::with_capacity(count * crop * crop);
        for &i in &picks {
            let c = rng.random_range(0..3);
            let (oy, ox) = (
                rng.random_range(0..=SIDE - crop),
                rng.random_range(0..=SIDE - crop),
            );
            for y in 0..crop {
                data.extend((0..crop).map(|x| self.normalised(i, c, oy + y, ox + x)));
            }
        }
        Ok(Tensor::from_vec(data, (count, 1, crop, crop), device)?)
    }

    fn distinct(&self, count: usize, rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if count > self.len() {
            return Err(Error::Invalid(format!(
                "asked for {count} distinct images from a pool of {}",
                self.len()
            )));
        }
        Ok(index::sample(rng, self.len(), count).into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Vec<u8> {
        (0..n * IMAGE).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn batches_are_normalised_seeded_and_distinct() -> Result<()> {
        let pixels = pool(20);
        let view = PoolView {
            pixels: &pixels,
            mean: [0.5; 3],
            std: [0.25; 3],
        };
        let a = view.image_batch(8, 1, &Device::Cpu)?;
        assert_eq!(a.dims(), &[8, 3, 32, 32]);
        let b = view.image_batch(8, 1, &Device::Cpu)?;
        assert_eq!(
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?
        );
        let c = view.image_batch(8, 2, &Device::Cpu)?;
        assert_ne!(
            a.flatten_all()?.to_vec1::<f32>()?,
            c.flatten_all()?.to_vec1::<f32>()?
        );
        let first = a.flatten_all()?.to_vec1::<f32>()?[0];
        assert!((-2.0..=2.0).contains(&first));
        assert!(view.image_batch(21, 1, &Device::Cpu).is_err());
        Ok(())
    }

    #[test]
    fn crops_come_from_one_channel_window() -> Result<()> {
        let pixels = pool(10);
        let view = PoolView {
            pixels: &pixels,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let crops = view.crops(10, 3, 7, &Device::Cpu)?;
        assert_eq!(crops.dims(), &[10, 1, 3, 3]);
        // Neighbouring pixels in a row differ by one grey level modulo 251 in this pool.
        let v = crops.flatten_all()?.to_vec1::<f32>()?;
        for patch in v.chunks(9) {
            let step = ((patch[1] - patch[0]) * 255.0).round();
            assert!(step == 1.0 || step == -250.0, "{patch:?}");
        }
        Ok(())
    }
}
