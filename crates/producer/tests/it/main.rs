//! The producer's integration tests as one binary: the harness runs them two at a time
//! across files, and the workspace links one executable instead of seven.

mod support;

mod cli;
mod fleet;
mod follow;
mod kafka_it;
mod nvml;
mod replay_modes;
mod wire_schema;
