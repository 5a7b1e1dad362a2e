//! The tower's peer table, as a pure state machine.
//!
//! The tower forwards beacons and nothing else. It remembers the last beacon
//! of every live node, so that a node joining later is told about all of
//! them at once (TOWER-HELLO) instead of waiting a beacon interval for each.

use dafka_proto::{Beacon, NodeId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Live nodes, by id, with their last beacon.
#[derive(Debug)]
pub struct TowerCore {
    timeout: Duration,
    peers: HashMap<NodeId, (Beacon, Instant)>,
}

impl TowerCore {
    /// A table dropping nodes silent for `timeout`.
    pub fn new(timeout: Duration) -> Self {
        TowerCore {
            timeout,
            peers: HashMap::new(),
        }
    }

    /// Takes a beacon that came from `peer_host` (the connection's remote
    /// address, if ZeroMQ knows it) and returns the beacon to forward, with
    /// its endpoint completed when the node left it to us.
    pub fn on_beacon(
        &mut self,
        mut b: Beacon,
        peer_host: Option<&str>,
        now: Instant,
    ) -> Option<Beacon> {
        if b.endpoint.is_empty() {
            if b.port == 0 {
                return None; // Nothing anyone could connect to.
            }
            let host = peer_host.unwrap_or("127.0.0.1");
            // An IPv6 address goes in brackets, or the port reads as part of it.
            b.endpoint = if host.contains(':') && !host.starts_with('[') {
                format!("tcp://[{host}]:{}", b.port)
            } else {
                format!("tcp://{host}:{}", b.port)
            };
        }
        if b.leaving {
            self.peers.remove(&b.node);
        } else {
            self.peers.insert(b.node, (b.clone(), now));
        }
        Some(b)
    }

    /// Forgets nodes silent for longer than the timeout; returns their
    /// last beacons.
    pub fn expire(&mut self, now: Instant) -> Vec<Beacon> {
        let timeout = self.timeout;
        let silent: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, (_, seen))| now.saturating_duration_since(*seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        silent
            .iter()
            .filter_map(|id| self.peers.remove(id).map(|(b, _)| b))
            .collect()
    }

    /// Whether `node` is live.
    pub fn knows(&self, node: &NodeId) -> bool {
        self.peers.contains_key(node)
    }

    /// Every live node's last beacon, each with how long ago it came
    /// (`age_ms`), so a tool can say when a node was last heard.
    pub fn snapshot(&self, now: Instant) -> Vec<Beacon> {
        self.peers
            .values()
            .map(|(b, seen)| {
                let age = now.saturating_duration_since(*seen).as_millis();
                Beacon {
                    age_ms: u32::try_from(age).unwrap_or(u32::MAX),
                    ..b.clone()
                }
            })
            .collect()
    }

    /// How many nodes are live.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no node is live.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(n: u8, endpoint: &str, port: u32) -> Beacon {
        Beacon {
            node: NodeId([n; 16]),
            endpoint: endpoint.into(),
            port,
            ..Default::default()
        }
    }

    #[test]
    fn completes_an_empty_endpoint_from_the_connection() {
        let mut t = TowerCore::new(Duration::from_secs(4));
        let b = t.on_beacon(beacon(1, "", 4000), Some("10.1.2.3"), Instant::now());
        assert_eq!(b.map(|b| b.endpoint), Some("tcp://10.1.2.3:4000".into()));
        assert_eq!(t.on_beacon(beacon(2, "", 0), None, Instant::now()), None);
        let b = t.on_beacon(beacon(3, "", 4000), Some("fd00::5"), Instant::now());
        assert_eq!(b.map(|b| b.endpoint), Some("tcp://[fd00::5]:4000".into()));
    }

    #[test]
    fn remembers_live_nodes_and_forgets_silent_or_leaving_ones() {
        let mut t = TowerCore::new(Duration::from_secs(4));
        let now = Instant::now();
        t.on_beacon(beacon(1, "tcp://a:1", 1), None, now);
        t.on_beacon(
            beacon(2, "tcp://b:1", 1),
            None,
            now + Duration::from_secs(3),
        );
        let ages: Vec<u32> = t
            .snapshot(now + Duration::from_secs(4))
            .iter()
            .map(|b| b.age_ms)
            .collect();
        assert!(ages.contains(&4000) && ages.contains(&1000), "{ages:?}");
        assert_eq!(t.expire(now + Duration::from_millis(4500)).len(), 1);
        let mut bye = beacon(2, "tcp://b:1", 1);
        bye.leaving = true;
        t.on_beacon(bye, None, now);
        assert!(t.is_empty());
    }
}
