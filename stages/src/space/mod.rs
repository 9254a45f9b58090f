//! Search spaces.
pub mod nb201_arch;
pub mod nb201_net;
