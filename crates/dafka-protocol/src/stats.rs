//! Counters a node keeps about its traffic, readable from any thread.

use dafka_proto::{DecodeError, MessageId};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Traffic counters of one node. Shared with its handle through an `Arc`.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Valid messages received.
    pub received: AtomicU64,
    /// Messages sent.
    pub sent: AtomicU64,
    /// FETCHes sent: how often this node found a gap and asked for it.
    pub fetches: AtomicU64,
    /// Messages dropped because they did not decode.
    pub malformed: AtomicU64,
    /// Peers connected to, over the node's life.
    pub peers_joined: AtomicU64,
    /// Peers dropped (left or silent).
    pub peers_left: AtomicU64,
    /// Beacons of another node carrying this node's id (a copied store).
    pub twins: AtomicU64,
    /// Subscriptions a peer sent that the protocol never uses, or past the
    /// limit: refused, so they cost no memory.
    pub subscriptions_refused: AtomicU64,
    /// With security on: connections refused because their key is not in
    /// the authorized keys.
    pub keys_refused: AtomicU64,
    /// With security on: messages dropped because the key they came over
    /// is not the key of the node they claim to come from (or is no
    /// longer authorized).
    pub impostors: AtomicU64,
    /// Valid messages received, by [`MessageId::index`].
    pub received_by_kind: [AtomicU64; MessageId::ALL.len()],
    /// Messages sent, by [`MessageId::index`].
    pub sent_by_kind: [AtomicU64; MessageId::ALL.len()],
    /// Malformed messages dropped, by [`DecodeError::kind_index`].
    pub malformed_by_kind: [AtomicU64; DecodeError::KINDS.len()],
    /// Records received (in RECORDs and DIRECT-RECORDs), and their content
    /// bytes.
    pub records_in: AtomicU64,
    /// Content bytes of the records received.
    pub record_bytes_in: AtomicU64,
    /// Records received in DIRECT-RECORDs: answers to FETCHes, that is,
    /// gaps repaired (a store's or producer's view: records served).
    pub records_repaired: AtomicU64,
    /// Records sent, and their content bytes.
    pub records_out: AtomicU64,
    /// Content bytes of the records sent.
    pub record_bytes_out: AtomicU64,
}

impl NodeStats {
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    /// Peers connected now (joined less left).
    pub fn peers(&self) -> u64 {
        Self::get(&self.peers_joined).saturating_sub(Self::get(&self.peers_left))
    }

    /// Waits up to `timeout` until at least `n` peers are connected; says
    /// whether they were. (Polls every 10 ms: a readiness check for
    /// applications and tests, not a hot path.)
    pub fn wait_for_peers(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.peers() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Adds every counter of `other` to this one's: the totals of a node
    /// made of several (a producer of several partitions).
    pub fn absorb(&self, other: &NodeStats) {
        let pairs = [
            (&self.received, &other.received),
            (&self.sent, &other.sent),
            (&self.fetches, &other.fetches),
            (&self.malformed, &other.malformed),
            (&self.peers_joined, &other.peers_joined),
            (&self.peers_left, &other.peers_left),
            (&self.twins, &other.twins),
            (&self.subscriptions_refused, &other.subscriptions_refused),
            (&self.keys_refused, &other.keys_refused),
            (&self.impostors, &other.impostors),
            (&self.records_in, &other.records_in),
            (&self.record_bytes_in, &other.record_bytes_in),
            (&self.records_repaired, &other.records_repaired),
            (&self.records_out, &other.records_out),
            (&self.record_bytes_out, &other.record_bytes_out),
        ];
        let arrays = [
            (&self.received_by_kind[..], &other.received_by_kind[..]),
            (&self.sent_by_kind[..], &other.sent_by_kind[..]),
            (&self.malformed_by_kind[..], &other.malformed_by_kind[..]),
        ];
        let flat = arrays.into_iter().flat_map(|(a, b)| a.iter().zip(b));
        for (mine, theirs) in pairs.into_iter().chain(flat) {
            Self::add(mine, Self::get(theirs));
        }
    }

    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Relaxed);
        }
    }
}

/// Lets a warning through at most once per period (or a few, see
/// [`RateLimit::burst`]), counting the rest, so a peer spraying garbage
/// cannot flood the log.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    burst: u32,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    /// At most one message per `period`.
    pub fn new(period: Duration) -> Self {
        RateLimit::burst(period, 1)
    }

    /// At most `n` messages per `period`: for events that come in small
    /// bunches (nodes joining as a cluster starts) but must not flood.
    pub fn burst(period: Duration, n: u32) -> Self {
        RateLimit {
            period,
            burst: n.max(1),
            window: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` if a message may be logged now, `n` being how many were
    /// suppressed since the last one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|t| now.saturating_duration_since(t) >= self.period);
        if fresh {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_counted() {
        let t = Instant::now();
        let mut r = RateLimit::burst(Duration::from_secs(10), 3);
        let passed: Vec<_> = (0..5).map(|_| r.allow(t)).collect();
        assert_eq!(passed, [Some(0), Some(0), Some(0), None, None]);
        assert_eq!(r.allow(t + Duration::from_secs(10)), Some(2));
        let mut one = RateLimit::new(Duration::from_secs(5));
        assert_eq!(one.allow(t), Some(0));
        assert_eq!(one.allow(t + Duration::from_secs(1)), None);
        assert_eq!(one.allow(t + Duration::from_secs(5)), Some(1));
    }
}

/// A latency histogram any thread may add to and read without locking:
/// counts per bucket of fixed upper bounds, for metrics (a store's synced
/// writes).
#[derive(Debug)]
pub struct LatencyBuckets {
    counts: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// Bucket upper bounds in microseconds: 100 us to 10 s.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 10_000_000,
];

impl Default for LatencyBuckets {
    fn default() -> Self {
        LatencyBuckets {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl LatencyBuckets {
    /// Adds one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// (upper bound in seconds, count in that bucket alone) per bucket, the
    /// last unbounded (`f64::MAX`, which encoders write as +Inf); the sum in seconds; the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Relaxed);
            total += n;
            let bound = LATENCY_BOUNDS_US
                .get(i)
                .map_or(f64::MAX, |&b| b as f64 / 1e6);
            buckets.push((bound, n));
        }
        (buckets, self.sum_us.load(Relaxed) as f64 / 1e6, total)
    }
}
