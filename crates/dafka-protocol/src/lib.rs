//! Dafka's protocol logic without I/O.
//!
//! Every role (producer, consumer, store, tower) implements [`Machine`]:
//! fed messages, commands and the time, it says what to send, what to hand
//! to the application and what to make durable. What the roles share lives
//! here too: the `[beacon]` config, discovery, the in-order [`Sequencer`],
//! the run rule, counters, and every tuning number ([`tuning`]).
//!
//! Nothing here owns a socket, a file or the clock: `dafka-transport` runs
//! machines over ZeroMQ, and the simulator in `dafka-testkit` runs the same
//! machines on a seeded network.

pub mod config;
pub mod discovery;
pub mod machine;
pub mod run;
pub mod security;
pub mod senders;
pub mod sequencer;
pub mod stats;
pub mod subscriptions;
pub mod tuning;

pub use config::{ConfigError, MeshConfig};
pub use machine::{Input, InputOf, Machine, Output, OutputOf};
pub use run::RunBuilder;
pub use security::SecurityConfig;
pub use sequencer::{
    gaps, partition_entry, running_average, AheadLimit, FastMap, FetchPacer, Offer, Partitions,
    Sequencer, Tracked,
};
pub use stats::{NodeStats, RateLimit};

/// A fresh random node id.
pub fn new_node_id() -> dafka_proto::NodeId {
    dafka_proto::NodeId(*uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    /// The protocol layer and the codec under it link no I/O library:
    /// whatever runs a machine (the driver, the simulator) brings its own.
    #[test]
    fn the_protocol_layer_depends_on_no_socket_or_database() {
        for (name, manifest) in [
            ("dafka-protocol", include_str!("../Cargo.toml")),
            ("dafka-proto", include_str!("../../dafka-proto/Cargo.toml")),
        ] {
            let deps = manifest
                .split("\n[")
                .filter(|s| s.starts_with("dependencies]"))
                .collect::<String>();
            for io in ["zmq", "rocksdb", "dafka-transport", "crossbeam"] {
                assert!(!deps.contains(io), "{name} depends on {io}");
            }
        }
    }
}
