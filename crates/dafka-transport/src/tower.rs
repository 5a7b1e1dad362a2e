//! A tower's two sockets as a [`Transport`]: an XSUB that nodes publish
//! their beacons to, and an XPUB that nodes subscribe to.
//!
//! With security on, the tower is the CURVE server of both: only nodes
//! whose keys it authorizes connect, and a beacon is forwarded only if the
//! key it announces is the key its sender authenticated with, so no node
//! can announce itself under another's key.

use crate::driver::{poll_ms, Transport};
use crate::mesh::{last_endpoint, new_socket, read_frames, zerr, MeshError};
use crate::monitor::{Monitor, Side};
use crate::security::Curve;
use crate::zap::Zap;
use dafka_proto::{decode, encode, Beacon, Frames, Message};
use dafka_protocol::subscriptions::{SubAction, SubscriptionTable};
use dafka_protocol::tuning::MAX_FRAMES;
use dafka_protocol::tuning::WARN_PERIOD;
use dafka_protocol::{Input, NodeStats, RunBuilder};
use dafka_protocol::{RateLimit, SecurityConfig};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tower's sockets.
pub struct TowerSockets {
    xsub: zmq::Socket,
    xpub: zmq::Socket,
    frames: Vec<zmq::Message>,
    subs: SubscriptionTable,
    stats: Arc<NodeStats>,
    monitors: [Monitor; 2],
    secure: Option<TowerSecurity>,
    warn: RateLimit,
}

struct TowerSecurity {
    curve: Curve,
    _zap: Zap,
    generation: u64,
    allowed: Arc<HashSet<String>>,
}

impl TowerSockets {
    /// Binds the beacon input (`input`, XSUB) and output (`output`, XPUB);
    /// returns them with the endpoints they are bound to.
    pub fn bind(
        ctx: &zmq::Context,
        input: &str,
        output: &str,
        security: &SecurityConfig,
    ) -> Result<(TowerSockets, (String, String)), MeshError> {
        let stats = Arc::new(NodeStats::default());
        let secure = match Curve::load(security)? {
            Some(curve) => {
                let zap = Zap::start(ctx, curve.allow.clone(), stats.clone())?;
                let (generation, allowed) = curve.allow.snapshot();
                tracing::info!(key = %curve.pair.public, "security on: CURVE with authorized keys");
                Some(TowerSecurity {
                    curve,
                    _zap: zap,
                    generation,
                    allowed,
                })
            }
            None => None,
        };
        let xsub = new_socket(ctx, zmq::XSUB, "xsub")?;
        let mut xpub = new_socket(ctx, zmq::XPUB, "xpub")?;
        if let Some(s) = &secure {
            s.curve.serve(&xsub)?;
            s.curve.serve(&xpub)?;
        }
        let on = secure.is_some();
        let monitors = [
            Monitor::attach(ctx, &xsub, Side::Server, on)?,
            Monitor::attach(ctx, &xpub, Side::Server, on)?,
        ];
        xsub.bind(input).map_err(zerr("bind", input))?;
        // XSUB subscribes by sending 0x01 + prefix upstream; empty = all.
        xsub.send(&[1u8][..], 0)
            .map_err(zerr("subscribe", "xsub"))?;
        // Manual: nodes subscribe to beacons and tower hellos, and a peer
        // subscribing to anything else must not grow the tower's memory.
        dafka_sockopt::set_xpub_manual(&mut xpub, true).map_err(zerr("set", "xpub_manual"))?;
        xpub.bind(output).map_err(zerr("bind", output))?;
        let endpoints = (last_endpoint(&xsub)?, last_endpoint(&xpub)?);
        let socks = TowerSockets {
            xsub,
            xpub,
            frames: (0..MAX_FRAMES).map(|_| zmq::Message::new()).collect(),
            subs: SubscriptionTable::beacons(),
            stats,
            monitors,
            secure,
            warn: RateLimit::new(WARN_PERIOD),
        };
        Ok((socks, endpoints))
    }

    fn read_beacons<C, D>(&mut self, inputs: &mut Vec<Input<C, D>>) {
        while let Some(n) = read_frames(&self.xsub, &mut self.frames) {
            let host = self.frames[0].gets("Peer-Address").map(str::to_string);
            let user = self.frames[0].gets("User-Id").map(str::to_string);
            let parts: Vec<&[u8]> = self.frames[..n.min(MAX_FRAMES)]
                .iter()
                .map(|m| &m[..])
                .collect();
            match decode(&parts) {
                Ok(Message::Beacon(b)) if n <= MAX_FRAMES && !self.authentic(&b, user) => {}
                Ok(Message::Beacon(b)) if n <= MAX_FRAMES => inputs.push(Input::Beacon(b, host)),
                // Anything else is not for a tower: records never pass here.
                _ => NodeStats::bump(&self.stats.malformed),
            }
        }
    }

