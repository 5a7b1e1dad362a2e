//! # Dafka: a decentralized, brokerless streaming platform over ZeroMQ
//!
//! Producers publish records to topics; each producer owns one partition of
//! its topic. Records travel straight from producers to consumers and to
//! stores; stores persist them in RocksDB and ACK; consumers repair any gap
//! by FETCHing from stores or the producer. Towers only introduce nodes to
//! each other. There is no broker in the data path.
//!
//! This crate is what applications link: it re-exports the producer,
//! consumer, store and tower, and loads their [`Config`].
//!
//! ```no_run
//! use dafka::{Config, Consumer, OffsetReset, Producer};
//! use std::time::Duration;
//!
//! let mut cfg = Config::load(None)?;       // defaults + DAFKA_* variables
//! cfg.consumer.offset_reset = OffsetReset::Earliest;
//! cfg.validate()?;
//!
//! let producer = Producer::new("hello", &cfg.producer, &cfg.beacon)?;
//! producer.publish("HELLO WORLD")?;
//!
//! let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
//! consumer.subscribe("hello")?;
//! if let Ok(record) = consumer.recv_timeout(Duration::from_secs(5)) {
//!     println!("{} @ {}: {:?}", record.partition, record.offset, record.content);
//! }
//! producer.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The protocol is specified in `rfc/1-dafka.md` in the repository.

mod config;

/// Record content, and what `select!` over a consumer's and a producer's
/// channels needs, so an application needs no other crate for them.
pub use bytes::Bytes;
pub use config::{Config, ConfigError, Section};
pub use crossbeam_channel::{select, Receiver, RecvTimeoutError};
pub use dafka_consumer::{
    Consumer, ConsumerConfig, ConsumerError, ConsumerProbe, Gap, GroupEvent, OffsetReset,
    PartitionPosition,
};
pub use dafka_producer::{
    partition_for_key, CloseReport, Content, Producer, ProducerConfig, ProducerError,
    ProducerProbe, ProducerRecord, RecordTooLarge, Sent, SpoolFsync, TopicProducer,
};
pub use dafka_proto::{NodeId, Record};
pub use dafka_protocol::{MeshConfig, NodeStats, SecurityConfig};
pub use dafka_store::{Fsync, Store, StoreConfig, StoreError, WalRecoveryMode};
pub use dafka_tower::{Tower, TowerConfig, TowerError};
pub use dafka_transport::keys;
pub use dafka_transport::security::{reload_on_sighup, request_reload};

/// Operators' questions to a running cluster (what `dafka_admin` asks):
/// peers, partitions held by each store, named consumers' positions.
pub use dafka_admin as admin;
/// The wire codec, for tools and tests that speak the protocol directly.
pub use dafka_proto as proto;
