//! The Dafka consumer: reads topics from every partition, in order, once.
//!
//! A [`Consumer`] subscribes to topics and hands the application each
//! partition's records in offset order, with no gap and no duplicate,
//! whether they arrived live from the producer or were fetched from a store
//! or the producer to repair a gap. Positions are the consumer's own; where a
//! new partition starts is `consumer.offset_reset`.
//!
//! [`ConsumerCore`] is the logic, a `dafka_protocol::Machine` with no
//! socket; [`Consumer`] runs it on a driver thread.

mod commits;
mod config;
mod core;
mod handle;
mod port;

pub use crate::config::{ConsumerConfig, OffsetReset};
pub use crate::core::{
    assign, topics_hash, ConsumerCommand, ConsumerCore, ConsumerDelivery, ConsumerOutput, Gap,
    GroupEvent, PartitionPosition, TopicPartition,
};
pub use handle::{Consumer, ConsumerError, ConsumerProbe};
