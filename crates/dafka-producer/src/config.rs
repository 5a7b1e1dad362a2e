//! The `[producer]` section of a Dafka config. Defaults live here only.

use dafka_node::ConfigError;
use serde::Deserialize;
use std::time::Duration;

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
    /// Content bytes kept awaiting ACKs before `publish` blocks: back
    /// pressure instead of unbounded memory when no store keeps up.
    pub max_unacked_bytes: usize,
    /// Most DIRECT-RECORDs sent in answer to one FETCH.
    pub max_fetch_reply: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            head_interval: 1000,
            min_acks: 1,
            close_timeout: 30_000,
            max_unacked_bytes: 128 << 20,
            max_fetch_reply: 100_000,
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
        Ok(())
    }

    /// The HEAD interval.
    pub fn head_interval(&self) -> Duration {
        Duration::from_millis(self.head_interval)
    }
}
