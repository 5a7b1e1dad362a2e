//! What every Dafka node shares: the `[beacon]` config, discovery, the socket
//! owner ([`Mesh`]), the driver loop, and the in-order [`Sequencer`].
//!
//! The pure parts ([`discovery`], [`sequencer`]) take the time as an argument
//! and touch no socket, so they are unit-tested without a network. The
//! [`Mesh`] and [`driver::run`] are the thin layer that owns ZeroMQ.

pub mod config;
pub mod discovery;
pub mod driver;
pub mod mesh;
pub mod run;
pub mod sequencer;
pub mod stats;
pub mod subscriptions;

pub use config::{ConfigError, MeshConfig};
pub use driver::{run, wake_pair, Node, Output, Waker};
pub use mesh::{Event, Mesh, MeshError};
pub use run::RunBuilder;
pub use sequencer::{
    gaps, partition_entry, running_average, AheadLimit, FastMap, FetchPacer, Offer, Partitions,
    Sequencer, Tracked,
};
pub use stats::NodeStats;

/// A fresh random node id.
pub fn new_node_id() -> dafka_proto::NodeId {
    dafka_proto::NodeId(*uuid::Uuid::new_v4().as_bytes())
}
