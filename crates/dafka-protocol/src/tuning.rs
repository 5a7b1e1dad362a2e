//! Every compile-time tuning number of Dafka, in one place.
//!
//! What an operator may change is typed config (`MeshConfig`, and each
//! role's config, with its defaults in its `Default`). What is here is
//! fixed by design; each says why it has the value it has.

use std::time::Duration;

// ----- Runs: records that leave in one ZeroMQ message -----

/// Most records in one message.
pub const RUN_RECORDS: usize = 1024;
/// A run stops growing once its content would pass this many bytes; a
/// record this large goes alone. Keeps one message (and what one ZeroMQ
/// high-water-mark slot can hold) small.
pub const RUN_BYTES: usize = 64 << 10;

// ----- Memory accounting -----

/// What a record costs in memory beyond its content (the `Record`, its
/// topic string, queue slots): used wherever records held are counted in
/// bytes (a producer's unacknowledged records, a consumer's queue).
pub const RECORD_OVERHEAD: usize = 256;
/// Most bytes of records a consumer holds for its application.
pub const CONSUMER_QUEUE_BYTES: usize = 32 << 20;

// ----- Gap repair -----

/// Bytes a FETCH asks for at most, estimated from the records seen so far:
/// half the store's default reply cap (`store.max_fetch_reply_bytes`, 8 MiB),
/// so that a store answers all of a request and the next one can be asked
/// for while the answer arrives, not after a retry timeout.
pub const FETCH_BYTES: usize = 4 << 20;
/// FETCH chunks of a long gap asked for ahead of the answers arriving. With
/// one and a half (the next chunk asked for half-way through the current
/// one), a consumer that joined a producer of 64 KiB records late repaired
/// about 140 MB/s while the producer sent 300-400 MB/s: it fetched nearly
/// every record and never caught up. The answers of a busy store come
/// tens of milliseconds apart; more of them in flight keep the link full.
pub const FETCH_WINDOW: u64 = 4;
/// How often consumers and stores scan their partitions for a FETCH that
/// needs repeating (the retry interval itself is config: `fetch_retry`).
pub const RETRY_SCAN: Duration = Duration::from_millis(50);

// ----- The store -----

/// Most partitions a store knows only from HEADs (no record yet) at once: a
/// peer inventing partitions cannot grow the store without bound.
pub const MAX_PENDING_PARTITIONS: usize = 10_000;
/// How long a store keeps a partition known only from HEADs after its last
/// HEAD. A live producer sends one every `producer.head_interval` (1 s).
pub const PENDING_TTL: Duration = Duration::from_secs(60);
/// A store compares duplicates with the stored record at most this often
/// per partition: a conflicting writer sends nothing but conflicts, so the
/// first check finds it, and a burst of true duplicates costs few reads.
pub const DUP_CHECK_EVERY: Duration = Duration::from_millis(20);

/// A batch this large is written at once, whatever `store.commit_delay`
/// says: under load there is nothing to gain from waiting.
pub const COMMIT_RECORDS: usize = 1024;
/// Likewise for a batch holding this many content bytes (16 records of
/// 64 KiB): large records gain nothing from waiting either.
pub const COMMIT_BYTES: usize = 1 << 20;
/// Most bytes in one store write, counted as a producer counts its unACKed
/// records (content and [`RECORD_OVERHEAD`] each). What arrives during a
/// write is the next one; unbounded, that write would hold everything a
/// producer's unACKed budget let out, and its ACKs would come only when all
/// of it is synced: with half of the default budget (32 MiB) in a write,
/// the producer sends the next write's records while this one syncs. A
/// write pays fixed syncs (table file, its directory, the manifest, the
/// log): about 6 ms a write on this machine's disk, so larger writes win.
/// Against 8 MiB of content, alternating runs: 64 KiB records ACKed
/// 10,600-11,900 vs 9,900-10,100 msg/s; 100 B within noise.
pub const WRITE_BYTES: usize = 16 << 20;

