//! The `[producer]` section of a Dafka config. Defaults live here only.

use crate::spool::SpoolSync;
use dafka_proto::NodeId;
use dafka_protocol::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// When the producer's spool reaches the disk (see `state_dir`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpoolFsync {
    /// Never wait for the disk: a record `publish` accepted survives a crash
    /// of the producer, not a power cut. The default.
    #[default]
    Never,
    /// Sync every record before `publish` returns: it survives a power cut.
    /// Costs a disk sync per record.
    Always,
    /// Sync at most every `spool_fsync_interval` ms (and when that much time
    /// has passed with unsynced records): a power cut loses at most the last
    /// interval's records.
    Interval,
}

/// Most partitions one producer owns: each is a node with its own sockets
/// and thread.
pub const MAX_PARTITIONS: usize = 256;

/// Producer settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProducerConfig {
    /// Milliseconds between HEAD messages once the first record is out.
    pub head_interval: u64,
    /// Distinct stores that must ACK a record before it counts as delivered
    /// and the producer lets go of it.
    pub min_acks: usize,
    /// Milliseconds `close` waits for outstanding ACKs before giving up and
    /// reporting how many records were left unacknowledged.
    pub close_timeout: u64,
    /// Bytes kept awaiting ACKs before `publish` blocks: back pressure
    /// instead of unbounded memory when no store keeps up. Each record counts
    /// its content plus 256 bytes, so small records are bounded too.
    pub max_unacked_bytes: usize,
    /// Most DIRECT-RECORDs sent in answer to one FETCH.
    pub max_fetch_reply: u32,
    /// A directory where the producer spools every record until it is
    /// ACKed and remembers its partition, so a restart continues the same
    /// partition and re-offers what was not ACKed. Empty: no spool, a new
    /// partition on every start.
    pub state_dir: String,
    /// The partition (a UUID) to produce to. Needs `state_dir`, which holds
    /// the partition's next offset. Empty: the state directory's partition,
    /// or a new one.
    pub id: String,
    /// Whether the spool in `state_dir` is synced to disk, and when.
    #[serde(deserialize_with = "dafka_protocol::config::any_case")]
    pub spool_fsync: SpoolFsync,
    /// Milliseconds between spool syncs under `spool_fsync = "interval"`.
    pub spool_fsync_interval: u64,
    /// Milliseconds a producer taking over a partition whose history its
    /// state directory does not hold (a new `state_dir` with a known `id`)
    /// waits for the stores to say where the partition stands before it
    /// refuses to publish.
    pub claim_timeout: u64,
    /// Partitions a [`crate::TopicProducer`] owns of its topic, each with
    /// its own id, offsets and spool (`state_dir/p0`, `p1`, …). A record
    /// with a key goes to the partition its key hashes to, so one key's
    /// records stay in order; without a key, round robin.
    pub partitions: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            head_interval: 1000,
            min_acks: 1,
            close_timeout: 30_000,
            max_unacked_bytes: 32 << 20,
            max_fetch_reply: 100_000,
            state_dir: String::new(),
            id: String::new(),
            spool_fsync: SpoolFsync::Never,
            spool_fsync_interval: 100,
            claim_timeout: 10_000,
            partitions: 1,
        }
    }
}

impl ProducerConfig {
    /// Checks every value once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.head_interval == 0 {
            return Err(ConfigError::new(
                "producer.head_interval",
                "must be at least 1 ms",
            ));
        }
        if self.min_acks == 0 {
            return Err(ConfigError::new("producer.min_acks", "must be at least 1"));
        }
        if self.max_unacked_bytes == 0 {
            return Err(ConfigError::new(
                "producer.max_unacked_bytes",
                "must be at least 1",
            ));
        }
        if self.max_fetch_reply == 0 {
            return Err(ConfigError::new(
                "producer.max_fetch_reply",
                "must be at least 1",
            ));
        }
        if self.spool_fsync == SpoolFsync::Interval && self.spool_fsync_interval == 0 {
            return Err(ConfigError::new(
                "producer.spool_fsync_interval",
                "must be at least 1 ms (or use spool_fsync = \"always\")",
            ));
        }
        if self.claim_timeout == 0 {
            return Err(ConfigError::new(
                "producer.claim_timeout",
                "must be at least 1 ms",
            ));
        }
        if self.partitions == 0 {
            return Err(ConfigError::new(
                "producer.partitions",
                "must be at least 1",
            ));
        }
        if self.partitions > MAX_PARTITIONS {
            return Err(ConfigError::new(
                "producer.partitions",
                format!("at most {MAX_PARTITIONS} (each is a node of its own on the mesh)"),
            ));
        }
        if self.partitions > 1 && !self.id.is_empty() {
            return Err(ConfigError::new(
                "producer.id",
                "names one partition: it cannot be used with producer.partitions above 1",
            ));
        }
        self.partition_id()?;
        if !self.id.is_empty() && self.state_dir.is_empty() {
            return Err(ConfigError::new(
                "producer.id",
                "needs producer.state_dir, where the partition's next offset is kept",
            ));
        }
        Ok(())
    }

    /// The configured partition id, if any.
    pub fn partition_id(&self) -> Result<Option<NodeId>, ConfigError> {
        if self.id.is_empty() {
            return Ok(None);
        }
        uuid::Uuid::parse_str(&self.id)
            .map(|u| Some(NodeId(*u.as_bytes())))
            .map_err(|_| ConfigError::new("producer.id", "must be a UUID"))
    }

    /// How the spool syncs its appends.
    pub fn spool_sync(&self) -> SpoolSync {
        match self.spool_fsync {
            SpoolFsync::Never => SpoolSync::Never,
            SpoolFsync::Always => SpoolSync::Always,
            SpoolFsync::Interval => {
                SpoolSync::Every(Duration::from_millis(self.spool_fsync_interval))
            }
        }
    }

    /// The HEAD interval.
    pub fn head_interval(&self) -> Duration {
        Duration::from_millis(self.head_interval)
    }
}
