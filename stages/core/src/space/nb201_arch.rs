//! The NAS-Bench-201 cell: five candidate ops on the six edges of a 4-node DAG, and the
//! benchmark's arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
use std::fmt;

use super::SpaceMask;
use crate::error::{Error, Result};

/// The NAS-Bench-201 ops, in the benchmark's order (the index is the op id everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    None,
    SkipConnect,
    NorConv1x1,
    NorConv3x3,
    AvgPool3x3,
}

impl Op {
    pub const ALL: [Op; 5] = [
        Op::None,
        Op::SkipConnect,
        Op::NorConv1x1,
        Op::NorConv3x3,
        Op::AvgPool3x3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    pub fn from_name(name: &str) -> Result<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown NAS-Bench-201 op {name:?} (expected one of: {})",
                    Op::ALL.map(Op::name).join(", ")
                ))
            })
    }

    /// Position in [`Op::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> Result<Op> {
        Op::ALL.get(index).copied().ok_or_else(|| {
            Error::Invalid(format!(
                "NAS-Bench-201 op index {index} is out of range 0..5"
            ))
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Edges as `(to, from)`, in the sorted `"to<-from"` order the reference uses for alphas.
pub const NUM_OPS: usize = 5;
pub const NUM_EDGES: usize = 6;

pub const EDGES: [(usize, usize); NUM_EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Number of cell nodes (node 0 is the input).
pub const NUM_NODES: usize = 4;

/// One NAS-Bench-201 cell: `ops[e]` sits on `EDGES[e]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    pub ops: [Op; 6],
}

impl Arch {
    pub fn new(ops: [Op; 6]) -> Arch {
        Arch { ops }
    }

    /// Parses `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`; errors say which part is wrong.
    pub fn parse(text: &str) -> Result<Arch> {
        let nodes: Vec<&str> = text.split('+').collect();
        if nodes.len() != NUM_NODES - 1 {
            return Err(syntax_error(
                text,
                &format!(
                    "expected {} node groups separated by '+', found {}",
                    NUM_NODES - 1,
                    nodes.len()
                ),
            ));
        }
        let mut ops = Vec::with_capacity(EDGES.len());
        for (node_offset, group) in nodes.iter().enumerate() {
            let to = node_offset + 1;
            for (from, token) in parse_node_group(text, group, to)?.into_iter().enumerate() {
                ops.push(parse_edge_token(text, token, to, from)?);
            }
        }
        let ops: [Op; 6] = ops
            .try_into()
            .expect("3 groups of 1, 2, 3 edges make 6 ops");
        Ok(Arch { ops })
    }

    /// The op on edge `to <- from`, if that edge exists.
    pub fn op_on(&self, to: usize, from: usize) -> Option<Op> {
        EDGES
            .iter()
            .position(|&e| e == (to, from))
            .map(|i| self.ops[i])
    }

    /// Op indices in edge order (the form the benchmark tables and alphas use).
    pub fn op_indices(&self) -> [usize; 6] {
        self.ops.map(Op::index)
    }

    /// Every cell of the space (5^6 = 15625), edge 0 varying slowest.
    pub fn all() -> impl Iterator<Item = Arch> {
        (0..5usize.pow(6)).map(|mut code| {
            let mut ops = [Op::None; 6];
            for slot in ops.iter_mut().rev() {
                *slot = Op::ALL[code % 5];
                code /= 5;
            }
            Arch { ops }
        })
    }
}

/// Splits `|a~0|b~1|` into its tokens, checking the bars and the count for node `to`.
fn parse_node_group<'a>(text: &str, group: &'a str, to: usize) -> Result<Vec<&'a str>> {
    let inner = group
        .strip_prefix('|')
        .and_then(|g| g.strip_suffix('|'))
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            syntax_error(
                text,
                &format!("node {to} group {group:?} must look like |op~j|...|"),
            )
        })?;
    let tokens: Vec<&str> = inner.split('|').collect();
    if tokens.len() != to {
        return Err(syntax_error(
            text,
            &format!(
                "node {to} needs {to} incoming edges, group {group:?} has {}",
                tokens.len()
            ),
        ));
    }
    Ok(tokens)
}

fn parse_edge_token(text: &str, token: &str, to: usize, from: usize) -> Result<Op> {
    let (name, input) = token
        .split_once('~')
        .ok_or_else(|| syntax_error(text, &format!("edge token {token:?} must be op~input")))?;
    if input != from.to_string() {
        return Err(syntax_error(
            text,
            &format!("edge token {token:?} of node {to} must read from node {from}, not {input:?}"),
        ));
    }
    Op::from_name(name).map_err(|e| syntax_error(text, &e.to_string()))
}

