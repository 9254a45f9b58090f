//! TE-NAS pruning: scoring candidates, the ranking rule and the round loop.
pub mod rounding;
pub mod rule;
pub mod score;
pub mod search;
