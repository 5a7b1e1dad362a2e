//! In-order, gap-free, duplicate-free delivery of one partition.
//!
//! Records arrive live (RECORD) and repaired (DIRECT-RECORD), possibly twice,
//! possibly ahead of a gap. The sequencer hands them on strictly in offset
//! order, drops what it has already passed, and keeps records that arrive
//! ahead of a gap in a bounded buffer, so that repairing a gap costs one
//! FETCH of the gap rather than of everything after it (the C consumer drops
//! them and fetches them all again).
//!
//! It is pure: no clock, no socket. Deciding when to FETCH is [`FetchPacer`]'s.

use dafka_proto::{Fetch, NodeId, Record};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Bounds on the records held ahead of a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AheadLimit {
    /// Most records held.
    pub records: usize,
    /// Most content bytes held.
    pub bytes: usize,
}

impl Default for AheadLimit {
    fn default() -> Self {
        AheadLimit {
            records: 100_000,
            bytes: 64 << 20,
        }
    }
}

/// What became of an offered record.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// It was next; it and any buffered successors are ready, in order.
    Ready,
    /// Already delivered (or already buffered): dropped.
    Duplicate,
    /// Ahead of a gap: held until the gap is filled.
    Held,
    /// Ahead of a gap and the buffer is full: dropped, to be fetched later.
    Dropped,
}

/// One partition's delivery state.
#[derive(Debug)]
pub struct Sequencer {
    next: u64,
    head: Option<u64>,
    ahead: BTreeMap<u64, Record>,
    ahead_bytes: usize,
    limit: AheadLimit,
    /// Running average of record content sizes, to size FETCHes.
    avg_size: usize,
}

/// An exponential running average weighted 1/8 to the newest value (`avg`
/// 0 means no value yet): record sizes, to size FETCHes and queues.
pub fn running_average(avg: usize, value: usize) -> usize {
    if avg == 0 {
        value
    } else {
        avg - avg / 8 + value / 8
    }
}

pub use crate::tuning::{FETCH_BYTES, FETCH_WINDOW};

impl Sequencer {
    /// A partition whose next expected offset is `next`.
    pub fn new(next: u64, limit: AheadLimit) -> Self {
        Sequencer {
            next,
            head: None,
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            limit,
            avg_size: 0,
        }
    }

    /// Most records a FETCH should ask for so its answer stays near
    /// [`FETCH_BYTES`], given the records seen so far.
    pub fn fetch_budget(&self) -> u32 {
        let per = self.avg_size.max(64);
        u32::try_from(FETCH_BYTES / per).unwrap_or(u32::MAX).max(1)
    }

    /// The next offset to be delivered.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The highest offset known to exist, from HEADs and records seen.
    pub fn head(&self) -> Option<u64> {
        self.head
    }

    /// Records that an offset exists (from a HEAD or DIRECT-HEAD).
    pub fn note_head(&mut self, offset: u64) {
        self.head = Some(self.head.map_or(offset, |h| h.max(offset)));
    }

    /// Whether offering a record at `offset` may leave a gap to FETCH:
    /// never for the next record when no gap is known, the common case, so
    /// callers can skip their gap bookkeeping on it.
    pub fn may_leave_gap(&self, offset: u64) -> bool {
        offset != self.next || self.missing().is_some()
    }

    /// Offers a record; ready records are appended to `ready` in order.
    pub fn offer(&mut self, rec: Record, ready: &mut Vec<Record>) -> Offer {
        let off = rec.offset;
        self.note_head(off);
        self.avg_size = running_average(self.avg_size, rec.content.len() + 64);
        if off < self.next || self.ahead.contains_key(&off) {
            return Offer::Duplicate;
        }
        if off > self.next {
            return self.hold(rec);
        }
        ready.push(rec);
        self.next = off.saturating_add(1);
        self.release(ready);
        Offer::Ready
    }

    fn hold(&mut self, rec: Record) -> Offer {
        let full = self.ahead.len() >= self.limit.records
            || self.ahead_bytes + rec.content.len() > self.limit.bytes;
        if full {
            // Keep what is nearest the gap: it is delivered first. Evict the
            // farthest record if the new one is nearer, else drop the new one.
            match self.ahead.last_key_value() {
                Some((&last, _)) if last > rec.offset => self.evict(last),
                _ => return Offer::Dropped,
            }
        }
        self.ahead_bytes += rec.content.len();
        self.ahead.insert(rec.offset, rec);
        Offer::Held
    }

