//! Wakes a driver thread blocked in `zmq::poll` after a command was queued.

use crate::mesh::{new_socket, zerr, MeshError};
use dafka_protocol::tuning::{WAKE_HWM, WAKE_TIMEOUT};
use std::sync::{Arc, Mutex};

/// The application's end of a ZeroMQ inproc PAIR whose other end the
/// driver polls.
///
/// The send blocks (for at most [`WAKE_TIMEOUT`]) when the pipe looks full,
/// because a non-blocking send can fail even after the driver has drained
/// the pipe (ZeroMQ tells the sender about the room only when it next
/// processes commands), and a lost wake-up leaves a command unseen. The
/// driver drains every signal on each turn, so the wait is short.
///
/// Clones share the socket: the application and a port's own worker
/// thread (a store's writer) wake the same driver.
#[derive(Clone)]
pub struct Waker {
    sock: Arc<Mutex<zmq::Socket>>,
}

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
    let rx = new_socket(ctx, zmq::PAIR, "wake")?;
    rx.set_rcvhwm(WAKE_HWM).map_err(zerr("set", "wake"))?;
    rx.bind(&name).map_err(zerr("bind", "wake"))?;
    let tx = new_socket(ctx, zmq::PAIR, "wake")?;
    tx.set_sndhwm(WAKE_HWM).map_err(zerr("set", "wake"))?;
    tx.set_sndtimeo(WAKE_TIMEOUT.as_millis() as i32)
        .map_err(zerr("set", "wake"))?;
    tx.set_linger(0).map_err(zerr("set", "wake"))?;
    tx.connect(&name).map_err(zerr("connect", "wake"))?;
    Ok((
        Waker {
            sock: Arc::new(Mutex::new(tx)),
        },
        rx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_protocol::tuning::LINGER_MS;

    #[test]
    fn neither_end_of_a_wake_pair_holds_up_closing() {
        let ctx = zmq::Context::new();
        let (waker, rx) = wake_pair(&ctx).expect("pair");
        waker.wake();
        assert_eq!(rx.get_linger(), Ok(LINGER_MS));
        let tx = waker.sock.lock().expect("lock");
        assert_eq!(tx.get_linger(), Ok(0));
    }
}
