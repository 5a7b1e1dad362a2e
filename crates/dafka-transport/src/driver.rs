//! The one loop every node runs on its own thread.
//!
//! It owns the [`Mesh`] and runs a role's [`Machine`]: what arrives on the
//! sockets and what the application queued go in, the machine's outputs
//! come out and become socket calls, deliveries to the application and
//! writes. The application's side of each role is a [`Port`]: where its
//! commands come from, where deliveries go, what makes work durable.

use crate::mesh::MeshError;
use crate::waker::Waker;
use dafka_proto::{Frames, Message};
use dafka_protocol::tuning::{COMMANDS_PER_TURN, IDLE};
use dafka_protocol::{Input, InputOf, Machine, Output, OutputOf, RunBuilder};
use std::time::{Duration, Instant};

/// A poll timeout in whole milliseconds (what `zmq::poll` takes), rounded
/// up: rounded down, a wait of 0.6 ms would poll with 0 and spin until the
/// deadline instead of sleeping. At most a minute.
pub fn poll_ms(timeout: Duration) -> i64 {
    timeout.as_micros().div_ceil(1000).min(60_000) as i64
}

/// The sockets a driver runs a machine over: a node's [`crate::Mesh`], or
/// a tower's pair of sockets ([`crate::tower::TowerSockets`]).
pub trait Transport {
    /// Waits up to `timeout` for traffic or a wake-up on `wake`, and
    /// appends what the machine must see to `inputs`. With `read_data`
    /// false, data messages stay queued in ZeroMQ.
    fn poll<C, D>(
        &mut self,
        wake: &zmq::Socket,
        timeout: Duration,
        read_data: bool,
        inputs: &mut Vec<Input<C, D>>,
    ) -> Result<(), MeshError>;
    /// Publishes a message.
    fn send(&self, msg: &Message) -> Result<(), MeshError>;
    /// Publishes the records waiting in `run` as one message, if any.
    fn send_run(&self, run: &mut RunBuilder) -> Result<(), MeshError>;
    /// Publishes a run of `records` records the machine encoded itself.
    fn send_encoded(&self, frames: Frames, records: u64) -> Result<(), MeshError>;
    /// Starts receiving messages under a routing prefix.
    fn subscribe(&self, prefix: &[u8]) -> Result<(), MeshError>;
    /// Stops receiving messages under a routing prefix.
    fn unsubscribe(&self, prefix: &[u8]) -> Result<(), MeshError>;
    /// Puts a group and topic hash in this node's beacon, and beacons now.
    fn announce(&mut self, _group: String, _topics: u64) {}
    /// When the transport next needs a turn of its own (beacons).
    fn next_deadline(&self) -> Option<Instant>;
    /// Says goodbye before the driver stops.
    fn leave(&mut self);
    /// The node's counters.
    fn stats(&self) -> std::sync::Arc<dafka_protocol::NodeStats>;
}

/// The application's side of a machine, as the driver sees it.
pub trait Port<M: Machine> {
    /// The next command the application queued, if any. While the machine
    /// does not accept commands (`accepts` false), a port gives one only if
    /// it must get through (a close behind publishes that wait for room).
    fn command(&mut self, accepts: bool) -> Option<M::Command>;

    /// Hands a delivery to the application.
    fn deliver(&mut self, delivery: M::Delivery);

    /// What the last [`Port::deliver`] leaves for the machine to reuse
    /// ([`Machine::reuse`]): a buffer it emptied.
    fn emptied(&mut self) -> Option<M::Delivery> {
        None
    }

    /// Makes `work` durable and says how that went: `Some` when it is done
    /// at once, `None` when the answer comes later from
    /// [`Port::completed`], after a wake-up (work carried out on a thread
    /// of the port's own, so that the driver reads on meanwhile).
    fn persist(&mut self, work: M::Work) -> Option<M::Done>;

    /// An answer to earlier [`Port::persist`] work that finished since,
    /// in the order the work was asked for.
    fn completed(&mut self) -> Option<M::Done> {
        None
    }

    /// Called once before the driver starts, with what wakes it: for a
    /// port whose work finishes on another thread.
    fn attach(&mut self, _waker: &Waker) {}

    /// Whether the application can take more deliveries now. While it
    /// cannot, the driver leaves messages in ZeroMQ's queues (back
    /// pressure on a slow application).
    fn has_room(&self) -> bool {
        true
    }

    /// The application is gone (it dropped its receiver): stop.
    fn is_closed(&self) -> bool {
        false
    }

    /// When the port needs a turn of its own (a timer, or a look for room).
    fn next_timeout(&self) -> Option<Instant> {
        None
    }

    /// Timers of the port's own, run on every turn.
    fn on_timeout(&mut self, _now: Instant) {}

    /// The loop is about to block. Returns whether a command is already
    /// waiting, so that it polls without blocking instead. A port whose
    /// application wakes the driver only when it may be asleep (a flag
    /// set here) must look at its queue after setting that flag.
    fn before_wait(&mut self, _accepts_commands: bool) -> bool {
        false
    }

