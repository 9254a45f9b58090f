//! TE-NAS pruning: the ranking rule and the round loop, over any scorer of candidates.
pub mod rounding;
pub mod rule;
pub mod search;