    /// With security on: whether the beacon announces the key its sender
    /// authenticated with, and that key is still authorized.
    fn authentic(&mut self, b: &Beacon, user: Option<String>) -> bool {
        let Some(secure) = &mut self.secure else {
            return true;
        };
        if secure.curve.allow.generation() != secure.generation {
            (secure.generation, secure.allowed) = secure.curve.allow.snapshot();
        }
        let user = user.unwrap_or_default();
        if b.key == user && secure.allowed.contains(&user) {
            return true;
        }
        NodeStats::bump(&self.stats.impostors);
        if let Some(suppressed) = self.warn.allow(Instant::now()) {
            tracing::warn!(node = %b.node, announced = %b.key, authenticated = %user, suppressed,
                "dropped a beacon whose key is not the key it was sent with, or no longer authorized");
        }
        false
    }

    /// A node subscribing means it joined: the machine greets it.
    fn read_subscriptions<C, D>(&mut self, inputs: &mut Vec<Input<C, D>>) {
        while let Ok(m) = self.xpub.recv_bytes(zmq::DONTWAIT) {
            let applied = match self.subs.on_message(&m) {
                SubAction::Subscribe(p) => {
                    inputs.push(Input::Subscribed(p.to_vec()));
                    self.xpub.set_subscribe(p)
                }
                SubAction::Unsubscribe(p) => self.xpub.set_unsubscribe(p),
                SubAction::Ignore => Ok(()),
                SubAction::Refuse => {
                    NodeStats::bump(&self.stats.subscriptions_refused);
                    Ok(())
                }
            };
            if let Err(e) = applied {
                tracing::warn!(error = %e, "cannot apply a subscription");
            }
        }
    }
}

impl Transport for TowerSockets {
    fn poll<C, D>(
        &mut self,
        wake: &zmq::Socket,
        timeout: Duration,
        _read_data: bool,
        inputs: &mut Vec<Input<C, D>>,
    ) -> Result<(), MeshError> {
        let ms = poll_ms(timeout);
        let mut items = [
            self.xsub.as_poll_item(zmq::POLLIN),
            self.xpub.as_poll_item(zmq::POLLIN),
            wake.as_poll_item(zmq::POLLIN),
            self.monitors[0].poll_item(),
            self.monitors[1].poll_item(),
        ];
        match zmq::poll(&mut items, ms) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(zerr("poll", "")(e)),
        }
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        if ready[0] {
            self.read_beacons(inputs);
        }
        if ready[1] {
            self.read_subscriptions(inputs);
        }
        if ready[2] {
            while wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
        }
        let now = Instant::now();
        for (m, ready) in self.monitors.iter_mut().zip(&ready[3..]) {
            if *ready {
                m.read(now);
            }
        }
        Ok(())
    }

    fn send(&self, msg: &Message) -> Result<(), MeshError> {
        let f = encode(msg);
        let sent = self
            .xpub
            .send(f.key, zmq::SNDMORE | zmq::DONTWAIT)
            .and_then(|_| self.xpub.send(f.header, zmq::DONTWAIT));
        if sent.is_ok() {
            NodeStats::bump(&self.stats.sent);
        }
        Ok(())
    }

    /// Records never pass through a tower.
    fn send_run(&self, run: &mut RunBuilder) -> Result<(), MeshError> {
        drop(run.take());
        Ok(())
    }

    fn send_encoded(&self, _frames: Frames, _records: u64) -> Result<(), MeshError> {
        Ok(())
    }

    /// A tower hears every beacon: there is nothing to choose.
    fn subscribe(&self, _prefix: &[u8]) -> Result<(), MeshError> {
        Ok(())
    }

    fn unsubscribe(&self, _prefix: &[u8]) -> Result<(), MeshError> {
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn leave(&mut self) {}

    fn stats(&self) -> Arc<NodeStats> {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_protocol::tuning::LINGER_MS;

    /// With ZeroMQ's default linger (forever), a beacon queued for a node
    /// whose connection was dying when the tower stopped kept the context
    /// from terminating: the tower's drop hung.
    #[test]
    fn the_towers_sockets_give_up_on_pending_beacons_when_closed() {
        let ctx = zmq::Context::new();
        let any = "tcp://127.0.0.1:*";
        let (socks, _) =
            TowerSockets::bind(&ctx, any, any, &SecurityConfig::default()).expect("bind");
        assert_eq!(socks.xsub.get_linger(), Ok(LINGER_MS));
        assert_eq!(socks.xpub.get_linger(), Ok(LINGER_MS));
        for m in &socks.monitors {
            assert_eq!(m.linger(), Ok(LINGER_MS));
        }
    }
}
