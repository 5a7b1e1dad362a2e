//! Dafka over ZeroMQ.
//!
//! A node's sockets and discovery are its [`Mesh`]; the [`Driver`] runs a
//! role's protocol machine (`dafka_protocol::Machine`) over it on a thread
//! of its own, and the role's [`Port`] connects the machine to the
//! application: commands in, deliveries out, persistence done.
//! [`spawn`] starts a driver thread with its mesh, waker and context.

pub mod driver;
pub mod keys;
pub mod mesh;
pub mod monitor;
mod rcvbuf;
pub mod security;
pub mod spawn;
pub mod tower;
pub mod waker;
pub mod zap;

pub use driver::{Driver, Port, Transport};
pub use mesh::{read_frames, Mesh, MeshError};
pub use spawn::{spawn, start, NodeSpec, Running, StartError};
pub use waker::{wake_pair, Waker};
