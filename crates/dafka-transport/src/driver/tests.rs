use super::{poll_ms, Driver, Port, Transport};
use crate::mesh::MeshError;
use crate::waker::{wake_pair, Waker};
use dafka_proto::{Frames, Message};
use dafka_protocol::{Input, Machine, NodeStats, Output, RunBuilder};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

#[test]
fn a_short_wait_sleeps_rather_than_spins() {
    assert_eq!(poll_ms(Duration::ZERO), 0);
    assert_eq!(poll_ms(Duration::from_micros(1)), 1);
    assert_eq!(poll_ms(Duration::from_micros(600)), 1);
    assert_eq!(poll_ms(Duration::from_millis(2)), 2);
    assert_eq!(poll_ms(Duration::from_secs(3600)), 60_000);
}
/// Asks for two pieces of work at once and stops when both are answered.
#[derive(Default)]
struct TwoWrites {
    asked: bool,
    answers: Vec<u32>,
    out: Vec<Output<(), u32>>,
}

impl Machine for TwoWrites {
    type Command = ();
    type Delivery = ();
    type Work = u32;
    type Done = u32;

    fn handle(&mut self, input: Input<(), u32>, _now: Instant) {
        if let Input::Done(n) = input {
            self.answers.push(n);
        }
    }

    fn on_timeout(&mut self, _now: Instant) {
        if !std::mem::replace(&mut self.asked, true) {
            self.out.push(Output::Persist(1));
            self.out.push(Output::Persist(2));
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        None
    }

    fn drain(&mut self, out: &mut Vec<Output<(), u32>>) {
        out.append(&mut self.out);
    }

    fn is_done(&self) -> bool {
        self.answers.len() == 2
    }
}

/// Answers work on a thread of its own, as a store's writer does.
struct Later {
    work: Option<crossbeam_channel::Sender<u32>>,
    work_rx: crossbeam_channel::Receiver<u32>,
    done: crossbeam_channel::Receiver<u32>,
    done_tx: crossbeam_channel::Sender<u32>,
}

impl Port<TwoWrites> for Later {
    fn command(&mut self, _accepts: bool) -> Option<()> {
        None
    }

    fn deliver(&mut self, (): ()) {}

    fn persist(&mut self, work: u32) -> Option<u32> {
        self.work.as_ref()?.send(work).ok()?;
        None
    }

    fn completed(&mut self) -> Option<u32> {
        self.done.try_recv().ok()
    }

    fn attach(&mut self, waker: &Waker) {
        let (work, done, waker) = (self.work_rx.clone(), self.done_tx.clone(), waker.clone());
        std::thread::spawn(move || {
            for w in work.iter() {
                let _ = done.send(w * 10);
                waker.wake();
            }
        });
    }

    fn finish(&mut self) {
        self.work = None;
    }
}

/// Sockets with no traffic: only the wake-up is polled.
#[derive(Default)]
struct Quiet {
    stats: Arc<NodeStats>,
    /// How long each poll was allowed to wait.
    waits: Vec<Duration>,
}

impl Transport for Quiet {
    fn poll<C, D>(
        &mut self,
        wake: &zmq::Socket,
        timeout: Duration,
        _read_data: bool,
        _inputs: &mut Vec<Input<C, D>>,
    ) -> Result<(), MeshError> {
        self.waits.push(timeout);
        let mut items = [wake.as_poll_item(zmq::POLLIN)];
        let _ = zmq::poll(&mut items, poll_ms(timeout));
        while wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
        Ok(())
    }
    fn send(&self, _msg: &Message) -> Result<(), MeshError> {
        Ok(())
    }
    fn send_run(&self, _run: &mut RunBuilder) -> Result<(), MeshError> {
        Ok(())
    }
    fn send_encoded(&self, _frames: Frames, _records: u64) -> Result<(), MeshError> {
        Ok(())
    }
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

#[test]
fn work_answered_on_another_thread_reaches_the_machine_in_order() {
    let ctx = zmq::Context::new();
    let (waker, wake) = wake_pair(&ctx).expect("wake pair");
    let (work, work_rx) = crossbeam_channel::unbounded();
    let (done_tx, done) = crossbeam_channel::unbounded();
    let mut port = Later {
        work: Some(work),
        work_rx,
        done,
        done_tx,
    };
    port.attach(&waker);
    let (finished, ended) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut driver = Driver::new(TwoWrites::default(), port);
        let res = driver.run(&mut Quiet::default(), &wake);
        let _ = finished.send((res.is_ok(), driver.machine.answers.clone()));
    });
    let (ok, answers) = ended
        .recv_timeout(Duration::from_secs(10))
        .expect("the driver ends once both answers are in");
    assert!(ok);
    assert_eq!(answers, vec![10, 20]);
}

