//! A scripted protocol peer.

use dafka_protocol::{Input, MeshConfig};
use dafka_transport::{wake_pair, Mesh, MeshError, Transport};

/// What a scripted peer sees: a message, or a subscription to its own.
pub type Event = Input<(), ()>;
use dafka_proto::{Message, NodeId, Role};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A node whose every message is chosen by the test.
pub struct TestPeer {
    id: NodeId,
    mesh: Mesh,
    wake: zmq::Socket,
    pending: VecDeque<Event>,
    _ctx: zmq::Context,
}

impl TestPeer {
    /// Joins the mesh as a node of `role`, connecting to peers of the roles
    /// `role` would connect to.
    pub fn join(role: Role, cfg: &MeshConfig) -> Result<TestPeer, MeshError> {
        Self::join_as(dafka_protocol::new_node_id(), role, cfg)
    }

    /// Joins with a chosen id (a producer's id is its partition).
    pub fn join_as(id: NodeId, role: Role, cfg: &MeshConfig) -> Result<TestPeer, MeshError> {
        let ctx = zmq::Context::new();
        let wants: fn(Role) -> bool = match role {
            Role::Producer => |r| matches!(r, Role::Store | Role::Consumer),
            Role::Consumer => |r| matches!(r, Role::Producer | Role::Store),
            _ => |r| r != Role::Tower,
        };
        let mesh = Mesh::new(&ctx, id, role, cfg, wants)?;
        let (_waker, wake) = wake_pair(&ctx)?;
        Ok(TestPeer {
            id,
            mesh,
            wake,
            pending: VecDeque::new(),
            _ctx: ctx,
        })
    }

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Receives messages under a routing prefix (see `dafka_proto::routing`).
    pub fn subscribe(&self, prefix: &[u8]) -> Result<(), MeshError> {
        self.mesh.subscribe(prefix)
    }

    /// Sends a message. Subscriptions that peers sent since the last
    /// look are applied first: the publisher applies them only when the
    /// node reads them (see `dafka_protocol::subscriptions`), and a scripted
    /// test sends without waiting in between, where a node's driver would
    /// have polled.
    pub fn send(&mut self, msg: &Message) -> Result<(), MeshError> {
        self.pump(Duration::ZERO)?;
        self.mesh.send(msg)
    }

    /// Sends raw frames on the peer's publisher: for malformed input.
    pub fn send_raw(&mut self, frames: &[&[u8]]) -> Result<(), MeshError> {
        self.pump(Duration::ZERO)?;
        self.mesh.send_raw(frames)
    }

    /// Says goodbye (a beacon with `leaving` set), as a closing node does.
    pub fn leave(&mut self) {
        self.mesh.leave();
    }

    /// Puts a group and topic hash in this peer's beacon (a scripted
    /// group member) and beacons at once.
    pub fn announce(&mut self, group: &str, topics: u64) {
        dafka_transport::Transport::announce(&mut self.mesh, group.to_string(), topics);
    }

    /// How many peers this peer is connected to.
    pub fn peers(&self) -> usize {
        self.mesh.peers()
    }

    /// Lets discovery and traffic run for up to `d`, keeping what arrives.
    pub fn pump(&mut self, d: Duration) -> Result<(), MeshError> {
        let mut events = Vec::new();
        self.mesh.poll(&self.wake, d, true, &mut events)?;
        self.pending.extend(events);
        Ok(())
    }

    /// Waits up to `timeout` for the first event matching `want` and takes
    /// it; events that do not match stay queued for later expectations. On
    /// timeout, says what was seen instead.
    pub fn expect<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            while checked < self.pending.len() {
                if let Some(t) = want(&self.pending[checked]) {
                    self.pending.remove(checked);
                    return Ok(t);
                }
                checked += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<String> = self.pending.iter().rev().take(8).map(describe).collect();
                return Err(format!(
                    "nothing matched within {timeout:?}; {} events queued, newest: {seen:?}",
                    self.pending.len()
                ));
            }
            self.pump(left.min(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
        }
    }

    /// Waits for a message matching `want`.
    pub fn expect_msg<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Message) -> Option<T>,
    ) -> Result<T, String> {
        self.expect(timeout, |ev| match ev {
            Event::Message(m) => want(m),
            _ => None,
        })
    }

    /// Waits until some peer subscribes to a prefix starting with `prefix`.
    pub fn expect_subscriber(&mut self, timeout: Duration, prefix: &[u8]) -> Result<(), String> {
        self.expect(timeout, |ev| match ev {
            Event::Subscribed(p) if p.starts_with(prefix) => Some(()),
            _ => None,
        })
    }
}

fn describe(ev: &Event) -> String {
    match ev {
        Event::Message(m) => format!("{} {:?}", m.id().name(), m),
        Event::Subscribed(p) => format!("subscribed {:?}", String::from_utf8_lossy(p)),
        _ => "other".into(),
    }
}
