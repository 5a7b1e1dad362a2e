//! The `[store]` section of a Dafka config. Defaults live here only.

use crate::storage::{Retention, SyncPolicy, WalRecovery};
use dafka_protocol::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// When a store's writes reach the disk, and so what an ACK promises.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Every batch's write-ahead log is synced before its ACK: an ACKed
    /// record survives power loss. The default.
    #[default]
    Always,
    /// The write-ahead log is synced at most every `store.fsync_interval`
    /// milliseconds, before the ACK of the batch that triggers the sync: an
    /// ACKed record survives a crash of the store process, and power loss
    /// unless it was ACKed within the last interval.
    Interval,
    /// Never wait for the disk: an ACKed record survives a crash of the
    /// store process, not of the machine.
    Never,
}

/// What a store does when its write-ahead log ends in a damaged or
/// incomplete record at start-up.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WalRecoveryMode {
    /// Keep what precedes the damage and log at error level what was
    /// dropped (a crash mid-write leaves such a tail). The default.
    #[default]
    PointInTime,
    /// Refuse to start, so an operator decides.
    Refuse,
}

/// Store settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The RocksDB directory (created if missing).
    pub db: PathBuf,
    /// The durability policy.
    #[serde(deserialize_with = "dafka_protocol::config::any_case")]
    pub fsync: Fsync,
    /// Milliseconds between syncs under `fsync = "interval"`.
    pub fsync_interval: u64,
    /// Most records sent in answer to one FETCH (consumers ask for up to
    /// 50,000, `consumer.max_fetch`).
    pub max_fetch_reply: u32,
    /// Most content bytes sent in answer to one FETCH.
    pub max_fetch_reply_bytes: usize,
    /// Most records the store asks for in one FETCH of its own gap.
    pub max_fetch: u32,
    /// Milliseconds before an unanswered FETCH is sent again.
    pub fetch_retry: u64,
    /// Start-up with a damaged or incomplete write-ahead log.
    #[serde(deserialize_with = "dafka_protocol::config::any_case")]
    pub wal_recovery: WalRecoveryMode,
    /// Microseconds a store waits for more records before a synced write
    /// (group commit): at a few thousand records a second, each alone would
    /// cost a disk sync, and the syncs' kernel time slows everything else on
    /// the machine. Under load batches fill at once and nothing waits. Adds
    /// at most this much to an ACK; 0 writes every batch at once. Only with
    /// `fsync` `always` or `interval`.
    pub commit_delay: u64,
    /// How long records are kept after their timestamp: milliseconds or a
    /// duration ("7d"); 0 keeps them forever (the default: Kafka's is 7
    /// days). Counted from the highest timestamp so far in the partition.
    #[serde(deserialize_with = "retention_ms")]
    pub retention_ms: u64,
    /// Bytes each partition keeps at most (the oldest runs go): a number
    /// or a size ("10GiB"); 0 means no limit, the default.
    #[serde(deserialize_with = "retention_bytes")]
    pub retention_bytes: u64,
    /// How often retention is enforced: milliseconds or a duration.
    #[serde(deserialize_with = "retention_check")]
    pub retention_check: u64,
    /// Bytes of each RocksDB memtable (two are kept): records written
    /// since the last flush sit in memory and in the write-ahead log, so
    /// this is also about how far the data directory may exceed the
    /// retention limits. A number or a size ("8MiB"); at least 64 KiB.
    #[serde(deserialize_with = "write_buffer")]
    pub write_buffer: u64,
    /// Topics with their own limits (`[[store.topic]]` tables with `name`,
    /// `retention_ms`, `retention_bytes`); the others use the limits above.
    pub topic: Vec<TopicRetention>,
}

/// One topic's retention limits (`[[store.topic]]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicRetention {
    /// The topic.
    pub name: String,
    /// As `store.retention_ms`, for this topic (default: that value).
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention_ms: Option<u64>,
    /// As `store.retention_bytes`, for this topic (default: that value).
    #[serde(default, deserialize_with = "opt_size")]
    pub retention_bytes: Option<u64>,
}

/// Names the setting in a value's error (the config crate names only the
/// section).
fn keyed<T, E: serde::de::Error>(key: &str, r: Result<T, E>) -> Result<T, E> {
    r.map_err(|e| E::custom(format!("{key}: {e}")))
}

fn retention_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    keyed("store.retention_ms", dafka_protocol::config::duration_ms(d))
}

fn retention_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    keyed(
        "store.retention_bytes",
        dafka_protocol::config::byte_size(d),
    )
}

fn retention_check<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    keyed(
        "store.retention_check",
        dafka_protocol::config::duration_ms(d),
    )
}

