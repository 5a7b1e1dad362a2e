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
//!
//! [security]                             # off unless enabled (see the README)
//! enabled = true
//! secret_key_file = "node1.secret"       # from dafka_keygen node1
//! authorized_keys = "authorized_keys"    # public keys allowed in, one a line
//! tower_keys = "KEY"                     # each tower's public key, in order
//! ```
//!
//! Environment variables name a key as `DAFKA_<SECTION>__<KEY>` (two
//! underscores between section and key), for example
//! `DAFKA_BEACON__SUB_ADDRESS=tcp://10.0.0.5:5556` or
//! `DAFKA_CONSUMER__OFFSET_RESET=earliest`. Other `DAFKA_` variables
//! (`DAFKA_HOME`) are not configuration and are left alone;
//! [`Config::env_warnings`] names those that look like a mistyped key.
//!
//! A tool loads only the sections it uses ([`Config::load_for`]): a bad
//! `DAFKA_STORE__FSYNC` stops a store, not a consumer. Every error is one
//! line that names the file or the variable, and the key.

use config::{Value, ValueKind};
use dafka_consumer::ConsumerConfig;
use dafka_producer::ProducerConfig;
use dafka_protocol::{MeshConfig, SecurityConfig};
use dafka_store::StoreConfig;
use dafka_tower::TowerConfig;
use serde::de::DeserializeOwned;
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

/// One section of a config file (`[beacon]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `[beacon]`: discovery and transport, used by every node.
    Beacon,
    /// `[producer]`.
    Producer,
    /// `[consumer]`.
    Consumer,
    /// `[store]`.
    Store,
    /// `[tower]`.
    Tower,
    /// `[security]`: CURVE keys, for nodes and towers alike (loaded
    /// whenever `[beacon]` or `[tower]` is).
    Security,
}

impl Section {
    /// Every section.
    pub const ALL: [Section; 6] = [
        Section::Beacon,
        Section::Producer,
        Section::Consumer,
        Section::Store,
        Section::Tower,
        Section::Security,
    ];

    /// Its name in a file and (upper-cased) in a variable.
    pub fn name(self) -> &'static str {
        match self {
            Section::Beacon => "beacon",
            Section::Producer => "producer",
            Section::Consumer => "consumer",
            Section::Store => "store",
            Section::Tower => "tower",
            Section::Security => "security",
        }
    }

    fn named(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A config that cannot be loaded or does not validate.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read or parsed, or a value has the wrong type.
    #[error("{0}")]
    Load(String),
    /// A value is out of range.
    #[error(transparent)]
    Invalid(#[from] dafka_protocol::ConfigError),
}

/// A `DAFKA_<SECTION>__<KEY>` variable that applies.
struct EnvVar {
    name: String,
    section: Section,
    key: String,
    value: String,
}

impl Config {
    /// Loads every section: defaults, then `file` (if given), then
    /// `DAFKA_*` variables. Does not validate: set any overrides, then call
    /// [`Config::validate`].
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_for(file, &Section::ALL)
    }

    /// Like [`Config::load`], for a tool that uses only the sections in
    /// `uses`: the others keep their defaults and are not checked, in the
    /// file or in the environment.
    pub fn load_for(file: Option<&Path>, uses: &[Section]) -> Result<Config, ConfigError> {
        load_from(file, uses, std::env::vars_os())
    }

    /// Parses a TOML document over the defaults (no environment).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let src = config::File::from_str(text, config::FileFormat::Toml);
        let b = config::Config::builder().add_source(src);
        check_layer(b.clone(), &Section::ALL).map_err(ConfigError::Load)?;
        let built = b.build().map_err(|e| ConfigError::Load(e.to_string()))?;
        assemble(&built, &Section::ALL).map_err(ConfigError::Load)
    }

    /// `DAFKA_` variables that look like a mistyped key
    /// (`DAFKA_BEACON_INTERVAL`, one underscore; `DAFKA_BEACONS__INTERVAL`),
    /// one warning each, for a tool to print. Others (`DAFKA_HOME`) are not
    /// configuration and get none.
    pub fn env_warnings() -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter_map(|name| env_warning(&name))
            .collect()
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

