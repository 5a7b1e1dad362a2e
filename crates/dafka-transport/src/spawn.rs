//! Starting a node: its ZeroMQ context, mesh, waker and driver thread.

use crate::driver::{Driver, Port, Transport};
use crate::mesh::{Mesh, MeshError};
use crate::waker::{wake_pair, Waker};
use dafka_proto::{NodeId, Role};
use dafka_protocol::{Machine, MeshConfig, NodeStats};
use std::sync::Arc;
use std::thread::JoinHandle;
use thiserror::Error;

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A socket could not be set up.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The operating system would not start the node's thread.
    #[error("cannot start the {name} thread")]
    Spawn {
        /// The thread's name.
        name: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Who a node is on the mesh.
#[derive(Clone, Copy, Debug)]
pub struct NodeSpec<'a> {
    /// The driver thread's name (`dafka-store`).
    pub name: &'static str,
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Which roles it connects to.
    pub wants: fn(Role) -> bool,
    /// Discovery and transport settings.
    pub mesh: &'a MeshConfig,
    /// Whether the machine sees every beacon and TOWER-HELLO (a consumer
    /// in a group counts the group's members from them).
    pub show_discovery: bool,
}

/// A node's driver thread, and what its handle needs of it.
pub struct Running {
    waker: Waker,
    stats: Arc<NodeStats>,
    name: &'static str,
    thread: Option<JoinHandle<Result<(), MeshError>>>,
}

impl Running {
    /// Wakes the driver (a command was queued).
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// The node's counters.
    pub fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }

    /// Waits for the driver thread to end; logs a socket error that
    /// stopped it. Does nothing the second time.
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "{} stopped on a socket error", self.name)
                }
                Err(_) => tracing::error!("the {} thread panicked", self.name),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Whether the driver thread has been joined or has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// Starts a node: binds its mesh and runs `machine` with `port` on a
/// thread of its own.
pub fn spawn<M, P>(spec: NodeSpec<'_>, machine: M, port: P) -> Result<Running, StartError>
where
    M: Machine + Send + 'static,
    P: Port<M> + Send + 'static,
{
    let ctx = zmq::Context::new();
    let mut mesh = Mesh::new(&ctx, spec.id, spec.role, spec.mesh, spec.wants)?;
    if spec.show_discovery {
        mesh.show_discovery();
    }
    start(spec.name, ctx, mesh, machine, port)
}

/// Runs `machine` with `port` over `transport` on a thread of its own.
pub fn start<T, M, P>(
    name: &'static str,
    ctx: zmq::Context,
    mut transport: T,
    machine: M,
    mut port: P,
) -> Result<Running, StartError>
where
    T: Transport + Send + 'static,
    M: Machine + Send + 'static,
    P: Port<M> + Send + 'static,
{
    let (waker, wake) = wake_pair(&ctx)?;
    port.attach(&waker);
    let stats = transport.stats();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // The context outlives the sockets: dropped last, here.
            let _ctx = ctx;
            Driver::new(machine, port).run(&mut transport, &wake)
        })
        .map_err(|source| StartError::Spawn { name, source })?;
    Ok(Running {
        waker,
        stats,
        name,
        thread: Some(thread),
    })
}