// ----- The producer -----

/// How often a producer taking over a partition asks the stores again where
/// it stands.
pub const CLAIM_ASK_EVERY: Duration = Duration::from_millis(250);
/// Publishes queued for a producer's driver at most; a publisher past it
/// waits (the driver takes them as fast as the memory bound allows).
pub const PUBLISH_QUEUE: usize = 16_384;
/// Delivery reports kept for an application that does not read them; past
/// that, reports merge into later, larger steps (never a gap).
pub const DELIVERY_REPORTS: usize = 1024;

// ----- The driver loop and its sockets -----

/// Most data messages read per turn, so timers and commands still get a
/// turn under a flood.
pub const READ_BATCH: usize = 4096;
/// Most bytes read in one turn: with large records, a batch bounded only in
/// messages could hold (and a store write) hundreds of megabytes at once.
/// A store starts its first write at the end of its first turn, so this is
/// also how long a burst waits for its first sync: 1 MiB (about 10,000
/// records of 100 B) against 4 MiB gave 300,000-record acknowledged runs
/// 15-35 % more throughput, bursts 10-25 % more, replay no less.
pub const READ_BATCH_BYTES: usize = 1 << 20;
/// Most commands taken from the application in one go. An application
/// that publishes faster than its producer sends kept the producer taking
/// commands until its whole unacked budget was in (about 90,000 records of
/// 100 B, some 30 ms) before one record left: stores and consumers idled
/// meanwhile, and a short run paid that delay on top. Bounded, the records
/// taken leave in the same turn, while the application publishes on.
pub const COMMANDS_PER_TURN: usize = 4096;
/// Frames read from one message at most; the rest are discarded.
pub const MAX_FRAMES: usize = 4;
/// Longest the loop sleeps with nothing to do; a safety net only.
pub const IDLE: Duration = Duration::from_secs(1);
/// While the application is behind, how soon a consumer looks again for
/// room in its queue.
pub const BEHIND_RETRY: Duration = Duration::from_millis(2);
/// Longest a wake-up of the driver may block: only if the driver stopped.
pub const WAKE_TIMEOUT: Duration = Duration::from_millis(100);
/// Wake-up signals queued at most: the driver drains them all each turn,
/// and one is enough to wake it.
pub const WAKE_HWM: i32 = 1000;
/// Unsubscriptions (each one a peer's prefix freed by libzmq) after which
/// the freed memory is handed back to the operating system.
pub const TRIM_AFTER_UNSUBSCRIPTIONS: usize = 1000;
/// How long after the last such unsubscription the memory is handed back.
pub const TRIM_DELAY: Duration = Duration::from_millis(200);
/// How long a node waits for any tower before saying none answers.
pub const TOWER_SILENCE: Duration = Duration::from_secs(3);
/// Messages queued on a node's beacon sockets (beacons are small and few).
pub const BEACON_HWM: i32 = 1000;
/// Messages queued on the socket that hears towers' peer lists.
pub const TOWER_LIST_HWM: i32 = 10_000;
/// How long a closing socket may still deliver what it holds.
pub const LINGER_MS: i32 = 200;

// ----- Logging -----

/// Warnings about one kind of trouble: one per this period, with a count of
/// those suppressed.
pub const WARN_PERIOD: Duration = Duration::from_secs(5);
/// Info lines (peers joined, partitions opened, gaps repaired) come in
/// bunches of [`INFO_BURST`] per this period.
pub const INFO_PERIOD: Duration = Duration::from_secs(1);
/// See [`INFO_PERIOD`].
pub const INFO_BURST: u32 = 20;

/// A consumer asks the stores for a partition's head when its producer has
/// been silent this long (two default HEAD intervals): a tail dropped at a
/// high-water mark after the producer's last HEAD is otherwise found only
/// by the next heads refresh.
pub const SILENT_PRODUCER: Duration = Duration::from_secs(2);
