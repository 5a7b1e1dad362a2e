//! How a node finds its peers: the `[beacon]` section of a Dafka config.
//!
//! The defaults are the C original's, so a Rust node and a C tower of the
//! same generation agree on ports and timing. They live here and nowhere else.

use crate::security::SecurityConfig;
use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

/// A config value that cannot work, found by [`MeshConfig::validate`].
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The config key, as written in a config file (`beacon.interval`).
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A new error for `key`.
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            key,
            reason: reason.into(),
        }
    }
}

/// Discovery and transport settings shared by every node.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MeshConfig {
    /// Towers' beacon inputs (their XSUB), where this node publishes its
    /// beacon. Comma-separated in flags and files: several towers allowed.
    pub sub_address: String,
    /// Towers' beacon outputs (their XPUB), where this node hears of peers.
    pub pub_address: String,
    /// Milliseconds between beacons.
    pub interval: u64,
    /// Milliseconds of silence after which a peer is dropped.
    pub timeout: u64,
    /// Where this node binds its data socket (peers connect to it). A `*` port picks a free one.
    pub bind: String,
    /// The host peers should connect to. Empty: the tower fills in the
    /// address this node's beacon came from, which is right unless the
    /// node sits behind NAT.
    pub advertise_host: String,
    /// Most messages queued per peer connection before ZeroMQ drops
    /// (ZMQ_SNDHWM / ZMQ_RCVHWM). Drops are repaired by FETCH. A message
    /// holds at most 64 KiB of records (a run) or one larger record, so
    /// with records up to 64 KiB the default bounds a queue at about 64 MB;
    /// the C original's 1,000,000 let a stalled consumer's queue reach
    /// gigabytes. Lower it for larger records. 0 means no limit.
    pub high_watermark: i32,
    /// Bytes of kernel receive buffer asked for each connection to this
    /// node's data socket (ZMQ_RCVBUF). The kernel's own tuning kept it
    /// under 1 MB on loopback, where a sender of large records then
    /// waited on every few hundred KB; 4 MiB took 64 KiB records from
    /// a producer to a store on one host 15 % faster for a fifth less
    /// CPU. Asked for only where `net.core.rmem_max` allows it; 0 leaves
    /// it to the kernel.
    pub receive_buffer: usize,
    /// Most distinct subscription prefixes this node's publisher holds for
    /// its peers (each costs about 1 KB). Subscriptions the protocol never
    /// uses are refused whatever this says; a consumer takes two per topic
    /// and three of its own, a store six, a producer three.
    pub max_subscriptions: usize,
    /// CURVE and the key allowlist: the `[security]` section of a config
    /// file, shared with the tower's.
    #[serde(skip)]
    pub security: SecurityConfig,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            sub_address: "tcp://127.0.0.1:5556".into(),
            pub_address: "tcp://127.0.0.1:5557".into(),
            interval: 1000,
            timeout: 4000,
            bind: "tcp://*:*".into(),
            advertise_host: String::new(),
            high_watermark: 1000,
            receive_buffer: 4 << 20,
            max_subscriptions: 20_000,
            security: SecurityConfig::default(),
        }
    }
}

