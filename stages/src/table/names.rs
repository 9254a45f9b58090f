//! Every table a stage writes into a run's results, declared once: its name here, its columns
//! beside it. Writers and readers (`compare`, `parity`, the run report) use these, never string
//! literals; the engine lays the files out as `<run>/<table>/<partition>/part-<stage>.parquet`.

/// The prune stage's per-candidate, per-repeat scores and decisions: [`CANDIDATE_COLUMNS`]
/// (spaces with several cell types add [`MULTI_CELL_COLUMNS`] after `round`).
pub const CANDIDATES: &str = "candidates";
/// The prune stage's mask after each round: [`ROUND_COLUMNS`] (several cell types add `cell`
/// after `round`).
pub const ROUNDS: &str = "rounds";
/// The correlation stage's per-cell, per-repeat scores: `CellRecord`.
pub const CELLS: &str = "cells";
/// The correlation stage's τ and ρ per predictor and dataset: `CorrelationRecord`.
pub const CORRELATION: &str = "correlation";
/// One row per seed: `BenchResult` (bench stage) or `GenotypeResult` (genotype stage).
pub const RESULT: &str = "result";

pub const CANDIDATE_COLUMNS: &[&str] = &[
    "round",
    "edge",
    "op",
    "repeat",
    "seed",
    "kappa_orig",
    "kappa_pruned",
    "regions_orig",
    "regions_pruned",
    "regions_saturated",
    "delta_kappa",
    "delta_regions",
    "mean_delta_kappa",
    "mean_delta_regions",
    "rank_kappa",
    "rank_regions",
    "rank_sum",
    "pruned",
];

/// The columns a space with several cell types adds to [`CANDIDATES`], after `round`.
pub const MULTI_CELL_COLUMNS: &[&str] = &["phase", "cell"];

pub const ROUND_COLUMNS: &[&str] = &["round", "edge", "op", "active"];
