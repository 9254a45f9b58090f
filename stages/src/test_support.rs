//! Helpers shared by tests.
use std::path::PathBuf;

/// The real data root: `TENAS_DATA`, else `../shared/data` beside the checkout.
pub fn test_data_root() -> PathBuf {
    std::env::var_os("TENAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}