/// [`Config::load_for`] with the environment given (tests pass their own).
fn load_from(
    file: Option<&Path>,
    uses: &[Section],
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Config, ConfigError> {
    let mut uses = uses.to_vec();
    if uses
        .iter()
        .any(|s| matches!(s, Section::Beacon | Section::Tower))
        && !uses.contains(&Section::Security)
    {
        uses.push(Section::Security);
    }
    let uses = &uses[..];
    let mut all = config::Config::builder();
    if let Some(f) = file {
        let src = config::File::from_str(&read_file(f)?, config::FileFormat::Toml);
        let alone = config::Config::builder().add_source(src.clone());
        let in_file = |e: String| ConfigError::Load(format!("config file {}: {e}", f.display()));
        check_layer(alone, uses).map_err(in_file)?;
        all = all.add_source(src);
    }
    for var in env_vars(vars, uses)? {
        let path = format!("{}.{}", var.section.name(), var.key);
        let in_var =
            |e: String| ConfigError::Load(format!("environment variable {}: {e}", var.name));
        let alone = config::Config::builder().set_override(&path, var.value.clone());
        check_layer(alone.map_err(|e| in_var(e.to_string()))?, &[var.section]).map_err(in_var)?;
        all = all
            .set_override(&path, var.value)
            .map_err(|e| in_var(e.to_string()))?;
    }
    let built = all.build().map_err(|e| ConfigError::Load(e.to_string()))?;
    assemble(&built, uses).map_err(ConfigError::Load)
}

/// A config file's text; says when `f` is missing, a directory or unreadable.
fn read_file(f: &Path) -> Result<String, ConfigError> {
    let fail = |why: &str| ConfigError::Load(format!("config file {}: {why}", f.display()));
    if f.is_dir() {
        return Err(fail("is a directory, not a TOML file"));
    }
    std::fs::read_to_string(f).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail("not found"),
        std::io::ErrorKind::InvalidData => fail("is not UTF-8 text"),
        _ => fail(&e.to_string()),
    })
}

/// Checks one layer (a file or a variable) on its own, so its error can name
/// it: TOML syntax, known sections only, whole numbers where numbers are
/// wanted, and each used section's keys and types.
fn check_layer(
    b: config::ConfigBuilder<config::builder::DefaultState>,
    uses: &[Section],
) -> Result<(), String> {
    let built = b.build().map_err(|e| one_line(&e.to_string()))?;
    if let ValueKind::Table(top) = &built.cache.kind {
        for (name, v) in top {
            let Some(section) = Section::named(name) else {
                let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
                return Err(format!(
                    "unknown section [{name}]; the sections are {}",
                    names.join(", ")
                ));
            };
            if uses.contains(&section) {
                whole_numbers(name, v)?;
            }
        }
    }
    assemble(&built, uses).map(drop)
}

/// Every setting that takes a number takes a whole one (milliseconds,
/// counts, bytes), and the `config` crate would round `1.5` silently.
fn whole_numbers(path: &str, v: &Value) -> Result<(), String> {
    match &v.kind {
        ValueKind::Float(f) => Err(format!("{path} = {f}: expected a whole number")),
        ValueKind::Table(t) => t
            .iter()
            .try_for_each(|(k, v)| whole_numbers(&format!("{path}.{k}"), v)),
        _ => Ok(()),
    }
}

/// The sections in `uses`, each from `c` or its defaults.
fn assemble(c: &config::Config, uses: &[Section]) -> Result<Config, String> {
    let mut cfg = Config::default();
    for s in uses {
        match s {
            Section::Beacon => cfg.beacon = section(c, *s)?,
            Section::Producer => cfg.producer = section(c, *s)?,
            Section::Consumer => cfg.consumer = section(c, *s)?,
            Section::Store => cfg.store = section(c, *s)?,
            Section::Tower => cfg.tower = section(c, *s)?,
            // One section for nodes and towers: each used one keeps a
            // copy (a tower needs no tower_keys, so its tool must not
            // check them as a node's).
            Section::Security => {
                let security: SecurityConfig = section(c, *s)?;
                if uses.contains(&Section::Beacon) {
                    cfg.beacon.security = security.clone();
                }
                if uses.contains(&Section::Tower) {
                    cfg.tower.security = security;
                }
            }
        }
    }
    Ok(cfg)
}

