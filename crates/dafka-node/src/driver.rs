//! The one loop every role runs on its own thread.
//!
//! A role implements [`Node`]: pure-ish protocol logic that is told about
//! messages, wake-ups and the time, and hands back [`Output`]s. The loop owns
//! the [`Mesh`] and turns those outputs into socket calls. Applications talk
//! to the loop through a channel of typed commands plus a [`Waker`].

use crate::mesh::{Event, Mesh, MeshError};
use crate::run::RunBuilder;
use dafka_proto::Message;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a node asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Publish a message.
    Send(Message),
    /// Start receiving messages under a routing prefix.
    Subscribe(Vec<u8>),
    /// Stop receiving messages under a routing prefix.
    Unsubscribe(Vec<u8>),
}

/// A role's protocol logic as the driver sees it.
pub trait Node {
    /// Commands from the application may be waiting: take them.
    fn on_wake(&mut self, now: Instant);
    /// A message or a subscription arrived.
    fn on_event(&mut self, event: Event, now: Instant);
    /// A burst of events has been handed over (the store writes its batch).
    fn on_batch_end(&mut self, _now: Instant) {}
    /// Timers: called on every turn of the loop.
    fn on_tick(&mut self, now: Instant);
    /// The next time `on_tick` must run even if nothing arrives.
    fn next_deadline(&self) -> Option<Instant>;
    /// Moves pending outputs into `out`.
    fn drain(&mut self, out: &mut Vec<Output>);
    /// The node has finished (closed); the loop ends.
    fn is_done(&self) -> bool;
    /// Whether it can take more messages now. While it cannot, the driver
    /// leaves them in ZeroMQ's queues (back pressure on a slow application).
    fn wants_input(&self) -> bool {
        true
    }
    /// The loop is about to block in `poll`. Returns whether work is
    /// already waiting, so that it polls without blocking instead. A node
    /// whose application wakes it only when it may be asleep (a flag set
    /// here) must check its queue after setting that flag.
    fn before_wait(&mut self) -> bool {
        false
    }
}

/// Longest the loop sleeps with nothing to do; a safety net only.
const IDLE: Duration = Duration::from_secs(1);

/// Runs `node` until it is done, then says goodbye to the mesh.
pub fn run<N: Node>(mesh: &mut Mesh, wake: &zmq::Socket, node: &mut N) -> Result<(), MeshError> {
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut run = RunBuilder::default();
    loop {
        let now = Instant::now();
        node.on_tick(now);
        flush(mesh, node, &mut out, &mut run)?;
        if node.is_done() {
            break;
        }
        let deadline = node
            .next_deadline()
            .unwrap_or(now + IDLE)
            .min(mesh.next_deadline());
        let timeout = if node.before_wait() {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(now)
        };
        mesh.poll(wake, timeout, node.wants_input(), &mut events)?;
        let now = Instant::now();
        // Commands queued before these events were sent must act first (a
        // record published before its ACK arrives), so take them on every
        // turn, not only when a wake-up was seen.
        node.on_wake(now);
        for ev in events.drain(..) {
            node.on_event(ev, now);
        }
        node.on_batch_end(now);
        flush(mesh, node, &mut out, &mut run)?;
    }
    mesh.leave();
    Ok(())
}

/// Sends what the node produced, in order; consecutive records of one
/// partition leave together as a run.
fn flush<N: Node>(
    mesh: &Mesh,
    node: &mut N,
    out: &mut Vec<Output>,
    run: &mut RunBuilder,
) -> Result<(), MeshError> {
    node.drain(out);
    for o in out.drain(..) {
        // Whatever does not join the run sends the run first, in order.
        match o {
            Output::Send(m) => {
                if let Some(m) = run.offer(m) {
                    mesh.send_run(run)?;
                    if let Some(m) = run.offer(m) {
                        mesh.send(&m)?;
                    }
                }
            }
            Output::Subscribe(p) => {
                mesh.send_run(run)?;
                mesh.subscribe(&p)?;
            }
            Output::Unsubscribe(p) => {
                mesh.send_run(run)?;
                mesh.unsubscribe(&p)?;
            }
        }
    }
    mesh.send_run(run)
}

/// Wakes a driver thread blocked in `zmq::poll` after a command was queued.
///
/// A ZeroMQ inproc PAIR. The send blocks (for at most [`WAKE_TIMEOUT`]) when
/// the pipe looks full, because a non-blocking send can fail even after the
/// driver has drained the pipe (ZeroMQ tells the sender about the room only
/// when it next processes commands), and a lost wake-up leaves a command
/// unseen. The driver drains every signal on each turn, so the wait is short.
pub struct Waker {
    sock: Mutex<zmq::Socket>,
}

/// Longest a wake-up may block: only if the driver has stopped.
pub const WAKE_TIMEOUT: Duration = Duration::from_millis(100);

impl Waker {
    /// Signals the driver.
    pub fn wake(&self) {
        if let Ok(s) = self.sock.lock() {
            let _ = s.send(&[][..], 0);
        }
    }
}

/// Makes a waker and the socket its driver polls.
pub fn wake_pair(ctx: &zmq::Context) -> Result<(Waker, zmq::Socket), MeshError> {
    let name = format!("inproc://dafka-wake-{}", uuid::Uuid::new_v4());
    let err = |what| {
        move |error| MeshError {
            what,
            endpoint: "wake".into(),
            error,
        }
    };
    let rx = ctx.socket(zmq::PAIR).map_err(err("create"))?;
    rx.set_rcvhwm(1000).map_err(err("set"))?;
    rx.bind(&name).map_err(err("bind"))?;
    let tx = ctx.socket(zmq::PAIR).map_err(err("create"))?;
    tx.set_sndhwm(1000).map_err(err("set"))?;
    tx.set_sndtimeo(WAKE_TIMEOUT.as_millis() as i32)
        .map_err(err("set"))?;
    tx.set_linger(0).map_err(err("set"))?;
    tx.connect(&name).map_err(err("connect"))?;
    Ok((
        Waker {
            sock: Mutex::new(tx),
        },
        rx,
    ))
}
