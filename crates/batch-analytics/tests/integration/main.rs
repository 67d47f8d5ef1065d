//! Integration tests of batch-analytics: one test binary (each DataFusion binary costs
//! a long link on the 2-core CI machines), one module per area.

mod convert;
mod daily;
mod fixture;
mod fleet;
mod maintain;
mod nightly;
mod real_logs;
mod render;
mod s3;
mod sql;
mod tables;
