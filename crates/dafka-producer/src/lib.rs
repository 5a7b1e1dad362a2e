//! The Dafka producer: publishes records to partitions of one topic.
//!
//! Each [`Producer`] owns exactly one partition, named by its node id, with
//! offsets from 0; a [`TopicProducer`] owns several, each a `Producer`, and
//! picks one per record by its key (or in turn). Records go straight to consumers and stores over ZeroMQ;
//! the producer keeps each one until `min_acks` stores have ACKed it, and
//! answers FETCHes for those it still keeps.
//!
//! The protocol logic is [`ProducerCore`], a `dafka_protocol::Machine` with
//! no I/O; the [`Producer`] handle numbers and spools records on the
//! caller's thread and hands them to the driver thread that owns the
//! sockets.

mod config;
mod content;
mod core;
mod handle;
mod record;
pub mod spool;
mod topic;

pub use crate::config::{ProducerConfig, SpoolFsync};
pub use crate::core::{
    ClaimOutcome, ProducerCommand, ProducerCore, ProducerOutput, ProducerReport,
};
pub use content::Content;
pub use handle::{CloseReport, Producer, ProducerError, ProducerProbe};
pub use record::{now_ms, ProducerRecord, RecordTooLarge};
pub use topic::{partition_for_key, Sent, TopicProducer};