impl MeshConfig {
    /// Checks every value once, so a bad config fails at start-up with one
    /// clear line and never later inside a running node.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_endpoints("beacon.sub_address", &self.sub_address)?;
        check_endpoints("beacon.pub_address", &self.pub_address)?;
        check_endpoints("beacon.bind", &self.bind)?;
        if self.interval == 0 {
            return Err(ConfigError::new("beacon.interval", "must be at least 1 ms"));
        }
        if self.timeout <= self.interval {
            return Err(ConfigError::new(
                "beacon.timeout",
                format!("must be longer than beacon.interval ({} ms)", self.interval),
            ));
        }
        if self.max_subscriptions == 0 {
            return Err(ConfigError::new(
                "beacon.max_subscriptions",
                "must be at least 1",
            ));
        }
        if self.high_watermark < 0 {
            return Err(ConfigError::new(
                "beacon.high_watermark",
                "must not be negative",
            ));
        }
        if i32::try_from(self.receive_buffer).is_err() {
            return Err(ConfigError::new(
                "beacon.receive_buffer",
                format!("must be at most {} bytes", i32::MAX),
            ));
        }
        let towers = self.tower_inputs().len();
        if self.tower_outputs().len() != towers {
            return Err(ConfigError::new(
                "beacon.pub_address",
                format!(
                    "{} tower output(s) for {towers} input(s) in beacon.sub_address: one of each per tower",
                    self.tower_outputs().len()
                ),
            ));
        }
        self.security.validate(Some(towers))
    }

    /// The towers' beacon inputs, one per tower.
    pub fn tower_inputs(&self) -> Vec<String> {
        split_endpoints(&self.sub_address)
    }

    /// The towers' beacon outputs, one per tower.
    pub fn tower_outputs(&self) -> Vec<String> {
        split_endpoints(&self.pub_address)
    }

    /// The beacon interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval)
    }

    /// How long a peer may stay silent.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }
}

/// Splits a comma-separated endpoint list, dropping blanks.
pub fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Checks that `list` names at least one endpoint of a transport we speak,
/// and that each TCP endpoint has a host and a port ZeroMQ can use (it
/// would take `:99999` and bind port 34463).
pub fn check_endpoints(key: &'static str, list: &str) -> Result<(), ConfigError> {
    let eps = split_endpoints(list);
    if eps.is_empty() {
        return Err(ConfigError::new(key, "no endpoint given"));
    }
    for ep in eps {
        check_endpoint(&ep).map_err(|why| ConfigError::new(key, format!("'{ep}': {why}")))?;
    }
    Ok(())
}

fn check_endpoint(ep: &str) -> Result<(), String> {
    if let Some(rest) = ep.strip_prefix("tcp://") {
        return check_tcp(rest);
    }
    let ok = ["ipc://", "inproc://"]
        .iter()
        .any(|t| ep.starts_with(t) && ep.len() > t.len());
    if ok {
        Ok(())
    } else {
        Err("not an endpoint like tcp://HOST:PORT, ipc://PATH or inproc://NAME".into())
    }
}

/// `HOST:PORT` of a TCP endpoint: HOST a name, an IPv4 address, `[IPv6]` or
/// `*`; PORT 0 to 65535 or `*` (any free port).
fn check_tcp(rest: &str) -> Result<(), String> {
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err("no port: write tcp://HOST:PORT (PORT * picks a free one)".into());
    };
    if host.is_empty() {
        return Err("no host: write tcp://HOST:PORT (HOST * binds every interface)".into());
    }
    if host.starts_with('[') != host.ends_with(']')
        || (host.contains(':') && !host.starts_with('['))
    {
        return Err("an IPv6 address goes in brackets: tcp://[::1]:PORT".into());
    }
    if port == "*" {
        return Ok(());
    }
    match port.parse::<u32>() {
        Ok(p) if p <= 65535 => Ok(()),
        Ok(p) => Err(format!("port {p} is out of range (0 to 65535)")),
        Err(_) => Err(format!("port '{port}' is not a number or *")),
    }
}

/// Deserializes a setting named by a word (`offset_reset = "Earliest"`)
/// whatever its case: `#[serde(deserialize_with = "any_case")]` on a field
/// of a unit-variant enum with lowercase names.
pub fn any_case<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::IntoDeserializer;
    let word = String::deserialize(d)?.to_ascii_lowercase();
    T::deserialize(word.into_deserializer())
}

/// A number, or a string with units, as config files and variables give
/// it (variables are always strings).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(i64),
    Text(String),
}