    /// The driver is stopping (after the machine finished, or on an error).
    fn finish(&mut self) {}
}

/// A machine, its port and the loop's buffers.
pub struct Driver<M: Machine, P: Port<M>> {
    machine: M,
    port: P,
    inputs: Vec<InputOf<M>>,
    out: Vec<OutputOf<M>>,
    run: RunBuilder,
    /// The last turn left commands queued (it took its share).
    backlog: bool,
}

impl<M: Machine, P: Port<M>> Driver<M, P> {
    /// A driver for `machine` whose application side is `port`.
    pub fn new(machine: M, port: P) -> Self {
        Driver {
            machine,
            port,
            inputs: Vec::new(),
            out: Vec::new(),
            run: RunBuilder::default(),
            backlog: false,
        }
    }

    /// Runs until the machine is done or the application is gone, then says
    /// goodbye to the mesh.
    pub fn run<T: Transport>(&mut self, mesh: &mut T, wake: &zmq::Socket) -> Result<(), MeshError> {
        let res = self.turns(mesh, wake);
        mesh.leave();
        self.port.finish();
        res
    }

    fn turns<T: Transport>(&mut self, mesh: &mut T, wake: &zmq::Socket) -> Result<(), MeshError> {
        loop {
            let now = Instant::now();
            self.machine.on_timeout(now);
            self.port.on_timeout(now);
            self.flush(mesh)?;
            if self.machine.is_done() || self.port.is_closed() {
                return Ok(());
            }
            let deadline = [
                self.machine.next_timeout(),
                self.port.next_timeout(),
                mesh.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + IDLE);
            let timeout = if self.backlog || self.port.before_wait(self.machine.accepts_commands())
            {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            mesh.poll(wake, timeout, self.port.has_room(), &mut self.inputs)?;
            let now = Instant::now();
            // Finished writes first: their ACKs leave in this turn's flush.
            while let Some(done) = self.port.completed() {
                self.machine.handle(Input::Done(done), now);
            }
            // Commands queued before these messages were sent must act
            // first (a record published before its ACK arrives), so take
            // them on every turn, not only when a wake-up was seen.
            self.take_commands(now);
            // Drained in place: the buffers keep their capacity from turn
            // to turn (a turn can carry millions of records in runs).
            let mut inputs = std::mem::take(&mut self.inputs);
            for input in inputs.drain(..) {
                self.machine.handle(input, now);
            }
            self.inputs = inputs;
            self.take_commands(now);
            self.machine.end_of_turn(now);
            self.flush(mesh)?;
        }
    }

    /// Takes what the application queued, up to [`COMMANDS_PER_TURN`]: the
    /// rest waits for the next turn, which then polls without blocking.
    fn take_commands(&mut self, now: Instant) {
        for _ in 0..COMMANDS_PER_TURN {
            let Some(c) = self.port.command(self.machine.accepts_commands()) else {
                self.backlog = false;
                return;
            };
            self.machine.handle(Input::Command(c), now);
        }
        self.backlog = true;
    }

    /// Carries out what the machine asked for, in order; consecutive
    /// records of one partition leave together as a run. Persistence
    /// answered at once has what the answer causes (ACKs) go out in the
    /// same flush; the rest is answered on a later turn.
    fn flush<T: Transport>(&mut self, mesh: &mut T) -> Result<(), MeshError> {
        loop {
            self.machine.drain(&mut self.out);
            if self.out.is_empty() {
                break;
            }
            let mut out = std::mem::take(&mut self.out);
            for o in out.drain(..) {
                match o {
                    Output::Send(m) => {
                        if let Some(m) = self.run.offer(m) {
                            mesh.send_run(&mut self.run)?;
                            if let Some(m) = self.run.offer(m) {
                                mesh.send(&m)?;
                            }
                        }
                    }
                    Output::SendRun { frames, records } => {
                        mesh.send_run(&mut self.run)?;
                        mesh.send_encoded(frames, records)?;
                    }
                    Output::Subscribe(p) => {
                        mesh.send_run(&mut self.run)?;
                        mesh.subscribe(&p)?;
                    }
                    Output::Unsubscribe(p) => {
                        mesh.send_run(&mut self.run)?;
                        mesh.unsubscribe(&p)?;
                    }
                    Output::Deliver(d) => {
                        self.port.deliver(d);
                        if let Some(emptied) = self.port.emptied() {
                            self.machine.reuse(emptied);
                        }
                    }
                    Output::Announce { group, topics } => mesh.announce(group, topics),
                    Output::Persist(w) => {
                        if let Some(done) = self.port.persist(w) {
                            self.machine.handle(Input::Done(done), Instant::now());
                        }
                    }
                }
            }
            self.out = out;
        }
        mesh.send_run(&mut self.run)
    }
}

#[cfg(test)]
mod tests;