    fn evict(&mut self, offset: u64) {
        if let Some(r) = self.ahead.remove(&offset) {
            self.ahead_bytes -= r.content.len();
        }
    }

    fn release(&mut self, ready: &mut Vec<Record>) {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let r = entry.remove();
            self.ahead_bytes -= r.content.len();
            self.next = r.offset.saturating_add(1);
            ready.push(r);
        }
    }

    /// The first missing range `(from, count)`, if any is known: from the
    /// next offset up to the first held record, or up to the known head.
    pub fn missing(&self) -> Option<(u64, u64)> {
        let end = match self.ahead.first_key_value() {
            Some((&first, _)) => first,
            None => self.head?.checked_add(1)?,
        };
        (end > self.next).then(|| (self.next, end - self.next))
    }

    /// Moves the next offset forward to `offset` (what lies below is gone
    /// for good): held records below it are dropped, those from it on
    /// released into `ready`. Returns the offsets skipped, if any.
    pub fn skip_to(&mut self, offset: u64, ready: &mut Vec<Record>) -> Option<(u64, u64)> {
        if offset <= self.next {
            return None;
        }
        let from = self.next;
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() >= offset {
                break;
            }
            let r = entry.remove();
            self.ahead_bytes -= r.content.len();
        }
        self.next = offset;
        self.release(ready);
        Some((from, offset))
    }

    /// Records held ahead of a gap.
    pub fn held(&self) -> usize {
        self.ahead.len()
    }
}

/// Decides when a FETCH for a gap is due, so a gap is asked for once and
/// asked again only if the answer does not come: repeated HEADs and records
/// past the same gap do not each send a FETCH (the C consumer's fetch filter,
/// plus the retry it lacks).
///
/// Long gaps are fetched in chunks of at most `max` records, up to
/// [`FETCH_WINDOW`] chunks asked for ahead of what has arrived, the next
/// asked for as each arrives, so catch-up streams without waiting a round
/// trip per chunk.
#[derive(Debug)]
pub struct FetchPacer {
    retry: Duration,
    /// What was asked for and not yet all received.
    inflight: Option<Asked>,
}

/// The FETCHes in flight for a gap.
#[derive(Clone, Copy, Debug)]
struct Asked {
    /// Where the answers had reached when the last request went out.
    lo: u64,
    /// The end of everything asked for.
    hi: u64,
    /// When the last request went out.
    at: Instant,
    /// Only the first request is out: it may have been sized before the
    /// records' size was known.
    first: bool,
}

impl FetchPacer {
    /// A pacer that repeats an unanswered FETCH after `retry`.
    pub fn new(retry: Duration) -> Self {
        FetchPacer {
            retry,
            inflight: None,
        }
    }

    /// Given the missing range `(from, count)`, the `(from, count)` to fetch
    /// now, if any.
    pub fn due(
        &mut self,
        missing: Option<(u64, u64)>,
        max: u32,
        now: Instant,
    ) -> Option<(u64, u32)> {
        let (from, count) = missing?;
        let want_end = from.saturating_add(count);
        let max = u64::from(max.max(1));
        if let Some(a) = self.inflight {
            // A first request sized before the records' size was known (the
            // first of a replay) can ask for far more than one answer holds:
            // a store caps answers in bytes, by default at twice what `max`
            // now stands for. Count only that much as asked, so the next
            // chunks follow it, not a retry interval later (which cost every
            // replay of 64 KiB records 0.4 s).
            let hi = if a.first {
                a.hi.min(a.lo.saturating_add(2 * max))
            } else {
                a.hi
            };
            let fresh = now.saturating_duration_since(a.at) < self.retry;
            if fresh && from >= a.lo && from < hi {
                // Answers are arriving: keep the window full.
                let arriving = from > a.lo;
                if arriving && want_end > hi && hi - from <= (FETCH_WINDOW - 1) * max {
                    let n = (want_end - hi).min(max);
                    self.inflight = Some(Asked {
                        lo: from,
                        hi: hi + n,
                        at: now,
                        first: false,
                    });
                    return Some((hi, n as u32));
                }
                return None;
            }
        }
        let n = count.min(max);
        self.inflight = Some(Asked {
            lo: from,
            hi: from + n,
            at: now,
            first: true,
        });
        Some((from, n as u32))
    }