fn section<T: DeserializeOwned + Default>(c: &config::Config, s: Section) -> Result<T, String> {
    match c.get::<T>(s.name()) {
        Ok(t) => Ok(t),
        Err(config::ConfigError::NotFound(_)) => Ok(T::default()),
        Err(e) => Err(one_line(&e.to_string())),
    }
}

/// TOML's parse errors span several lines (the line quoted, a caret under
/// it); keep where and what: "line 2, column 10: expected ...".
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [first, .., last] if first.starts_with("TOML parse error at ") => {
            let at = first.trim_start_matches("TOML parse error at ");
            format!("TOML syntax error at {at}: {last}")
        }
        _ => lines.join(" "),
    }
}

/// The variables among `vars` that configure a section in `uses`. A
/// variable naming a known section that is not used is skipped; one whose
/// value is not UTF-8 is an error.
fn env_vars(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    uses: &[Section],
) -> Result<Vec<EnvVar>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.to_str() else { continue };
        let Some((section, key)) = split_var(name) else {
            continue;
        };
        if !uses.contains(&section) {
            continue;
        }
        let value = value.into_string().map_err(|_| {
            ConfigError::Load(format!(
                "environment variable {name}: the value is not UTF-8"
            ))
        })?;
        out.push(EnvVar {
            name: name.to_string(),
            section,
            key,
            value,
        });
    }
    // The environment's order is arbitrary; errors should not be.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `DAFKA_<SECTION>__<KEY>` with a known section: the section and the key.
fn split_var(name: &str) -> Option<(Section, String)> {
    let (section, key) = name.strip_prefix("DAFKA_")?.split_once("__")?;
    let section = Section::named(&section.to_ascii_lowercase())?;
    Some((section, key.to_ascii_lowercase()))
}

