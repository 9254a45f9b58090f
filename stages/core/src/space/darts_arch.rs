//! The DARTS (NASNet-style) cell: eight candidate ops on the 14 edges of a cell with two
//! input nodes and four step nodes, separate normal and reduction cells, and the genotype that
//! the DARTS evaluation code trains from scratch.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::SpaceMask;
use crate::error::{Error, Result};

/// The DARTS ops in the reference's order (the index is the op id everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    None,
    SkipConnect,
    SepConv3x3,
    SepConv5x5,
    DilConv3x3,
    DilConv5x5,
    AvgPool3x3,
    MaxPool3x3,
}

pub const NUM_OPS: usize = 8;
/// Step nodes per cell; each takes two inputs in the final genotype.
pub const STEPS: usize = 4;
pub const NUM_EDGES: usize = 14;
/// Inputs each step node keeps in the final cell.
pub const INPUTS_PER_NODE: usize = 2;

impl Op {
    pub const ALL: [Op; NUM_OPS] = [
        Op::None,
        Op::SkipConnect,
        Op::SepConv3x3,
        Op::SepConv5x5,
        Op::DilConv3x3,
        Op::DilConv5x5,
        Op::AvgPool3x3,
        Op::MaxPool3x3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::SepConv3x3 => "sep_conv_3x3",
            Op::SepConv5x5 => "sep_conv_5x5",
            Op::DilConv3x3 => "dil_conv_3x3",
            Op::DilConv5x5 => "dil_conv_5x5",
            Op::AvgPool3x3 => "avg_pool_3x3",
            Op::MaxPool3x3 => "max_pool_3x3",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Result<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown DARTS op {name:?} (expected one of: {})",
                    Op::ALL.map(Op::name).join(", ")
                ))
            })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Edges as `(step, from)`: step node `step` (cell node `step + 2`) reads node `from`, in the
/// reference's sorted `"step<-from"` order.
pub fn edges() -> impl Iterator<Item = (usize, usize)> {
    (0..STEPS).flat_map(|step| (0..step + 2).map(move |from| (step, from)))
}

/// `[start, end)` of each step node's incoming edges (the edge-group phase's groups).
pub fn edge_groups() -> Vec<(usize, usize)> {
    let mut start = 0;
    (0..STEPS)
        .map(|step| {
            let group = (start, start + step + 2);
            start = group.1;
            group
        })
        .collect()
}

/// The two cell types; each has its own ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellType {
    Normal,
    Reduce,
}

impl CellType {
    pub const ALL: [CellType; 2] = [CellType::Normal, CellType::Reduce];

    pub fn name(self) -> &'static str {
        match self {
            CellType::Normal => "normal",
            CellType::Reduce => "reduce",
        }
    }
}

/// Which ops are active: `ops[cell type][edge][op]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsMask {
    pub ops: [[[bool; NUM_OPS]; NUM_EDGES]; 2],
}

impl DartsMask {
    /// The supernet TE-NAS starts from: every op but `none` on every edge of both cells.
    pub fn initial() -> Self {
        let mut row = [true; NUM_OPS];
        row[Op::None.index()] = false;
        DartsMask {
            ops: [[row; NUM_EDGES]; 2],
        }
    }

    pub fn cell(&self, cell: CellType) -> &[[bool; NUM_OPS]; NUM_EDGES] {
        &self.ops[cell as usize]
    }
}

impl SpaceMask for DartsMask {
    const CELLS: usize = 2;
    const EDGES: usize = NUM_EDGES;
    const OPS: usize = NUM_OPS;

    fn is_active(&self, cell: usize, edge: usize, op: usize) -> bool {
        self.ops[cell][edge][op]
    }

    fn set_active(&mut self, cell: usize, edge: usize, op: usize, active: bool) {
        self.ops[cell][edge][op] = active;
    }

    fn op_name(op: usize) -> &'static str {
        Op::ALL[op].name()
    }

    fn cell_name(cell: usize) -> &'static str {
        CellType::ALL[cell].name()
    }
}

/// A final cell pair as the DARTS code writes it: per cell, `(op, input node)` for the two
/// inputs of each step node in turn; every cell concatenates step nodes 2..=5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    pub normal: Vec<(String, usize)>,
    pub normal_concat: Vec<usize>,
    pub reduce: Vec<(String, usize)>,
    pub reduce_concat: Vec<usize>,
}

