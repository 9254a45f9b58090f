//! Which NAS-Bench-201 cells a correlation study scores: a seeded sample, a slice of the same
//! seeded permutation (a sample disjoint from a smaller one), all of them, or a file of arch
//! strings.
use std::ops::Range;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use tenas_core::seeds;
use tenas_core::space::nb201_arch::{Arch, Op, NUM_EDGES, NUM_OPS};

/// Which cells to score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cells {
    /// The first `n` cells of a seeded permutation of the space.
    Sample(usize),
    /// `"all"` (the 15625 cells), `"a..b"` (cells a to b − 1 of the seeded permutation, so
    /// `"1000..2000"` is disjoint from the sample of 1000), or a file with one arch string a
    /// line.
    Named(String),
}

impl Cells {
    /// The file this spec names, if it names one.
    pub fn file(&self) -> Option<&str> {
        match self {
            Cells::Named(name) if name != "all" && parse_range(name).is_none() => Some(name),
            _ => None,
        }
    }
}

/// `"a..b"` with a and b decimal; `None` for anything else.
fn parse_range(text: &str) -> Option<Range<usize>> {
    let (a, b) = text.split_once("..")?;
    Some(a.trim().parse().ok()?..b.trim().parse().ok()?)
}

/// Cells in the space.
pub const SPACE_SIZE: usize = NUM_OPS.pow(NUM_EDGES as u32);

/// Every cell of the space, in the order of its base-5 code (edge 0 most significant).
fn all_cells() -> Vec<Arch> {
    (0..SPACE_SIZE)
        .map(|code| {
            let mut ops = [Op::None; NUM_EDGES];
            for (e, op) in ops.iter_mut().enumerate() {
                *op = Op::ALL[code / NUM_OPS.pow((NUM_EDGES - 1 - e) as u32) % NUM_OPS];
            }
            Arch::new(ops)
        })
        .collect()
}

/// Every cell of the space in the order of a permutation drawn from `seed`.
fn permutation(seed: u64) -> Vec<Arch> {
    let mut cells = all_cells();
    let mut rng = ChaCha8Rng::seed_from_u64(seeds::derive(seed, &[&"cells"]));
    cells.shuffle(&mut rng);
    cells
}

/// The cells `spec` names; a sample is the first `n` of a permutation drawn from `seed`, a
/// range a slice of it.
pub fn select_cells(spec: &Cells, seed: u64) -> Result<Vec<Arch>> {
    match spec {
        Cells::Sample(n) => {
            if !(1..=SPACE_SIZE).contains(n) {
                return Err(Error::invalid(format!(
                    "`cells` must be between 1 and {SPACE_SIZE}, got {n}"
                )));
            }
            Ok(permutation(seed)[..*n].to_vec())
        }
        Cells::Named(name) if name == "all" => Ok(all_cells()),
        Cells::Named(name) => match parse_range(name) {
            Some(range) if range.start < range.end && range.end <= SPACE_SIZE => {
                Ok(permutation(seed)[range].to_vec())
            }
            Some(_) => Err(Error::invalid(format!(
                "`cells = \"{name}\"` must be a range a..b with a < b ≤ {SPACE_SIZE}"
            ))),
            None => read_cell_file(Path::new(name)),
        },
    }
}

fn read_cell_file(path: &Path) -> Result<Vec<Arch>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the cell list {}", path.display()), e))?;
    let cells = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            Arch::parse(l.trim()).map_err(|e| Error::data(path, format!("line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    if cells.is_empty() {
        return Err(Error::data(path, "lists no cells"));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_prefixes_of_one_permutation() -> Result<()> {
        let small = select_cells(&Cells::Sample(10), 4)?;
        let large = select_cells(&Cells::Sample(20), 4)?;
        assert_eq!(small[..], large[..10]);
        assert_ne!(small, select_cells(&Cells::Sample(10), 5)?);
        let all = select_cells(&Cells::Named("all".into()), 0)?;
        let distinct: std::collections::HashSet<String> =
            all.iter().map(|a| a.to_string()).collect();
        assert_eq!(distinct.len(), 15625);
        assert!(select_cells(&Cells::Sample(0), 0).is_err());
        let err = select_cells(&Cells::Sample(15626), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 1 and 15625, got 15626"), "{err}");
        Ok(())
    }

    #[test]
    fn a_range_is_a_slice_of_the_same_permutation() -> Result<()> {
        let named = |s: &str| Cells::Named(s.into());
        let first = select_cells(&Cells::Sample(30), 7)?;
        let next = select_cells(&named("10..30"), 7)?;
        assert_eq!(next[..], first[10..]);
        assert_eq!(named("10..30").file(), None);
        assert_eq!(named("all").file(), None);
        assert_eq!(named("cells.txt").file(), Some("cells.txt"));
        for bad in ["30..10", "5..5", "0..15626"] {
            let err = select_cells(&named(bad), 7).unwrap_err().to_string();
            assert!(err.contains("a < b ≤ 15625"), "{bad}: {err}");
        }
        Ok(())
    }

    #[test]
    fn cell_files_skip_comments_and_name_the_bad_line() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = dir.path().join("cells.txt");
        let arch =
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|";
        std::fs::write(&good, format!("# two cells\n{arch}\n\n{arch}\n")).expect("write");
        let cells = select_cells(&Cells::Named(good.display().to_string()), 0)?;
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].to_string(), arch);
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, format!("{arch}\n|conv_9x9~0|\n")).expect("write");
        let err = select_cells(&Cells::Named(bad.display().to_string()), 0)
            .expect_err("a bad line")
            .to_string();
        assert!(err.contains("bad.txt") && err.contains("line 2"), "{err}");
        Ok(())
    }
}
