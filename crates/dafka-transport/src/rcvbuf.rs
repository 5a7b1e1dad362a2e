//! The kernel receive buffer of the data socket's connections.
//!
//! Linux sizes a TCP connection's receive buffer by how much the reader
//! takes per round trip. On loopback the round trip is a few
//! microseconds, so the buffer stayed under 1 MB, and a producer
//! sending 64 KiB records to a store on the same host spent 60 % of its
//! time waiting for the window to open (`ss -ti`: `rwnd_limited`), every
//! few hundred KB a wake-up and an ACK on both sides. A fixed buffer of a
//! few MB takes that cost away (`beacon.receive_buffer`).

use crate::mesh::{zerr, MeshError};
use std::sync::Once;

/// The kernel's ceiling on what a socket may ask for.
const RMEM_MAX: &str = "/proc/sys/net/core/rmem_max";

/// What to set ZMQ_RCVBUF to, for `want` bytes under the kernel's
/// `ceiling`: nothing for 0, and nothing when the ceiling is lower. A
/// buffer set by hand is no longer tuned by the kernel, and one cut down
/// to a low ceiling (Debian's is 208 KiB) would be smaller than what the
/// kernel's tuning reaches by itself.
pub(crate) fn receive_buffer(want: usize, ceiling: Option<usize>) -> Option<i32> {
    if want == 0 || ceiling.is_some_and(|c| c < want) {
        return None;
    }
    i32::try_from(want).ok()
}

/// Asks for `want` bytes of receive buffer on each connection `s` accepts
/// or makes (set before it binds or connects), where the kernel allows it.
pub(crate) fn apply(s: &zmq::Socket, want: usize) -> Result<(), MeshError> {
    let ceiling = std::fs::read_to_string(RMEM_MAX)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    match receive_buffer(want, ceiling) {
        Some(bytes) => s.set_rcvbuf(bytes).map_err(zerr("set", "rcvbuf")),
        None => {
            if let Some(c) = ceiling.filter(|_| want > 0) {
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    tracing::info!(
                        rmem_max = c,
                        receive_buffer = want,
                        "net.core.rmem_max is below beacon.receive_buffer: receive buffers are left to the kernel; `sysctl -w net.core.rmem_max={want}` lets large records flow with fewer wake-ups"
                    );
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_only_for_what_the_kernel_allows() {
        assert_eq!(receive_buffer(4 << 20, Some(4 << 20)), Some(4 << 20));
        assert_eq!(receive_buffer(4 << 20, Some(8 << 20)), Some(4 << 20));
        // Capped by a low ceiling it would be smaller than the kernel's
        // own tuning: left alone.
        assert_eq!(receive_buffer(4 << 20, Some(212_992)), None);
        assert_eq!(receive_buffer(0, Some(8 << 20)), None);
        // No ceiling to read (not Linux): asked for as configured.
        assert_eq!(receive_buffer(1 << 20, None), Some(1 << 20));
        assert_eq!(receive_buffer(usize::MAX, None), None);
    }
}
