//! Drawing score inputs from an image pool: NTK batches of whole images (augmented where the
//! dataset asks for it) and linear-region crops, normalised per channel as the reference's
//! transforms do.
use candle_core::{Device, Tensor};
use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The reference's training transform of an NTK batch image: a horizontal flip with
/// probability 1/2, then a random crop of the original size from the image zero-padded by
/// `pad` on every side (`RandomHorizontalFlip`, `RandomCrop(side, padding=pad)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augment {
    pub pad: usize,
}

/// Images stored as `n` records of 3 planes of `side × side` bytes, with the dataset's
/// normalisation and NTK-batch augmentation.
pub struct PoolView<'a> {
    pub pixels: &'a [u8],
    pub side: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub augment: Option<Augment>,
}

/// Where one batch image's pixels come from: flipped or not, and the crop's offset in the
/// padded image.
#[derive(Clone, Copy)]
struct Placement {
    flip: bool,
    dy: usize,
    dx: usize,
    pad: usize,
}

impl PoolView<'_> {
    fn image_len(&self) -> usize {
        3 * self.side * self.side
    }

    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn normalise(&self, byte: u8, channel: usize) -> f32 {
        (f32::from(byte) / 255.0 - self.mean[channel]) / self.std[channel]
    }

    fn normalised(&self, image: usize, channel: usize, y: usize, x: usize) -> f32 {
        let side = self.side;
        let byte = self.pixels[image * self.image_len() + channel * side * side + y * side + x];
        self.normalise(byte, channel)
    }

    /// Pixel `(y, x)` of the placed image; the padding is black, as PIL pads.
    fn placed(&self, image: usize, channel: usize, y: usize, x: usize, at: Placement) -> f32 {
        let inside = |v: usize| v.checked_sub(at.pad).filter(|&v| v < self.side);
        match (inside(y + at.dy), inside(x + at.dx)) {
            (Some(sy), Some(sx)) => {
                let sx = if at.flip { self.side - 1 - sx } else { sx };
                self.normalised(image, channel, sy, sx)
            }
            _ => self.normalise(0, channel),
        }
    }

    /// `batch` distinct images, normalised and augmented as the dataset asks, shape
    /// `(batch, 3, side, side)`.
    pub fn image_batch(&self, batch: usize, seed: u64, device: &Device) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = self.distinct(batch, &mut rng)?;
        let side = self.side;
        let mut data = Vec::with_capacity(batch * self.image_len());
        for &i in &picks {
            let at = match self.augment {
                Some(Augment { pad }) => Placement {
                    flip: rng.random_bool(0.5),
                    dy: rng.random_range(0..=2 * pad),
                    dx: rng.random_range(0..=2 * pad),
                    pad,
                },
                None => Placement {
                    flip: false,
                    dy: 0,
                    dx: 0,
                    pad: 0,
                },
            };
            for c in 0..3 {
                for y in 0..side {
                    data.extend((0..side).map(|x| self.placed(i, c, y, x, at)));
                }
            }
        }
        Ok(Tensor::from_vec(data, (batch, 3, side, side), device)?)
    }

    /// `count` random `crop x crop` patches of one random channel of distinct images,
    /// normalised, shape `(count, 1, crop, crop)` (the reference's RandomCrop + RandChannel).
    pub fn crops(&self, count: usize, crop: usize, seed: u64, device: &Device) -> Result<Tensor> {
        if crop > self.side {
            return Err(Error::Invalid(format!(
                "linear-region crops of {crop}x{crop} do not fit the pool's {0}x{0} images",
                self.side
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks = self.distinct(count, &mut rng)?;
        let mut data = Vec::with_capacity(count * crop * crop);
        for &i in &picks {
            let c = rng.random_range(0..3);
            let (oy, ox) = (
                rng.random_range(0..=self.side - crop),
                rng.random_range(0..=self.side - crop),
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

/// How NTK batch images are augmented (a hashed choice: the published code augments CIFAR too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// The published code's training transform: a horizontal flip and a random crop of the
    /// image zero-padded by 4 (CIFAR) or 2 (ImageNet16).
    Reference,
    /// The images as stored.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Vec<u8> {
        (0..n * 3072).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn batches_are_normalised_seeded_and_distinct() -> Result<()> {
        let pixels = pool(20);
        let view = PoolView {
            pixels: &pixels,
            side: 32,
            mean: [0.5; 3],
            std: [0.25; 3],
            augment: None,
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
            side: 32,
            mean: [0.0; 3],
            std: [1.0; 3],
            augment: None,
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

    /// `n` copies of an image of side `side` whose pixel number `p` (in CHW order) is
    /// `1 + p % 250`: never zero, so the padding shows.
    fn numbered(n: usize, side: usize) -> Vec<u8> {
        let one: Vec<u8> = (0..3 * side * side).map(|p| (1 + p % 250) as u8).collect();
        one.repeat(n)
    }

    /// The reference transform written out plainly: flip, zero-pad, crop at `(dy, dx)`.
    fn transformed(
        image: &[u8],
        side: usize,
        flip: bool,
        pad: usize,
        dy: usize,
        dx: usize,
    ) -> Vec<u8> {
        let wide = side + 2 * pad;
        let mut padded = vec![0u8; 3 * wide * wide];
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let sx = if flip { side - 1 - x } else { x };
                    padded[c * wide * wide + (y + pad) * wide + x + pad] =
                        image[c * side * side + y * side + sx];
                }
            }
        }
        let mut out = Vec::new();
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    out.push(padded[c * wide * wide + (y + dy) * wide + x + dx]);
                }
            }
        }
        out
    }

    /// The placements `(flip, dy, dx)` under which `image` becomes `batch_image`.
    fn placements(
        image: &[u8],
        batch_image: &[u8],
        side: usize,
        pad: usize,
    ) -> Vec<(bool, usize, usize)> {
        let mut found = Vec::new();
        for flip in [false, true] {
            for dy in 0..=2 * pad {
                for dx in 0..=2 * pad {
                    if transformed(image, side, flip, pad, dy, dx) == batch_image {
                        found.push((flip, dy, dx));
                    }
                }
            }
        }
        found
    }

    /// The batch as bytes again (mean 0, std 1/255 make the normalised value the byte).
    fn batch_bytes(view: &PoolView<'_>, batch: usize, seed: u64) -> Result<Vec<u8>> {
        let t = view.image_batch(batch, seed, &Device::Cpu)?;
        assert_eq!(t.dims(), &[batch, 3, view.side, view.side]);
        Ok(t.flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .map(|v| v.round() as u8)
            .collect())
    }

    #[test]
    fn augmented_batches_are_flipped_and_cropped_from_the_padded_image() -> Result<()> {
        let side = 4;
        let pixels = numbered(60, side);
        let image = &pixels[..3 * side * side];
        let mut view = PoolView {
            pixels: &pixels,
            side,
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
            augment: Some(Augment { pad: 2 }),
        };
        let mut seen = std::collections::BTreeSet::new();
        for out in batch_bytes(&view, 60, 3)?.chunks(3 * side * side) {
            let found = placements(image, out, side, 2);
            assert_eq!(found.len(), 1, "{out:?}");
            seen.insert(found[0]);
        }
        // 50 placements exist; 60 draws see both flips and many offsets.
        assert!(
            seen.iter().any(|p| p.0) && seen.iter().any(|p| !p.0),
            "{seen:?}"
        );
        assert!(seen.len() >= 20, "{seen:?}");

        view.augment = None;
        for out in batch_bytes(&view, 10, 3)?.chunks(3 * side * side) {
            assert_eq!(out, image);
        }
        Ok(())
    }

    #[test]
    fn sixteen_pixel_pools_give_sixteen_pixel_batches_and_crops() -> Result<()> {
        let pixels = numbered(8, 16);
        let view = PoolView {
            pixels: &pixels,
            side: 16,
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
            augment: Some(Augment { pad: 2 }),
        };
        assert_eq!(view.len(), 8);
        let image = &pixels[..768];
        for out in batch_bytes(&view, 8, 1)?.chunks(768) {
            assert_eq!(placements(image, out, 16, 2).len(), 1);
        }
        let crops = view.crops(8, 3, 2, &Device::Cpu)?;
        assert_eq!(crops.dims(), &[8, 1, 3, 3]);
        let err = view.crops(8, 17, 2, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("17x17") && err.contains("16x16"), "{err}");
        Ok(())
    }
}