fn write_buffer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    keyed("store.write_buffer", dafka_protocol::config::byte_size(d))
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    keyed(
        "store.topic.retention_ms",
        dafka_protocol::config::duration_ms(d),
    )
    .map(Some)
}

fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    keyed(
        "store.topic.retention_bytes",
        dafka_protocol::config::byte_size(d),
    )
    .map(Some)
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            db: PathBuf::from("storedb"),
            fsync: Fsync::Always,
            fsync_interval: 100,
            max_fetch_reply: 50_000,
            max_fetch_reply_bytes: 8 << 20,
            max_fetch: 10_000,
            fetch_retry: 1000,
            wal_recovery: WalRecoveryMode::PointInTime,
            commit_delay: 1000,
            retention_ms: 0,
            retention_bytes: 0,
            retention_check: 30_000,
            write_buffer: crate::rocks::DEFAULT_WRITE_BUFFER as u64,
            topic: Vec::new(),
        }
    }
}

impl StoreConfig {
    /// Checks every value once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.db.as_os_str().is_empty() {
            return Err(ConfigError::new("store.db", "must name a directory"));
        }
        for (key, v) in [
            ("store.max_fetch_reply", self.max_fetch_reply),
            ("store.max_fetch", self.max_fetch),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.max_fetch_reply_bytes < dafka_protocol::tuning::FETCH_BYTES {
            // Askers size their FETCHes to FETCH_BYTES; a smaller cap would
            // cut every answer short and stall them until a retry.
            return Err(ConfigError::new(
                "store.max_fetch_reply_bytes",
                format!("must be at least {}", dafka_protocol::tuning::FETCH_BYTES),
            ));
        }
        if self.fsync == Fsync::Interval && self.fsync_interval == 0 {
            return Err(ConfigError::new(
                "store.fsync_interval",
                "must be at least 1 ms (or use fsync = \"always\")",
            ));
        }
        if self.commit_delay > 1_000_000 {
            return Err(ConfigError::new(
                "store.commit_delay",
                "must be at most 1000000 (1 s): it delays every ACK",
            ));
        }
        if self.fetch_retry == 0 {
            return Err(ConfigError::new(
                "store.fetch_retry",
                "must be at least 1 ms",
            ));
        }
        if self.write_buffer < 64 << 10 {
            return Err(ConfigError::new(
                "store.write_buffer",
                "must be at least 64 KiB",
            ));
        }
        if self.retention_check == 0 {
            return Err(ConfigError::new(
                "store.retention_check",
                "must be at least 1 ms",
            ));
        }
        for t in &self.topic {
            dafka_proto::validate_topic(&t.name)
                .map_err(|e| ConfigError::new("store.topic.name", format!("'{}': {e}", t.name)))?;
        }
        Ok(())
    }

    /// The retention rules, topic limits resolved against the defaults.
    pub fn retention(&self) -> Retention {
        Retention {
            ms: self.retention_ms,
            bytes: self.retention_bytes,
            topics: self
                .topic
                .iter()
                .map(|t| {
                    let ms = t.retention_ms.unwrap_or(self.retention_ms);
                    let bytes = t.retention_bytes.unwrap_or(self.retention_bytes);
                    (t.name.clone(), ms, bytes)
                })
                .collect(),
        }
    }

    /// The memtable size.
    pub fn write_buffer_bytes(&self) -> usize {
        usize::try_from(self.write_buffer).unwrap_or(usize::MAX)
    }

    /// How often retention is enforced.
    pub fn retention_check(&self) -> Duration {
        Duration::from_millis(self.retention_check)
    }

    /// How the storage syncs its writes.
    pub fn sync_policy(&self) -> SyncPolicy {
        match self.fsync {
            Fsync::Always => SyncPolicy::Always,
            Fsync::Interval => SyncPolicy::Every(Duration::from_millis(self.fsync_interval)),
            Fsync::Never => SyncPolicy::Never,
        }
    }

    /// How the storage recovers its write-ahead log.
    pub fn wal_recovery(&self) -> WalRecovery {
        match self.wal_recovery {
            WalRecoveryMode::PointInTime => WalRecovery::PointInTime,
            WalRecoveryMode::Refuse => WalRecovery::Refuse,
        }
    }

    /// How long a batch may wait for more records before its synced write.
    pub fn commit_delay(&self) -> Duration {
        match self.fsync {
            Fsync::Never => Duration::ZERO,
            _ => Duration::from_micros(self.commit_delay),
        }
    }

    /// The FETCH retry interval.
    pub fn fetch_retry(&self) -> Duration {
        Duration::from_millis(self.fetch_retry)
    }
}
