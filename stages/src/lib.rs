//! The stages of the tenas pipeline: each adapts a piece of the NAS core (`tenas-core`) to the
//! engine (`tenas-pipeline`): its params and key, the loading of its inputs, the cached units
//! and the tables it writes. Also `tenas compare` and `tenas parity`. See README.md.
pub mod compare;
pub mod error;
pub mod report;
pub mod session;
pub mod stage;
pub mod table;

pub use error::{Error, Result};
pub use stage::register_all;
