//! Says why a connection's handshake failed, in the words of the
//! `[security]` section: a wrong tower key, a key the other side does not
//! allow, or one side with security and the other without. libzmq only
//! reports these as socket monitor events; without them a misconfigured
//! node would wait in silence.

use crate::mesh::{new_socket, zerr, MeshError};
use dafka_protocol::tuning::WARN_PERIOD;
use dafka_protocol::RateLimit;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const MECHANISM_MISMATCH: u32 = 0x1100_0002;
const CRYPTOGRAPHIC: u32 = 0x1100_0001;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Which side of the connections a monitored socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// It connects to towers.
    Tower,
    /// It connects to peers (their data sockets).
    Peer,
    /// It binds: others connect to it.
    Server,
}

/// The monitor of one socket.
pub struct Monitor {
    pair: zmq::Socket,
    side: Side,
    secure: bool,
    /// One limit per explanation: a different failure is said at once.
    warn: HashMap<&'static str, RateLimit>,
}

impl Monitor {
    /// Watches `sock` for failed handshakes.
    pub fn attach(
        ctx: &zmq::Context,
        sock: &zmq::Socket,
        side: Side,
        secure: bool,
    ) -> Result<Monitor, MeshError> {
        let at = format!(
            "inproc://dafka-monitor-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32;
        sock.monitor(&at, events).map_err(zerr("monitor", &at))?;
        let pair = new_socket(ctx, zmq::PAIR, "monitor")?;
        pair.connect(&at).map_err(zerr("connect", &at))?;
        Ok(Monitor {
            pair,
            side,
            secure,
            warn: HashMap::new(),
        })
    }

    /// How long closing the monitor waits for messages it could not send.
    #[cfg(test)]
    pub(crate) fn linger(&self) -> Result<i32, zmq::Error> {
        self.pair.get_linger()
    }

    /// For a poll: readable when an event waits.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.pair.as_poll_item(zmq::POLLIN)
    }

    /// Reads the events waiting and says what each means, at a rate limit.
    pub fn read(&mut self, now: Instant) {
        while let Ok(frames) = self.pair.recv_multipart(zmq::DONTWAIT) {
            let (Some(head), Some(endpoint)) = (frames.first(), frames.get(1)) else {
                continue;
            };
            if head.len() < 6 {
                continue;
            }
            let event = u16::from_ne_bytes([head[0], head[1]]);
            let value = u32::from_ne_bytes([head[2], head[3], head[4], head[5]]);
            let endpoint = String::from_utf8_lossy(endpoint);
            let Some(why) = explain(self.side, self.secure, event, value) else {
                continue;
            };
            let limit = self
                .warn
                .entry(why)
                .or_insert_with(|| RateLimit::new(WARN_PERIOD));
            if let Some(suppressed) = limit.allow(now) {
                tracing::error!(%endpoint, suppressed, "security handshake failed: {why}");
            }
        }
    }
}

/// What a failed handshake most likely means, or `None` when the ZAP
/// handler already said it (a refused key, on the server side).
pub fn explain(side: Side, secure: bool, event: u16, value: u32) -> Option<&'static str> {
    let auth = event == zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16;
    let protocol = event == zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as u16;
    Some(match (side, secure) {
        (Side::Server, _) if auth => return None,
        (Side::Server, true) if protocol && value == MECHANISM_MISMATCH => {
            "a peer connected without security ([security] enabled = false there)"
        }
        (Side::Server, false) if protocol && value == MECHANISM_MISMATCH => {
            "a peer connected with security on; this side has [security] enabled = false"
        }
        (Side::Server, _) => return None,
        (_, _) if auth => {
            "the other side refused this node's key: add its public key to that side's authorized_keys"
        }
        (_, true) if protocol && value == MECHANISM_MISMATCH => {
            "the other side runs without security: enable [security] there, or disable it here"
        }
        (_, false) if protocol && value == MECHANISM_MISMATCH => {
            "the other side requires security: enable [security] here, with keys"
        }
        (Side::Tower, true) if protocol && value == CRYPTOGRAPHIC => {
            "the tower did not prove the key in security.tower_keys: is it that tower's public key?"
        }
        // The side that sees a mismatch first may just close: the other
        // learns nothing more than that, so say every likely reason.
        (Side::Tower, true) => {
            "the tower closed the connection during the handshake: it runs without security, or security.tower_keys is not its public key"
        }
        (Side::Tower, false) => {
            "the tower closed the connection during the handshake: it requires security ([security] is off here)"
        }
        (Side::Peer, true) => "a peer did not prove the key it announced",
        (_, false) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_DETAIL: u16 = zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as u16;
    const PROTOCOL: u16 = zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as u16;
    const AUTH: u16 = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16;

    #[test]
    fn each_failure_is_named_on_the_side_that_can_fix_it() {
        let mismatch = MECHANISM_MISMATCH;
        assert!(explain(Side::Tower, true, NO_DETAIL, 0)
            .is_some_and(|w| w.contains("security.tower_keys")));
        assert!(explain(Side::Tower, false, PROTOCOL, mismatch)
            .is_some_and(|w| w.contains("requires security")));
        assert!(explain(Side::Tower, true, PROTOCOL, mismatch)
            .is_some_and(|w| w.contains("without security")));
        assert!(explain(Side::Peer, true, AUTH, 400).is_some_and(|w| w.contains("authorized_keys")));
        assert_eq!(
            explain(Side::Server, true, AUTH, 400),
            None,
            "the ZAP handler says it"
        );
        assert!(explain(Side::Server, true, PROTOCOL, mismatch).is_some());
    }
}
