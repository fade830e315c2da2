//! The parts of the operator scale harness, one concept a file.

pub(crate) mod floor;
pub(crate) mod process;
pub(crate) mod tally;
pub(crate) mod unrelated;
