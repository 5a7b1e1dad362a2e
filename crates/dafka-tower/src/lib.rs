//! The Dafka tower: discovery only.
//!
//! A tower binds two sockets: an XSUB (default `tcp://*:5556`) that nodes
//! publish their beacons to, and an XPUB (default `tcp://*:5557`) that nodes
//! subscribe to. It forwards every valid beacon from one to the other, fills
//! in a node's address when the node left that to it, and, whenever a node
//! subscribes, publishes a TOWER-HELLO listing every live node, so the
//! newcomer connects to all of them at once. No record ever passes through a
//! tower; several towers can serve one mesh.
//!
//! [`TowerMachine`] is the protocol logic (over the [`TowerCore`] table);
//! [`Tower`] runs it on the transport's driver.

mod core;
mod handle;
mod machine;

pub use crate::core::TowerCore;
pub use handle::{Tower, TowerConfig, TowerError};
pub use machine::{TowerCommand, TowerMachine};
