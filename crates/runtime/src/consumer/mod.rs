//! One consumer runtime for every Kafka sink of the workspace.
//!
//! The loop is written once: consume, hand each record to a [`Sink`], seal a batch when
//! it is full (records, bytes) or old, make it durable with a [`Writer`] on a task of
//! its own while the next batch fills, and commit only what is durable — never past a
//! record that is not ([`OffsetTracker`]). Undecodable records go to the dead-letter
//! topic with the shared headers before their offsets can be committed. When the writer
//! falls behind, the runtime stops reading and then pauses its partitions while it keeps
//! polling (so it stays in its group). Rebalances drop what was not sealed (its
//! partitions restart from the committed offset), lag comes from librdkafka's
//! statistics, and shutdown writes what is held within a grace period, commits and
//! leaves the group.
//!
//! The stream processor (lake) and consumer-influx (InfluxDB) are both sinks on it.

mod config;
mod contract;
mod lag;
pub mod offsets;
mod runner;

pub use config::ConsumerConfig;
pub use contract::{DeadLetterSource, Record, Sink, Take, WriteContext, Writer};
pub use lag::LagFromStats;
pub use offsets::{OffsetTracker, TopicPartition};
pub use runner::{Finished, run};