fn number_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
    what: &str,
    parse: impl Fn(&str) -> Option<u64>,
) -> Result<u64, D::Error> {
    use serde::de::Error;
    let shown = match NumberOrText::deserialize(d)? {
        NumberOrText::Number(n) => match u64::try_from(n) {
            Ok(n) => return Ok(n),
            Err(_) => n.to_string(),
        },
        NumberOrText::Text(t) => match parse(t.trim()) {
            Some(n) => return Ok(n),
            None => t,
        },
    };
    Err(D::Error::custom(format!("'{shown}' is not {what}")))
}

/// Deserializes milliseconds: a number (`604800000`) or a duration with
/// units (`"7d"`, `"12h 30m"`, `"500ms"`); never negative.
pub fn duration_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    number_or_text(
        d,
        "a duration: milliseconds (0 or more) or a number with units such as \"7d\", \"12h\", \"90s\"",
        parse_duration_ms,
    )
}

/// Milliseconds of `s`: digits alone are milliseconds, anything else a
/// humantime duration (`7d`, `1h 30m`).
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    humantime::parse_duration(s)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// Deserializes a byte count: a number (`1073741824`) or one with units
/// (`"1GiB"`, `"500MB"`, `"64k"`); never negative.
pub fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    number_or_text(
        d,
        "a size: bytes (0 or more) or a number with units such as \"1GiB\", \"500MB\", \"64KiB\"",
        parse_size,
    )
}

/// Bytes of `s`: a whole number with an optional unit, case-insensitive:
/// B; KB, MB, GB, TB (powers of 1000); K, KiB, M, MiB, G, GiB, T, TiB
/// (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_with_or_without_units() {
        assert_eq!(parse_duration_ms("0"), Some(0));
        assert_eq!(parse_duration_ms("604800000"), Some(604_800_000));
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        assert_eq!(parse_duration_ms("1h 30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("-5"), None);
        assert_eq!(parse_duration_ms("a week"), None);
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("500 MB"), Some(500_000_000));
        assert_eq!(parse_size("64k"), Some(65_536));
        assert_eq!(parse_size("12"), Some(12));
        for bad in ["-1", "1.5GB", "GB", "10 parsecs", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn endpoints_are_checked_before_zeromq_sees_them() {
        let ok = [
            "tcp://127.0.0.1:5556",
            "tcp://*:*",
            "tcp://host.example:0",
            "tcp://[::1]:65535",
            "ipc:///tmp/x",
            "inproc://a",
            "tcp://a:1, tcp://b:2",
        ];
        for ep in ok {
            assert_eq!(check_endpoints("k", ep), Ok(()), "{ep}");
        }
        let bad = [
            ("tcp://h:99999", "port 99999 is out of range"),
            ("tcp://h", "no port"),
            ("tcp://:5", "no host"),
            ("tcp://h:x", "port 'x' is not a number"),
            ("tcp://::1:5", "in brackets"),
            ("udp://h:1", "not an endpoint"),
            ("", "no endpoint given"),
        ];
        for (ep, why) in bad {
            let e = check_endpoints("beacon.bind", ep)
                .expect_err(ep)
                .to_string();
            assert!(
                e.starts_with("beacon.bind: ") && e.contains(why),
                "{ep}: {e}"
            );
        }
    }

    #[test]
    fn a_receive_buffer_beyond_what_a_socket_takes_is_refused() {
        let mut c = MeshConfig {
            receive_buffer: 1 << 31,
            ..MeshConfig::default()
        };
        let e = c.validate().expect_err("2 GiB").to_string();
        assert!(
            e.starts_with("beacon.receive_buffer: must be at most"),
            "{e}"
        );
        c.receive_buffer = 0;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn words_are_read_in_any_case() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum W {
            Earliest,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct S {
            #[serde(deserialize_with = "any_case")]
            w: W,
        }
        let s: S =
            serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
                _,
                serde::de::value::Error,
            >::new(std::iter::once(("w", "EarLiest"))))
            .expect("any case");
        assert_eq!(s.w, W::Earliest);
    }
}
