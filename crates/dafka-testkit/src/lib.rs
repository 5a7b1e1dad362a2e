//! Test support for Dafka.
//!
//! * [`TestCluster`]: a tower on ephemeral loopback ports and a config whose
//!   timers are fast, for starting real nodes in one test process.
//! * [`TestPeer`]: a node that speaks the wire protocol under the test's
//!   control over real ZeroMQ sockets: it sends any message and awaits the
//!   next one that matches, under a timeout, reporting what it saw instead
//!   when nothing matches. No sleeps.
//! * [`sim::Sim`]: the producer, store and consumer state machines on a
//!   simulated network with seeded drops, duplicates, delays and restarts.

mod cluster;
mod peer;
pub mod sim;

pub use cluster::TestCluster;
pub use peer::{Event as PeerEvent, TestPeer};

/// How long a test waits for any one expected event before failing.
pub const EVENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