fn env_warning(name: &str) -> Option<String> {
    let rest = name.strip_prefix("DAFKA_")?;
    if split_var(name).is_some() {
        return None;
    }
    let lower = rest.to_ascii_lowercase();
    if let Some((section, key)) = lower.split_once("__") {
        return Some(format!(
            "ignoring {name}: [{section}] is not a config section (beacon, producer, consumer, store, tower); {key} is not read"
        ));
    }
    let section = Section::ALL
        .into_iter()
        .find(|s| lower.starts_with(&format!("{}_", s.name())))?;
    let key = &rest[section.name().len() + 1..];
    Some(format!(
        "ignoring {name}: a config key takes two underscores after the section, DAFKA_{}__{key}",
        section.name().to_ascii_uppercase()
    ))
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
            Some("config file /nonexistent/dafka.toml: not found")
        );
    }

    fn env(
        pairs: &[(&str, &str)],
    ) -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn load_env(pairs: &[(&str, &str)], uses: &[Section]) -> Result<Config, String> {
        load_from(None, uses, env(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn only_section_double_underscore_key_variables_configure() {
        let vars = [
            ("DAFKA_HOME", "/opt/dafka"),
            ("DAFKA_VERSION", "2"),
            ("DAFKA_SIM_SEEDS", "100"),
            ("DAFKA_BEACON_INTERVAL", "7"),
            ("DAFKA_BEACON__INTERVAL", "50"),
            ("DAFKA_CONSUMER__OFFSET_RESET", "Earliest"),
        ];
        let c = load_env(&vars, &Section::ALL).expect("the rest is not config");
        assert_eq!(c.beacon.interval, 50);
        assert_eq!(c.consumer.offset_reset, OffsetReset::Earliest);
    }

    #[test]
    fn a_bad_variable_is_named_and_stops_only_the_tools_that_use_it() {
        let e =
            load_env(&[("DAFKA_BEACON__INTERVALL", "5")], &Section::ALL).expect_err("unknown key");
        assert!(
            e.starts_with("environment variable DAFKA_BEACON__INTERVALL: "),
            "{e}"
        );
        assert!(e.contains("intervall"), "{e}");
        let bad_fsync = [("DAFKA_STORE__FSYNC", "sometimes")];
        let consumer = [Section::Beacon, Section::Consumer];
        assert!(load_env(&bad_fsync, &consumer).is_ok());
        let e =
            load_env(&bad_fsync, &[Section::Beacon, Section::Store]).expect_err("a store uses it");
        assert!(
            e.starts_with("environment variable DAFKA_STORE__FSYNC: ") && e.contains("sometimes"),
            "{e}"
        );
        let e =
            load_env(&[("DAFKA_BEACON__INTERVAL", "1.5")], &Section::ALL).expect_err("not whole");
        assert!(
            e.starts_with("environment variable DAFKA_BEACON__INTERVAL: "),
            "{e}"
        );
    }

    #[test]
    fn mistyped_variables_get_a_warning_and_the_rest_none() {
        assert_eq!(
            env_warning("DAFKA_BEACON_INTERVAL").as_deref(),
            Some("ignoring DAFKA_BEACON_INTERVAL: a config key takes two underscores after the section, DAFKA_BEACON__INTERVAL")
        );
        assert!(env_warning("DAFKA_BEACONS__INTERVAL")
            .is_some_and(|w| w.contains("[beacons] is not a config section")));
        for quiet in [
            "DAFKA_HOME",
            "DAFKA_SIM_SEEDS",
            "DAFKA_BEACON__INTERVAL",
            "PATH",
        ] {
            assert_eq!(env_warning(quiet), None, "{quiet}");
        }
    }

    fn file_error(text: &str) -> String {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("dafka.toml");
        std::fs::write(&f, text).expect("write");
        let e = load_from(Some(&f), &Section::ALL, env(&[]))
            .expect_err("bad file")
            .to_string();
        let named = format!("config file {}: ", f.display());
        assert!(e.starts_with(&named), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        e[named.len()..].to_string()
    }

    #[test]
    fn file_errors_are_one_line_naming_the_file() {
        let e = file_error("[beacon]\ninterval = = 5\n");
        assert!(e.starts_with("TOML syntax error at line 2, column"), "{e}");
        assert!(file_error("[beacon]\nintervall = 5\n").contains("unknown field `intervall`"));
        assert_eq!(
            file_error("[beacon]\ninterval = 1.5\n"),
            "beacon.interval = 1.5: expected a whole number"
        );
        assert!(file_error("[beacons]\ninterval = 1\n").starts_with("unknown section [beacons]"));
        let dir = tempfile::tempdir().expect("dir");
        let e = Config::load(Some(dir.path()))
            .expect_err("a directory")
            .to_string();
        assert!(e.ends_with(": is a directory, not a TOML file"), "{e}");
    }

    #[test]
    fn a_tool_ignores_sections_it_does_not_use_in_a_shared_file() {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("dafka.toml");
        std::fs::write(
            &f,
            "[store]\nfsync = \"sometimes\"\n[consumer]\noffset_reset = \"EARLIEST\"\n",
        )
        .expect("write");
        let c =
            load_from(Some(&f), &[Section::Beacon, Section::Consumer], env(&[])).expect("consumer");
        assert_eq!(c.consumer.offset_reset, OffsetReset::Earliest);
        assert!(load_from(Some(&f), &[Section::Store], env(&[])).is_err());
    }

    #[test]
    fn one_security_section_serves_nodes_and_towers() {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("dafka.toml");
        let text = "[security]\nenabled = true\nsecret_key_file = \"t.secret\"\nauthorized_keys = \"keys\"\n";
        std::fs::write(&f, text).expect("write");
        let tower = load_from(Some(&f), &[Section::Tower], env(&[])).expect("tower");
        assert!(tower.tower.security.enabled);
        assert_eq!(
            tower.validate().map_err(|e| e.to_string()),
            Ok(()),
            "a tower needs no tower_keys"
        );
        let node = load_from(Some(&f), &[Section::Beacon], env(&[])).expect("node");
        assert!(node.beacon.security.enabled);
        let e = node
            .validate()
            .expect_err("a node needs the tower's key")
            .to_string();
        assert!(
            e.starts_with("security.tower_keys: 0 key(s) for 1 tower(s)"),
            "{e}"
        );
        let vars = env(&[("DAFKA_SECURITY__ENABLED", "maybe")]);
        let e = load_from(None, &[Section::Beacon], vars)
            .expect_err("bad bool")
            .to_string();
        assert!(e.contains("DAFKA_SECURITY__ENABLED"), "{e}");
    }
}
