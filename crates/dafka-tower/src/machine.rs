//! The tower's protocol logic as a [`Machine`]: beacons in, beacons and
//! TOWER-HELLOs out.

use crate::core::TowerCore;
use dafka_proto::{Beacon, Message, NodeId};
use dafka_protocol::tuning::{IDLE, INFO_BURST, INFO_PERIOD};
use dafka_protocol::{Input, Machine, Output, RateLimit};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// What the application asks of a tower.
#[derive(Debug)]
pub enum TowerCommand {
    /// Stop.
    Stop,
}

/// A tower: its table of live nodes and what it owes them.
pub struct TowerMachine {
    id: NodeId,
    core: TowerCore,
    outbox: Vec<Output<usize, Infallible>>,
    /// Joins and departures at info level, in bunches of 20 a second.
    joins: RateLimit,
    known: usize,
    next_expiry: Instant,
    done: bool,
}

impl TowerMachine {
    /// A tower with id `id` dropping nodes silent for `timeout`.
    pub fn new(id: NodeId, timeout: Duration, now: Instant) -> Self {
        TowerMachine {
            id,
            core: TowerCore::new(timeout),
            outbox: Vec::new(),
            joins: RateLimit::burst(INFO_PERIOD, INFO_BURST),
            known: 0,
            next_expiry: now,
            done: false,
        }
    }

    fn on_beacon(&mut self, b: Beacon, host: Option<&str>, now: Instant) {
        let new = !b.leaving && !self.core.knows(&b.node);
        if let Some(b) = self.core.on_beacon(b, host, now) {
            if new || b.leaving {
                let what = if new { "node joined" } else { "node left" };
                self.log(&b, what, now);
            }
            self.outbox.push(Output::Send(Message::Beacon(b)));
        }
    }

    fn log(&mut self, b: &Beacon, what: &str, now: Instant) {
        if let Some(suppressed) = self.joins.allow(now) {
            tracing::info!(node = %b.node, role = ?b.role, endpoint = %b.endpoint, suppressed, "{what}");
        }
    }

    /// Says how many nodes are live when that changed.
    fn report(&mut self) {
        if self.core.len() != self.known {
            self.known = self.core.len();
            self.outbox.push(Output::Deliver(self.known));
        }
    }
}

impl Machine for TowerMachine {
    type Command = TowerCommand;
    /// How many nodes are live.
    type Delivery = usize;
    type Work = Infallible;
    type Done = Infallible;

    fn handle(&mut self, input: Input<TowerCommand, Infallible>, now: Instant) {
        match input {
            Input::Beacon(b, host) => self.on_beacon(b, host.as_deref(), now),
            // A node subscribed: it joined. Tell it about everyone at once.
            Input::Subscribed(_) => {
                let hello = Message::TowerHello {
                    tower: self.id,
                    peers: self.core.snapshot(now),
                };
                self.outbox.push(Output::Send(hello));
            }
            Input::Command(TowerCommand::Stop) => self.done = true,
            Input::Message(_) => {}
            Input::Done(never) => match never {},
        }
        self.report();
    }

    fn on_timeout(&mut self, now: Instant) {
        // Expiry has no exact moment worth tracking: a silent node goes
        // within a second of its timeout.
        self.next_expiry = now + IDLE;
        for b in self.core.expire(now) {
            self.log(&b, "node went silent", now);
        }
        self.report();
    }

    fn next_timeout(&self) -> Option<Instant> {
        Some(self.next_expiry)
    }

    fn drain(&mut self, out: &mut Vec<Output<usize, Infallible>>) {
        out.append(&mut self.outbox);
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_proto::Role;

    fn beacon(n: u8, leaving: bool) -> Beacon {
        Beacon {
            node: NodeId([n; 16]),
            endpoint: String::new(),
            port: 4000 + u32::from(n),
            role: Role::Store,
            interval_ms: 1000,
            leaving,
            ..Default::default()
        }
    }

    fn drain(t: &mut TowerMachine) -> Vec<Output<usize, Infallible>> {
        let mut out = Vec::new();
        t.drain(&mut out);
        out
    }

    #[test]
    fn forwards_beacons_greets_joiners_counts_and_stops() {
        let now = Instant::now();
        let mut t = TowerMachine::new(NodeId([9; 16]), Duration::from_secs(4), now);
        t.handle(
            Input::Beacon(beacon(1, false), Some("10.0.0.7".into())),
            now,
        );
        let out = drain(&mut t);
        assert!(
            matches!(&out[..], [Output::Send(Message::Beacon(b)), Output::Deliver(1)]
                if b.endpoint == "tcp://10.0.0.7:4001"),
            "{out:?}"
        );
        // A node subscribing is greeted with everyone known.
        t.handle(Input::Subscribed(vec![]), now);
        let out = drain(&mut t);
        assert!(
            matches!(&out[..], [Output::Send(Message::TowerHello { peers, .. })] if peers.len() == 1),
            "{out:?}"
        );
        // Silent past the timeout: forgotten, and the count says so.
        t.on_timeout(now + Duration::from_secs(5));
        assert_eq!(drain(&mut t), [Output::Deliver(0)]);
        assert_eq!(t.next_timeout(), Some(now + Duration::from_secs(5) + IDLE));
        t.handle(Input::Command(TowerCommand::Stop), now);
        assert!(t.is_done());
    }
}