    /// Forgets the request in flight (the gap is closed).
    pub fn clear(&mut self) {
        self.inflight = None;
    }
}

/// A partition delivered in order by a consumer or stored in order by a
/// store: its sequencer, and the pacing of the FETCHes that repair it.
#[derive(Debug)]
pub struct Tracked {
    /// In-order delivery.
    pub seq: Sequencer,
    /// When the current gap may be asked for (again).
    pub pacer: FetchPacer,
    /// Consumers: when the producer was last heard live (a RECORD or a
    /// HEAD), and whether the stores were asked since it fell silent.
    pub live: Option<Instant>,
    /// See `live`.
    pub asked_silent: bool,
}

impl Tracked {
    /// A partition expected from offset `next`.
    pub fn new(next: u64, limit: AheadLimit, retry: Duration) -> Self {
        Tracked {
            seq: Sequencer::new(next, limit),
            pacer: FetchPacer::new(retry),
            live: None,
            asked_silent: false,
        }
    }

    /// The producer was heard live just now.
    pub fn heard_live(&mut self, now: Instant) {
        self.live = Some(now);
        self.asked_silent = false;
    }

    /// The FETCH `sender` should send now for this partition's first gap,
    /// asking at most `max` records, if one is due.
    pub fn fetch_due(
        &mut self,
        topic: &str,
        partition: NodeId,
        sender: NodeId,
        max: u32,
        now: Instant,
    ) -> Option<Fetch> {
        let max = max.min(self.seq.fetch_budget());
        let (offset, count) = self.pacer.due(self.seq.missing(), max, now)?;
        Some(Fetch {
            topic: topic.to_string(),
            partition,
            offset,
            count,
            sender,
        })
    }
}

/// A map with a fast hash (seeded per map): partitions are looked up for
/// every record, and SipHash showed in the store's profile.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Partitions of every topic, by topic, then partition.
pub type Partitions<P> = FastMap<String, FastMap<NodeId, P>>;

/// The state of `partition` of `topic`, made by `make` if new. Looks up
/// before inserting, so the hot path copies no topic name.
pub fn partition_entry<'a, P>(
    parts: &'a mut Partitions<P>,
    topic: &str,
    partition: NodeId,
    make: impl FnOnce() -> P,
) -> &'a mut P {
    if !parts.contains_key(topic) {
        parts.insert(topic.to_string(), FastMap::default());
    }
    parts
        .get_mut(topic)
        .map(|ps| ps.entry(partition).or_insert_with(make))
        .unwrap_or_else(|| unreachable!("inserted above"))
}