impl Genotype {
    /// The genotype of a mask that has finished both pruning phases: every step node has
    /// exactly two input edges, each with exactly one op (never `none`).
    pub fn from_mask(mask: &DartsMask) -> Result<Genotype> {
        let concat: Vec<usize> = (2..2 + STEPS).collect();
        Ok(Genotype {
            normal: cell_gene(mask, CellType::Normal)?,
            normal_concat: concat.clone(),
            reduce: cell_gene(mask, CellType::Reduce)?,
            reduce_concat: concat,
        })
    }
}

fn cell_gene(mask: &DartsMask, cell: CellType) -> Result<Vec<(String, usize)>> {
    let rows = mask.cell(cell);
    let mut gene = Vec::new();
    for (step, (start, end)) in edge_groups().into_iter().enumerate() {
        let mut inputs = Vec::new();
        for (from, row) in rows[start..end].iter().enumerate() {
            let active: Vec<usize> = (0..NUM_OPS).filter(|&o| row[o]).collect();
            match active.as_slice() {
                [] => {}
                [op] if *op != Op::None.index() => {
                    inputs.push((Op::ALL[*op].name().to_string(), from))
                }
                _ => {
                    return Err(Error::Invalid(format!(
                    "{} cell edge {}<-{from} has ops {:?}; a genotype needs one op per kept edge",
                    cell.name(),
                    step + 2,
                    active
                        .iter()
                        .map(|&o| Op::ALL[o].name())
                        .collect::<Vec<_>>()
                )))
                }
            }
        }
        if inputs.len() != INPUTS_PER_NODE {
            return Err(Error::Invalid(format!(
                "{} cell node {} keeps {} input edges; a genotype needs {INPUTS_PER_NODE}",
                cell.name(),
                step + 2,
                inputs.len()
            )));
        }
        gene.extend(inputs);
    }
    Ok(gene)
}

/// The text the DARTS evaluation code takes as is (`genotypes.py`), in Python's list syntax.
impl fmt::Display for Genotype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gene = |g: &[(String, usize)]| {
            let items: Vec<String> = g.iter().map(|(op, i)| format!("('{op}', {i})")).collect();
            format!("[{}]", items.join(", "))
        };
        let list = |c: &[usize]| {
            let items: Vec<String> = c.iter().map(usize::to_string).collect();
            format!("[{}]", items.join(", "))
        };
        write!(
            f,
            "Genotype(normal={}, normal_concat={}, reduce={}, reduce_concat={})",
            gene(&self.normal),
            list(&self.normal_concat),
            gene(&self.reduce),
            list(&self.reduce_concat)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_follow_the_reference_order_and_groups() {
        let all: Vec<(usize, usize)> = edges().collect();
        assert_eq!(all.len(), NUM_EDGES);
        assert_eq!(&all[..5], &[(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]);
        assert_eq!(all[13], (3, 4));
        assert_eq!(edge_groups(), vec![(0, 2), (2, 5), (5, 9), (9, 14)]);
        assert_eq!(Op::from_name("dil_conv_5x5").unwrap(), Op::DilConv5x5);
        assert!(Op::from_name("nor_conv_3x3").is_err());
    }

    fn two_inputs_per_node() -> DartsMask {
        let mut mask = DartsMask {
            ops: [[[false; NUM_OPS]; NUM_EDGES]; 2],
        };
        for (cell, op) in [(0, Op::SepConv3x3), (1, Op::MaxPool3x3)] {
            for (start, _) in edge_groups() {
                mask.ops[cell][start][op.index()] = true;
                mask.ops[cell][start + 1][Op::SkipConnect.index()] = true;
            }
        }
        mask
    }

    #[test]
    fn genotype_text_is_what_darts_reads() {
        let g = Genotype::from_mask(&two_inputs_per_node()).unwrap();
        let text = g.to_string();
        assert!(text.starts_with(
            "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), "
        ));
        assert!(text
            .ends_with("('max_pool_3x3', 0), ('skip_connect', 1)], reduce_concat=[2, 3, 4, 5])"));
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Genotype>(&json).unwrap(), g);
    }

    #[test]
    fn unfinished_masks_have_no_genotype() {
        let err = Genotype::from_mask(&DartsMask::initial()).unwrap_err();
        assert!(err.to_string().contains("one op per kept edge"), "{err}");
        let mut mask = two_inputs_per_node();
        mask.ops[1][13][Op::AvgPool3x3.index()] = true;
        let err = Genotype::from_mask(&mask).unwrap_err();
        assert!(
            err.to_string().contains("reduce cell node 5 keeps 3"),
            "{err}"
        );
    }
}