/// Delivers each command back as it is handled, until `total` came in.
struct Echo {
    total: u64,
    handled: u64,
    out: Vec<Output<u64, ()>>,
    /// Deliveries the port handed back, in order.
    reused: Vec<u64>,
}

impl Machine for Echo {
    type Command = u64;
    type Delivery = u64;
    type Work = ();
    type Done = ();

    fn handle(&mut self, input: Input<u64, ()>, _now: Instant) {
        if let Input::Command(n) = input {
            self.handled += 1;
            self.out.push(Output::Deliver(n));
        }
    }

    fn on_timeout(&mut self, _now: Instant) {}

    fn next_timeout(&self) -> Option<Instant> {
        None
    }

    fn drain(&mut self, out: &mut Vec<Output<u64, ()>>) {
        out.append(&mut self.out);
    }

    fn reuse(&mut self, n: u64) {
        self.reused.push(n);
    }

    fn is_done(&self) -> bool {
        self.handled == self.total
    }
}

/// Commands all queued before the driver starts, with one wake-up for
/// them all; notes, for each delivery, how many commands had been taken
/// by then.
struct Backlog {
    queued: std::collections::VecDeque<u64>,
    woken: bool,
    taken: usize,
    seen: Vec<(u64, usize)>,
}

impl Port<Echo> for Backlog {
    fn command(&mut self, _accepts: bool) -> Option<u64> {
        let c = self.queued.pop_front()?;
        self.taken += 1;
        Some(c)
    }

    fn deliver(&mut self, n: u64) {
        self.seen.push((n, self.taken));
    }

    /// Even deliveries come back.
    fn emptied(&mut self) -> Option<u64> {
        self.seen.last().map(|s| s.0).filter(|n| n % 2 == 0)
    }

    fn persist(&mut self, (): ()) -> Option<()> {
        Some(())
    }

    fn before_wait(&mut self, _accepts: bool) -> bool {
        std::mem::replace(&mut self.woken, false)
    }
}

#[test]
fn a_long_queue_of_commands_is_taken_a_share_per_turn_without_sleeping() {
    use dafka_protocol::tuning::COMMANDS_PER_TURN;
    let ctx = zmq::Context::new();
    let (_waker, wake) = wake_pair(&ctx).expect("wake pair");
    let total = 5 * COMMANDS_PER_TURN as u64;
    let port = Backlog {
        queued: (0..total).collect(),
        woken: true,
        taken: 0,
        seen: Vec::new(),
    };
    let machine = Echo {
        total,
        handled: 0,
        out: Vec::new(),
        reused: Vec::new(),
    };
    let mut driver = Driver::new(machine, port);
    let mut quiet = Quiet::default();
    driver.run(&mut quiet, &wake).expect("the driver runs");
    let seen = &driver.port.seen;
    assert_eq!(seen.len() as u64, total);
    assert!(seen.iter().map(|s| s.0).eq(0..total), "in order");
    // What the first commands caused went out before the whole queue was
    // taken: a turn takes at most its share, twice (before and after the
    // mesh's messages).
    assert!(seen[0].1 <= 2 * COMMANDS_PER_TURN, "{:?}", seen[0]);
    // Nothing waited on the poll while commands were left.
    assert!(quiet.waits.iter().all(|w| w.is_zero()), "{:?}", quiet.waits);
}

#[test]
fn what_a_port_hands_back_after_a_delivery_goes_to_the_machine() {
    let ctx = zmq::Context::new();
    let (_waker, wake) = wake_pair(&ctx).expect("wake pair");
    let port = Backlog {
        queued: (0..7).collect(),
        woken: true,
        taken: 0,
        seen: Vec::new(),
    };
    let machine = Echo {
        total: 7,
        handled: 0,
        out: Vec::new(),
        reused: Vec::new(),
    };
    let mut driver = Driver::new(machine, port);
    driver
        .run(&mut Quiet::default(), &wake)
        .expect("the driver runs");
    assert_eq!(driver.machine.reused, [0, 2, 4, 6]);
}
