//! The whole Dafka config: one typed struct per component, loaded in layers.
//!
//! Precedence, lowest first: the defaults (each component's `Default`, the
//! C original's values), a TOML file, `DAFKA_*` environment variables, then
//! whatever the caller sets in code (the command-line tools put their flags
//! there). The result is validated once; a bad value is one error line.
//!
//! ```toml
//! [beacon]
//! sub_address = "tcp://127.0.0.1:5556"   # towers' beacon inputs, comma-separated
//! pub_address = "tcp://127.0.0.1:5557"   # towers' beacon outputs
//! interval = 1000                        # ms between beacons
//! timeout = 4000                         # ms of silence before a peer is dropped
//!
//! [producer]
//! head_interval = 1000
//! min_acks = 1
//!
//! [consumer]
//! offset_reset = "latest"                # or "earliest"
//!
//! [store]
//! db = "storedb"
//! fsync = "always"                       # or "interval" or "never"
//! fsync_interval = 100                   # ms between syncs under "interval"
//!
//! [tower]
//! sub_address = "tcp://*:5556"
//! pub_address = "tcp://*:5557"
//! ```
//!
//! Environment variables name a key as `DAFKA_<SECTION>__<KEY>`, for example
//! `DAFKA_BEACON__SUB_ADDRESS=tcp://10.0.0.5:5556` or
//! `DAFKA_CONSUMER__OFFSET_RESET=earliest`.

use dafka_consumer::ConsumerConfig;
use dafka_node::MeshConfig;
use dafka_producer::ProducerConfig;
use dafka_store::StoreConfig;
use dafka_tower::TowerConfig;
use serde::Deserialize;
use std::path::Path;
use thiserror::Error;

/// Every component's settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Discovery: towers, beacon timing, transport.
    pub beacon: MeshConfig,
    /// Producers.
    pub producer: ProducerConfig,
    /// Consumers.
    pub consumer: ConsumerConfig,
    /// Stores.
    pub store: StoreConfig,
    /// Towers.
    pub tower: TowerConfig,
}

/// A config that cannot be loaded or does not validate.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read or parsed, or a value has the wrong type.
    #[error("{0}")]
    Load(String),
    /// A value is out of range.
    #[error(transparent)]
    Invalid(#[from] dafka_node::ConfigError),
}

impl Config {
    /// Loads defaults, then `file` (if given), then `DAFKA_*` variables.
    /// Does not validate: set any overrides, then call [`Config::validate`].
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut b = config::Config::builder();
        if let Some(f) = file {
            if !f.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} not found",
                    f.display()
                )));
            }
            b = b.add_source(config::File::from(f).format(config::FileFormat::Toml));
        }
        let env = config::Environment::with_prefix("DAFKA")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true);
        finish(b.add_source(env))
    }

    /// Parses a TOML document over the defaults (no environment).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let src = config::File::from_str(text, config::FileFormat::Toml);
        finish(config::Config::builder().add_source(src))
    }

    /// Checks every section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.beacon.validate()?;
        self.producer.validate()?;
        self.consumer.validate()?;
        self.store.validate()?;
        self.tower.validate()?;
        Ok(())
    }
}

/// Merges the layers of `b` over the defaults; any fault is one `Load` line.
fn finish(b: config::ConfigBuilder<config::builder::DefaultState>) -> Result<Config, ConfigError> {
    let load = |e: config::ConfigError| ConfigError::Load(e.to_string());
    b.build().map_err(load)?.try_deserialize().map_err(load)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka_consumer::OffsetReset;

    #[test]
    fn defaults_are_the_c_originals() {
        let c = Config::default();
        assert_eq!(c.beacon.sub_address, "tcp://127.0.0.1:5556");
        assert_eq!(c.beacon.pub_address, "tcp://127.0.0.1:5557");
        assert_eq!((c.beacon.interval, c.beacon.timeout), (1000, 4000));
        assert_eq!(c.producer.head_interval, 1000);
        assert_eq!(c.beacon.high_watermark, 1000);
        assert_eq!(c.consumer.offset_reset, OffsetReset::Latest);
        assert_eq!(c.store.db.to_str(), Some("storedb"));
        assert_eq!(
            (c.tower.sub_address.as_str(), c.tower.pub_address.as_str()),
            ("tcp://*:5556", "tcp://*:5557")
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let c =
            Config::from_toml("[consumer]\noffset_reset = \"earliest\"\n[beacon]\ninterval = 50\n")
                .expect("parse");
        assert_eq!(c.consumer.offset_reset, OffsetReset::Earliest);
        assert_eq!(c.beacon.interval, 50);
        assert_eq!(c.beacon.timeout, 4000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_one_clear_error() {
        let e = Config::from_toml("[beacon]\nintervall = 5\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("intervall"), "{e}");
        let c = Config::from_toml("[beacon]\ninterval = 5000\n").expect("parse");
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            e,
            "beacon.timeout: must be longer than beacon.interval (5000 ms)"
        );
        let e = Config::from_toml("[consumer]\noffset_reset = \"middle\"\n")
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("middle"));
    }

    #[test]
    fn the_reliability_keys_are_checked() {
        let err = |toml: &str| {
            Config::from_toml(toml)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate().map_err(|e| e.to_string()))
                .err()
                .unwrap_or_default()
        };
        assert!(err("[store]\nfsync = \"interval\"\nfsync_interval = 0\n")
            .starts_with("store.fsync_interval:"));
        assert!(err("[store]\nmax_fetch_reply_bytes = 1024\n")
            .starts_with("store.max_fetch_reply_bytes:"));
        assert!(
            err("[producer]\nid = \"0123456789abcdef0123456789abcdef\"\n")
                .starts_with("producer.id: needs producer.state_dir")
        );
        assert!(err("[producer]\nid = \"nope\"\nstate_dir = \"/tmp/x\"\n")
            .starts_with("producer.id: must be a UUID"));
        let ok = "[store]\nfsync = \"interval\"\n[producer]\nstate_dir = \"/tmp/x\"\n";
        assert_eq!(err(ok), "");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Config::load(Some(Path::new("/nonexistent/dafka.toml")))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("config file /nonexistent/dafka.toml not found")
        );
    }
}
