//! Who is out there: the peer table, as a pure state machine.
//!
//! Fed beacons and the current time, it says which endpoints to connect to
//! and which to drop. It owns no socket, so peer expiry is tested without
//! waiting for real time to pass.

use dafka_proto::{Beacon, NodeId, Role};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the mesh must do about a peer's data socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerChange {
    /// A new peer: connect to its endpoint, expecting its key (empty
    /// without security).
    Connect(NodeId, String, String),
    /// A peer left or went silent: disconnect from its endpoint.
    Disconnect(NodeId, String),
    /// A beacon announced a live peer's id with another key: ignored
    /// (nobody takes over a node's identity while it is alive).
    Conflict(NodeId, String),
}

#[derive(Debug)]
pub(crate) struct Peer {
    endpoint: String,
    last_seen: Instant,
    pub(crate) key: String,
    pub(crate) role: Role,
}

/// The peer table of one node.
#[derive(Debug)]
pub struct Discovery {
    me: NodeId,
    wants: fn(Role) -> bool,
    timeout: Duration,
    pub(crate) peers: HashMap<NodeId, Peer>,
}

impl Discovery {
    /// A table for node `me`, keeping peers for which `wants(role)` is true
    /// (a consumer has nothing to hear from other consumers), dropping any
    /// silent for `timeout`.
    pub fn new(me: NodeId, wants: fn(Role) -> bool, timeout: Duration) -> Self {
        Discovery {
            me,
            wants,
            timeout,
            peers: HashMap::new(),
        }
    }

    /// Takes one beacon (from a peer's own beacon or a tower's list).
    pub fn on_beacon(&mut self, b: &Beacon, now: Instant) -> Vec<PeerChange> {
        if b.node == self.me || !(self.wants)(b.role) || b.endpoint.is_empty() {
            return Vec::new();
        }
        if let Some(peer) = self.peers.get_mut(&b.node) {
            if peer.key != b.key {
                return vec![PeerChange::Conflict(b.node, b.key.clone())];
            }
            if peer.endpoint == b.endpoint && !b.leaving {
                peer.last_seen = now;
                return Vec::new();
            }
        }
        if b.leaving {
            return self.remove(b.node).into_iter().collect();
        }
        // New, or a known id at a new endpoint (a restarted node that kept
        // its id): drop the old connection, make the new one.
        let mut changes: Vec<PeerChange> = self.remove(b.node).into_iter().collect();
        let endpoint = b.endpoint.clone();
        self.peers.insert(
            b.node,
            Peer {
                endpoint: endpoint.clone(),
                last_seen: now,
                key: b.key.clone(),
                role: b.role,
            },
        );
        changes.push(PeerChange::Connect(b.node, endpoint, b.key.clone()));
        changes
    }

    /// Drops every peer whose key `keep` refuses (keys removed from the
    /// authorized keys).
    pub fn retain_keys(&mut self, keep: impl Fn(&str) -> bool) -> Vec<PeerChange> {
        let gone: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| !keep(&p.key))
            .map(|(id, _)| *id)
            .collect();
        gone.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    fn remove(&mut self, id: NodeId) -> Option<PeerChange> {
        let p = self.peers.remove(&id)?;
        Some(PeerChange::Disconnect(id, p.endpoint))
    }

    /// Drops every peer silent for longer than the timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerChange> {
        let timeout = self.timeout;
        let dead: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        dead.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(n: u8, ep: &str) -> Beacon {
        Beacon {
            node: NodeId([n; 16]),
            endpoint: ep.into(),
            role: Role::Store,
            ..Default::default()
        }
    }

    fn table() -> Discovery {
        Discovery::new(
            NodeId([0; 16]),
            |r| r == Role::Store,
            Duration::from_secs(4),
        )
    }

    #[test]
    fn connects_once_to_a_new_peer_and_ignores_itself() {
        let mut d = table();
        let t = Instant::now();
        assert!(matches!(
            d.on_beacon(&beacon(1, "tcp://a:1"), t)[..],
            [PeerChange::Connect(..)]
        ));
        assert!(d.on_beacon(&beacon(1, "tcp://a:1"), t).is_empty());
        assert!(d.on_beacon(&beacon(0, "tcp://me:1"), t).is_empty());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn ignores_roles_it_does_not_want() {
        let mut d = table();
        let mut b = beacon(1, "tcp://a:1");
        b.role = Role::Consumer;
        assert!(d.on_beacon(&b, Instant::now()).is_empty());
    }

    #[test]
    fn drops_a_silent_peer_after_the_timeout_only() {
        let mut d = table();
        let t = Instant::now();
        d.on_beacon(&beacon(1, "tcp://a:1"), t);
        assert!(d.expire(t + Duration::from_secs(4)).is_empty());
        let gone = d.expire(t + Duration::from_millis(4001));
        assert_eq!(
            gone,
            vec![PeerChange::Disconnect(NodeId([1; 16]), "tcp://a:1".into())]
        );
        assert!(d.is_empty());
    }

    #[test]
    fn a_leaving_beacon_drops_at_once() {
        let mut d = table();
        let t = Instant::now();
        d.on_beacon(&beacon(1, "tcp://a:1"), t);
        let mut bye = beacon(1, "tcp://a:1");
        bye.leaving = true;
        assert!(matches!(
            d.on_beacon(&bye, t)[..],
            [PeerChange::Disconnect(..)]
        ));
    }

    #[test]
    fn a_moved_peer_is_reconnected() {
        let mut d = table();
        let t = Instant::now();
        d.on_beacon(&beacon(1, "tcp://a:1"), t);
        let id = NodeId([1; 16]);
        assert_eq!(
            d.on_beacon(&beacon(1, "tcp://a:2"), t),
            vec![
                PeerChange::Disconnect(id, "tcp://a:1".into()),
                PeerChange::Connect(id, "tcp://a:2".into(), String::new())
            ]
        );
    }

    #[test]
    fn a_live_peer_keeps_its_key_and_a_removed_key_is_dropped() {
        let mut d = table();
        let t = Instant::now();
        let mut real = beacon(1, "tcp://a:1");
        real.key = "K1".into();
        assert!(matches!(
            d.on_beacon(&real, t)[..],
            [PeerChange::Connect(..)]
        ));
        let mut impostor = beacon(1, "tcp://evil:1");
        impostor.key = "K2".into();
        impostor.leaving = true;
        assert_eq!(
            d.on_beacon(&impostor, t),
            vec![PeerChange::Conflict(NodeId([1; 16]), "K2".into())],
            "nobody else says goodbye for it, or moves it"
        );
        assert_eq!(d.len(), 1);
        assert!(d.retain_keys(|k| k == "K1").is_empty());
        assert_eq!(d.retain_keys(|k| k == "K3").len(), 1);
        assert!(d.is_empty());
        // Once it is gone, the id may come back with a new key.
        assert!(matches!(d.on_beacon(&impostor, t)[..], []));
        impostor.leaving = false;
        assert!(matches!(
            d.on_beacon(&impostor, t)[..],
            [PeerChange::Connect(..)]
        ));
    }
}