/// The (topic, partition) pairs whose state satisfies `gap`: the partitions
/// a periodic scan should consider fetching for.
pub fn gaps<P>(parts: &Partitions<P>, gap: impl Fn(&P) -> bool) -> Vec<(String, NodeId)> {
    parts
        .iter()
        .flat_map(|(t, ps)| {
            ps.iter()
                .filter(|(_, p)| gap(p))
                .map(move |(id, _)| (t.clone(), *id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_proto::NodeId;

    fn rec(offset: u64) -> Record {
        Record {
            topic: "t".into(),
            partition: NodeId([1; 16]),
            offset,
            content: vec![0; 10].into(),
            ..Default::default()
        }
    }

    fn offsets(v: &[Record]) -> Vec<u64> {
        v.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn delivers_in_order_and_drops_duplicates() {
        let mut s = Sequencer::new(0, AheadLimit::default());
        let mut out = Vec::new();
        assert_eq!(s.offer(rec(0), &mut out), Offer::Ready);
        assert_eq!(s.offer(rec(0), &mut out), Offer::Duplicate);
        assert_eq!(s.offer(rec(1), &mut out), Offer::Ready);
        assert_eq!(offsets(&out), [0, 1]);
        assert_eq!(s.missing(), None);
    }

    #[test]
    fn keeps_records_ahead_of_a_gap_and_releases_them_in_order() {
        let mut s = Sequencer::new(0, AheadLimit::default());
        let mut out = Vec::new();
        assert_eq!(s.offer(rec(2), &mut out), Offer::Held);
        assert_eq!(s.offer(rec(3), &mut out), Offer::Held);
        assert_eq!(s.offer(rec(3), &mut out), Offer::Duplicate);
        assert_eq!(s.missing(), Some((0, 2)));
        assert!(out.is_empty());
        s.offer(rec(1), &mut out);
        assert!(out.is_empty());
        s.offer(rec(0), &mut out);
        assert_eq!(offsets(&out), [0, 1, 2, 3]);
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn a_head_reveals_a_gap_at_the_end() {
        let mut s = Sequencer::new(5, AheadLimit::default());
        s.note_head(9);
        assert_eq!(s.missing(), Some((5, 5)));
        s.note_head(3);
        assert_eq!(s.head(), Some(9), "heads never go back");
    }

    #[test]
    fn a_full_buffer_keeps_the_records_nearest_the_gap() {
        let mut s = Sequencer::new(
            0,
            AheadLimit {
                records: 2,
                bytes: usize::MAX,
            },
        );
        let mut out = Vec::new();
        s.offer(rec(5), &mut out);
        s.offer(rec(6), &mut out);
        assert_eq!(s.offer(rec(7), &mut out), Offer::Dropped);
        assert_eq!(s.offer(rec(2), &mut out), Offer::Held, "evicts 6");
        assert_eq!(s.missing(), Some((0, 2)));
        for o in [0, 1, 3, 4] {
            s.offer(rec(o), &mut out);
        }
        assert_eq!(offsets(&out), [0, 1, 2, 3, 4, 5]);
        assert_eq!(s.missing(), Some((6, 2)), "6 and 7 are fetched again");
    }

    #[test]
    fn pacer_asks_once_then_retries_after_the_interval() {
        let mut p = FetchPacer::new(Duration::from_millis(500));
        let t = Instant::now();
        assert_eq!(p.due(Some((0, 10)), 1000, t), Some((0, 10)));
        assert_eq!(
            p.due(Some((0, 10)), 1000, t + Duration::from_millis(100)),
            None
        );
        assert_eq!(
            p.due(Some((0, 12)), 1000, t + Duration::from_millis(100)),
            None
        );
        assert_eq!(
            p.due(Some((0, 12)), 1000, t + Duration::from_millis(500)),
            Some((0, 12))
        );
        assert_eq!(p.due(None, 1000, t), None);
    }

    #[test]
    fn pacer_pipelines_chunks_of_a_long_gap() {
        assert_eq!(FETCH_WINDOW, 4, "the steps below assume four chunks");
        let mut p = FetchPacer::new(Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(p.due(Some((0, 10_000)), 1000, t), Some((0, 1000)));
        // The window fills as the answers start to arrive, a chunk a call.
        assert_eq!(p.due(Some((1, 9_999)), 1000, t), Some((1000, 1000)));
        assert_eq!(p.due(Some((2, 9_998)), 1000, t), Some((2000, 1000)));
        assert_eq!(p.due(Some((3, 9_997)), 1000, t), Some((3000, 1000)));
        assert_eq!(p.due(Some((4, 9_996)), 1000, t), None, "four in flight");
        assert_eq!(p.due(Some((900, 9_100)), 1000, t), None);
        // A chunk's worth arrived: the next one.
        assert_eq!(p.due(Some((1000, 9_000)), 1000, t), Some((4000, 1000)));
        assert_eq!(p.due(Some((1500, 8_500)), 1000, t), None);
        // Never past the gap's end.
        assert_eq!(p.due(Some((2000, 3_100)), 1000, t), Some((5000, 100)));
        assert_eq!(
            p.due(Some((5100, 4_900)), 1000, t),
            Some((5100, 1000)),
            "past the window: a new request"
        );
    }

    #[test]
    fn pacer_shrinks_a_request_sized_before_the_records_were_seen() {
        let mut p = FetchPacer::new(Duration::from_secs(1));
        let t = Instant::now();
        // Sized for small records: 10,000 asked.
        assert_eq!(p.due(Some((0, 10_000)), 10_000, t), Some((0, 10_000)));
        // They are large: 64 fill a chunk, an answer holds 128 at most.
        // The next chunks start after those 128, not after the 10,000.
        assert_eq!(p.due(Some((40, 9_960)), 64, t), Some((128, 64)));
        assert_eq!(p.due(Some((41, 9_959)), 64, t), Some((192, 64)));
        assert_eq!(p.due(Some((42, 9_958)), 64, t), None, "window full");
    }
}
