//! The `[consumer]` section of a Dafka config. Defaults live here only.

use dafka_protocol::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// Where a consumer starts reading a partition it has not seen before.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// From offset 0: everything the stores hold, then live.
    Earliest,
    /// From the first record seen live; nothing older. The default.
    #[default]
    Latest,
}

/// Consumer settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Where to start in a partition not seen before.
    #[serde(deserialize_with = "dafka_protocol::config::any_case")]
    pub offset_reset: OffsetReset,
    /// Milliseconds before an unanswered FETCH is sent again.
    pub fetch_retry: u64,
    /// Most records asked for in one FETCH (small records; larger ones
    /// are asked for by the 4 MiB). 50,000, not the C original's 10,000:
    /// a consumer that joins a producer already sending at a million
    /// records a second must repair the start faster than new records
    /// fill `max_ahead`, and a store answers a FETCH only between its
    /// synced writes.
    pub max_fetch: u32,
    /// Records held per partition while waiting for a gap to be repaired.
    pub max_ahead: usize,
    /// Milliseconds between GET-HEADS refreshes with `earliest`, so that a
    /// partition whose producer came and went unseen is still found in the
    /// stores (like Kafka's metadata refresh).
    pub heads_refresh: u64,
    /// Records delivered but not yet taken by the application. When full,
    /// the consumer stops reading the network; ZeroMQ then drops, and the
    /// gaps are fetched once the application catches up.
    pub queue: usize,
    /// The consumer's name (like Kafka's `group.id`): with one, positions
    /// are committed to the stores and a restarted consumer, on any
    /// machine, resumes from them. Empty: no name, positions in memory.
    pub name: String,
    /// With a name: a record counts as processed, and is committed, when
    /// the application takes the next one (`recv`; with `poll`, a batch
    /// when the next batch is taken); off, only `commit` and
    /// `commit_sync` commit.
    pub auto_commit: bool,
    /// Milliseconds between commits of processed positions.
    pub commit_interval: u64,
    /// Stores that must acknowledge a commit, and answer before a named
    /// consumer starts a topic (like the producer's `min_acks`).
    pub commit_acks: usize,
    /// Start each partition at its first record at or after this time (ms
    /// since the Unix epoch), found by the stores' time index, instead of
    /// at the committed position; partitions no store holds follow
    /// `offset_reset`. 0: off.
    pub from_time: u64,
    /// A consumer group: consumers with the same group share the
    /// partitions of their topics, each read by one member, and commit
    /// positions under the group's name (so `name` stays empty or equal).
    /// Empty: no group.
    pub group: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            offset_reset: OffsetReset::Latest,
            fetch_retry: 500,
            max_fetch: 50_000,
            max_ahead: 100_000,
            heads_refresh: 5000,
            queue: 100_000,
            name: String::new(),
            auto_commit: true,
            commit_interval: 1000,
            commit_acks: 1,
            from_time: 0,
            group: String::new(),
        }
    }
}

impl ConsumerConfig {
    /// Checks every value once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fetch_retry == 0 {
            return Err(ConfigError::new(
                "consumer.fetch_retry",
                "must be at least 1 ms",
            ));
        }
        if self.max_fetch == 0 {
            return Err(ConfigError::new("consumer.max_fetch", "must be at least 1"));
        }
        if self.heads_refresh == 0 {
            return Err(ConfigError::new(
                "consumer.heads_refresh",
                "must be at least 1 ms",
            ));
        }
        if self.queue == 0 {
            return Err(ConfigError::new("consumer.queue", "must be at least 1"));
        }
        if !self.name.is_empty() {
            dafka_proto::validate_topic(&self.name).map_err(|e| {
                ConfigError::new(
                    "consumer.name",
                    format!("{e} (names follow the rules of topic names)"),
                )
            })?;
        }
        self.validate_group()?;
        if self.commit_interval == 0 {
            return Err(ConfigError::new(
                "consumer.commit_interval",
                "must be at least 1 ms",
            ));
        }
        if self.commit_acks == 0 {
            return Err(ConfigError::new(
                "consumer.commit_acks",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_group(&self) -> Result<(), ConfigError> {
        if self.group.is_empty() {
            return Ok(());
        }
        dafka_proto::validate_topic(&self.group).map_err(|e| {
            ConfigError::new(
                "consumer.group",
                format!("{e} (group names follow the rules of topic names)"),
            )
        })?;
        if !self.name.is_empty() && self.name != self.group {
            return Err(ConfigError::new(
                "consumer.name",
                format!(
                    "is {:?} and consumer.group is {:?}: a group commits under its own name (leave consumer.name empty)",
                    self.name, self.group
                ),
            ));
        }
        if self.from_time > 0 {
            return Err(ConfigError::new(
                "consumer.from_time",
                "cannot be used with consumer.group: members start where the group committed",
            ));
        }
        Ok(())
    }

    /// The name positions are committed under: the group's, or the name.
    pub fn position_name(&self) -> &str {
        if self.group.is_empty() {
            &self.name
        } else {
            &self.group
        }
    }

    /// The FETCH retry interval.
    pub fn fetch_retry(&self) -> Duration {
        Duration::from_millis(self.fetch_retry)
    }
}