fn syntax_error(text: &str, what: &str) -> Error {
    Error::Invalid(format!("bad NAS-Bench-201 arch string {text:?}: {what}"))
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..NUM_NODES {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..to {
                let op = self.op_on(to, from).expect("every to>from edge exists");
                write!(f, "{op}~{from}|")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        Arch::parse(s)
    }
}

/// Which ops are still active on each edge (`mask[edge][op]`, op order of [`Op`]).
pub type Mask = [[bool; NUM_OPS]; NUM_EDGES];

impl SpaceMask for Mask {
    const CELLS: usize = 1;
    const EDGES: usize = NUM_EDGES;
    const OPS: usize = NUM_OPS;

    fn is_active(&self, _cell: usize, edge: usize, op: usize) -> bool {
        self[edge][op]
    }

    fn set_active(&mut self, _cell: usize, edge: usize, op: usize, active: bool) {
        self[edge][op] = active;
    }

    fn op_name(op: usize) -> &'static str {
        Op::ALL[op].name()
    }

    fn cell_name(_cell: usize) -> &'static str {
        "cell"
    }
}

/// The supernet mask TE-NAS starts from: every op but `none` on every edge.
pub fn initial_mask() -> Mask {
    let mut row = [true; NUM_OPS];
    row[Op::None.index()] = false;
    [row; NUM_EDGES]
}

/// The mask of one cell's single-path network: only its op on each edge.
pub fn single_path_mask(arch: &Arch) -> Mask {
    let mut mask = [[false; NUM_OPS]; NUM_EDGES];
    for (row, op) in mask.iter_mut().zip(arch.ops) {
        row[op.index()] = true;
    }
    mask
}

/// The NAS-Bench-201 cell of a single-path mask.
pub fn arch_of(mask: &Mask) -> Result<Arch> {
    let mut ops = [Op::None; NUM_EDGES];
    for (edge, row) in mask.iter().enumerate() {
        let active: Vec<usize> = (0..row.len()).filter(|&o| row[o]).collect();
        match active.as_slice() {
            [op] => ops[edge] = Op::ALL[*op],
            _ => {
                return Err(Error::Invalid(format!(
                    "edge {edge} has {} active ops, not one",
                    active.len()
                )))
            }
        }
    }
    Ok(Arch { ops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::test_data_root;

    const BEST_C10: &str =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

    #[test]
    fn parses_ops_onto_edges_in_order() {
        let arch = Arch::parse(BEST_C10).unwrap();
        let [n3, n1, s] = [Op::NorConv3x3, Op::NorConv1x1, Op::SkipConnect];
        assert_eq!(arch.ops, [n3, n3, n3, s, n3, n1]);
        assert_eq!(arch.op_on(3, 2), Some(Op::NorConv1x1));
        assert_eq!(arch.op_on(3, 0), Some(Op::SkipConnect));
        assert_eq!(arch.op_on(0, 3), None);
        assert_eq!(arch.op_indices(), [3, 3, 3, 1, 3, 2]);
        assert_eq!(arch.to_string(), BEST_C10);
    }

    #[test]
    fn op_names_and_indices_follow_the_benchmark_order() {
        let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "none",
                "skip_connect",
                "nor_conv_1x1",
                "nor_conv_3x3",
                "avg_pool_3x3"
            ]
        );
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Op::from_index(i).unwrap(), op);
            assert_eq!(Op::from_name(op.name()).unwrap(), op);
        }
        assert!(Op::from_index(5).is_err());
        let err = Op::from_name("sep_conv_3x3").unwrap_err().to_string();
        assert!(err.contains("sep_conv_3x3"), "{err}");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            ("|nor_conv_3x3~0|+|none~0|none~1|", "3 node groups"),
            (
                "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "\"conv\"",
            ),
            (
                "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                "must read from node 0",
            ),
            ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2"),
            (
                "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "must look like",
            ),
            ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "op~input"),
            ("", "3 node groups"),
        ];
        for (text, needle) in cases {
            let err = Arch::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn all_generated_archs_round_trip_and_are_distinct() {
        let archs: Vec<Arch> = Arch::all().collect();
        assert_eq!(archs.len(), 15625);
        let unique: std::collections::HashSet<_> = archs.iter().collect();
        assert_eq!(unique.len(), 15625);
        for arch in &archs {
            assert_eq!(&Arch::parse(&arch.to_string()).unwrap(), arch);
        }
    }

    #[test]
    fn round_trips_every_arch_of_the_real_table() {
        let path = test_data_root().join("nb201/nb201_accuracy.csv");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().skip(1) {
            let arch_text = line.split(',').nth(1).expect("arch column");
            let arch = Arch::parse(arch_text).unwrap();
            assert_eq!(arch.to_string(), arch_text);
            seen.insert(arch);
        }
        assert_eq!(seen.len(), 15625);
    }
}
