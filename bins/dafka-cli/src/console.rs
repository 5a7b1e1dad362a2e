//! How the console tools turn lines into records and records into lines:
//! Kafka's console producer properties (`parse.key`, `key.separator`) and
//! `--header`, and the console consumer's text and JSON formats. Pure
//! functions, so every case is unit-tested.

use base64::Engine as _;
use dafka::{ProducerRecord, Record};
use serde_json::{json, Value};
use std::io::{self, Write};

/// Kafka's default key separator.
pub const DEFAULT_SEPARATOR: &str = "\t";

/// A separator as given on the command line: `\t` written as two
/// characters means a tab (hard to type in a shell otherwise).
pub fn separator(s: &str) -> String {
    s.replace("\\t", "\t")
}

/// One `--property NAME=VALUE` of the console producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Property {
    /// `parse.key=true|false`: each line is KEY SEPARATOR VALUE.
    ParseKey(bool),
    /// `key.separator=SEP`: between key and value (a tab by default).
    KeySeparator(String),
}

/// Parses `--property NAME=VALUE` (a clap value parser: its error is the
/// one line clap prints).
pub fn parse_property(s: &str) -> Result<Property, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))?;
    match name {
        "parse.key" => match value {
            "true" => Ok(Property::ParseKey(true)),
            "false" => Ok(Property::ParseKey(false)),
            _ => Err(format!("parse.key is true or false, not '{value}'")),
        },
        "key.separator" if value.is_empty() => Err("key.separator cannot be empty".into()),
        "key.separator" => Ok(Property::KeySeparator(separator(value))),
        _ => Err(format!(
            "unknown property '{name}' (known: parse.key, key.separator)"
        )),
    }
}

/// Parses `--header NAME=VALUE` (a clap value parser).
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!("'{s}' has no header name")),
        Some((name, value)) => Ok((name.to_string(), value.to_string())),
        None => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

/// Parses a partition: a UUID, with or without dashes (a clap value
/// parser).
pub fn parse_partition(s: &str) -> Result<dafka::NodeId, String> {
    uuid::Uuid::parse_str(s)
        .map(|u| dafka::NodeId(*u.as_bytes()))
        .map_err(|_| format!("'{s}' is not a partition id (a UUID)"))
}

/// Where the console consumer starts (`--offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The first record the stores hold.
    Earliest,
    /// What comes from now on.
    Latest,
    /// This offset of the partition given.
    Offset(u64),
}

/// Parses `--offset earliest|latest|N` (a clap value parser).
pub fn parse_offset(s: &str) -> Result<StartAt, String> {
    match s {
        "earliest" => Ok(StartAt::Earliest),
        "latest" => Ok(StartAt::Latest),
        n => n
            .parse()
            .map(StartAt::Offset)
            .map_err(|_| format!("'{s}' is not earliest, latest or an offset (0 or more)")),
    }
}

/// Parses `--from-time`: milliseconds since the Unix epoch, or an RFC 3339
/// time (`2026-11-30T09:00:00Z`, `2026-11-30T10:00:00.250+01:00`). Returns
/// milliseconds since the epoch (a clap value parser).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("'{s}' is not a time: {why}");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(0) => Err(bad("give a time after the epoch (0 means no time)")),
            Ok(ms) => Ok(ms),
            Err(_) => Err(bad("too large for milliseconds since the epoch")),
        };
    }
    // humantime reads UTC ("Z") only: a numeric offset is taken off here.
    let (utc, offset_ms) = split_offset(s).ok_or_else(|| {
        bad("give milliseconds since the epoch or an RFC 3339 time such as 2026-11-30T09:00:00Z")
    })?;
    let at = humantime::parse_rfc3339(&utc).map_err(|e| bad(&e.to_string()))?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad("before the epoch"))?
        .as_millis();
    let ms = i128::try_from(ms).map_err(|_| bad("out of range"))? - i128::from(offset_ms);
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| bad("before the epoch"))
}

/// An RFC 3339 time as the same time in UTC ending in `Z`, and its offset
/// from UTC in ms (`+01:00` is 3,600,000).
fn split_offset(s: &str) -> Option<(String, i64)> {
    if let Some(base) = s.strip_suffix(['Z', 'z']) {
        return Some((format!("{base}Z"), 0));
    }
    let at = s.len().checked_sub(6)?;
    let (base, off) = (s.get(..at)?, s.get(at..)?.as_bytes());
    let sign = match off[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |d: &[u8]| -> Option<i64> {
        d.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    if off[3] != b':' {
        return None;
    }
    let (h, m) = (digits(&off[1..3])?, digits(&off[4..6])?);
    if h > 23 || m > 59 {
        return None;
    }
    Some((format!("{base}Z"), sign * (h * 60 + m) * 60_000))
}

/// How the console producer makes a record of a line.
#[derive(Clone, Debug, Default)]
pub struct LineFormat {
    /// `Some(separator)` when lines carry a key before it.
    pub key_separator: Option<Vec<u8>>,
    /// Headers put on every record, in order.
    pub headers: Vec<(String, String)>,
}

impl LineFormat {
    /// The format the producer's properties and headers describe.
    pub fn new(properties: &[Property], headers: &[(String, String)]) -> Self {
        let mut parse_key = false;
        let mut sep = DEFAULT_SEPARATOR.to_string();
        for p in properties {
            match p {
                Property::ParseKey(on) => parse_key = *on,
                Property::KeySeparator(s) => sep = s.clone(),
            }
        }
        LineFormat {
            key_separator: parse_key.then(|| sep.into_bytes()),
            headers: headers.to_vec(),
        }
    }

    /// The record for `line`; `Err` names what is wrong (a line without
    /// the separator when keys are parsed).
    pub fn record(&self, mut line: Vec<u8>) -> Result<ProducerRecord, String> {
        let key = match &self.key_separator {
            None => None,
            Some(sep) => {
                let at = find(&line, sep).ok_or_else(|| {
                    format!(
                        "has no key separator '{}' (parse.key=true)",
                        String::from_utf8_lossy(sep).escape_default()
                    )
                })?;
                let value = line.split_off(at + sep.len());
                line.truncate(at);
                Some(std::mem::replace(&mut line, value))
            }
        };
        let mut r = ProducerRecord::new(line);
        if let Some(k) = key {
            r = r.key(k);
        }
        for (name, value) in &self.headers {
            r = r.header(name.clone(), value.clone().into_bytes());
        }
        Ok(r)
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the console consumer prints before each record's content, as
/// Kafka's console consumer does (`print.timestamp`, `print.key`, ...).
#[derive(Clone, Debug, Default)]
pub struct PrintOptions {
    /// The topic, then a tab.
    pub topic: bool,
    /// `CreateTime:<ms>` (or `NO_TIMESTAMP`), then a tab.
    pub timestamp: bool,
    /// The partition, then a tab.
    pub partition: bool,
    /// The offset, then a tab.
    pub offset: bool,
    /// `name:value,name:value` (or `NO_HEADERS`), then a tab.
    pub headers: bool,
    /// The key (or `null`), then the key separator.
    pub key: bool,
    /// Between key and content.
    pub key_separator: String,
}

/// Writes `r` as one line of text: the chosen fields, then the content as
/// is (bytes, no character set assumed), then a newline.
pub fn write_text(out: &mut impl Write, p: &PrintOptions, r: &Record) -> io::Result<()> {
    if p.topic {
        write!(out, "{}\t", r.topic)?;
    }
    if p.timestamp {
        match r.timestamp_ms {
            Some(t) => write!(out, "CreateTime:{t}\t")?,
            None => out.write_all(b"NO_TIMESTAMP\t")?,
        }
    }
    if p.partition {
        write!(out, "{}\t", r.partition)?;
    }
    if p.offset {
        write!(out, "{}\t", r.offset)?;
    }
    if p.headers {
        if r.headers.is_empty() {
            out.write_all(b"NO_HEADERS")?;
        }
        for (i, (name, value)) in r.headers.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{name}:")?;
            out.write_all(value)?;
        }
        out.write_all(b"\t")?;
    }
    if p.key {
        out.write_all(r.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(p.key_separator.as_bytes())?;
    }
    out.write_all(&r.content)?;
    out.write_all(b"\n")
}

/// Bytes as JSON: a string if they are UTF-8, else `{"base64": "..."}`, so
/// nothing is ever mangled and a reader can tell which it got.
pub fn json_bytes(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

/// A record as one JSON object, fields in this order: topic, partition (a
/// UUID string), offset, timestamp (ms, or null), key (or null), headers
/// (`[name, value]` pairs, in order) and value.
pub fn json_record(r: &Record) -> String {
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(name, value)| json!([name, json_bytes(value)]))
        .collect();
    // Written field by field: a JSON map would sort the keys.
    format!(
        "{{\"topic\":{},\"partition\":\"{}\",\"offset\":{},\"timestamp\":{},\"key\":{},\"headers\":{},\"value\":{}}}",
        Value::String(r.topic.to_string()),
        uuid::Uuid::from_bytes(r.partition.0).hyphenated(),
        r.offset,
        json!(r.timestamp_ms),
        json!(r.key.as_deref().map(json_bytes)),
        Value::Array(headers),
        json_bytes(&r.content),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dafka::{Bytes, NodeId};

    #[test]
    fn times_are_read_as_ms_or_rfc_3339_with_any_offset() {
        // 2026-11-30T09:00:00Z
        let nine = 1_796_029_200_000;
        assert_eq!(parse_time("1796029200000"), Ok(nine));
        assert_eq!(parse_time("2026-11-30T09:00:00Z"), Ok(nine));
        assert_eq!(parse_time("2026-11-30T10:00:00+01:00"), Ok(nine));
        assert_eq!(parse_time("2026-11-30T04:30:00-04:30"), Ok(nine));
        assert_eq!(parse_time("2026-11-30T09:00:00.250z"), Ok(nine + 250));
        for bad in [
            "",
            "0",
            "yesterday",
            "2026-11-30",
            "2026-11-30T09:00:00",
            "2026-11-30T09:00:00+1:00",
            "2026-11-30T09:00:00+24:00",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
        ] {
            let e = parse_time(bad).expect_err(bad);
            assert!(e.contains("is not a time"), "{bad}: {e}");
        }
    }

    fn fmt(props: &[&str], headers: &[&str]) -> LineFormat {
        let props: Vec<Property> = props
            .iter()
            .map(|p| parse_property(p).expect("property"))
            .collect();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|h| parse_header(h).expect("header"))
            .collect();
        LineFormat::new(&props, &headers)
    }

    #[test]
    fn lines_become_records_with_keys_and_headers() {
        let plain = fmt(&[], &[]).record(b"a\tb".to_vec()).expect("plain");
        assert_eq!(plain, ProducerRecord::new("a\tb"), "no key unless asked");

        let keyed = fmt(&["parse.key=true"], &["src=cli", "src=again"]);
        let r = keyed.record(b"k1\tv\t1".to_vec()).expect("keyed");
        let want = ProducerRecord::new("v\t1")
            .key("k1")
            .header("src", "cli")
            .header("src", "again");
        assert_eq!(r, want, "split at the first separator, headers in order");

        let colon = fmt(&["parse.key=true", "key.separator=::"], &[]);
        let r = colon.record(b"::v".to_vec()).expect("empty key");
        assert_eq!(r, ProducerRecord::new("v").key(""));
        let err = colon.record(b"no key".to_vec()).expect_err("no separator");
        assert!(err.contains("has no key separator '::'"), "{err}");
        let tab = fmt(&["key.separator=\\t", "parse.key=true"], &[]);
        assert!(tab.record(b"k\tv".to_vec()).is_ok(), "\\t means a tab");
    }

    #[test]
    fn partitions_and_offsets_parse_or_say_what_is_wrong() {
        let id = NodeId([0xAB; 16]);
        assert_eq!(
            parse_partition("abababab-abab-abab-abab-abababababab"),
            Ok(id)
        );
        assert_eq!(parse_partition("abababababababababababababababab"), Ok(id));
        assert!(parse_partition("p1").is_err_and(|e| e.contains("not a partition id")));
        assert_eq!(parse_offset("earliest"), Ok(StartAt::Earliest));
        assert_eq!(parse_offset("latest"), Ok(StartAt::Latest));
        assert_eq!(parse_offset("42"), Ok(StartAt::Offset(42)));
        for bad in ["-1", "x", "", "1.5"] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_properties_and_headers_say_what_is_wrong() {
        for (input, want) in [
            ("parse.key", "is not NAME=VALUE"),
            ("parse.key=yes", "true or false"),
            ("key.separator=", "cannot be empty"),
            ("print.key=true", "unknown property 'print.key'"),
        ] {
            let err = parse_property(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_header("a="), Ok(("a".into(), String::new())));
    }

    fn record() -> Record {
        Record {
            topic: "t".into(),
            partition: NodeId([0xAB; 16]),
            offset: 7,
            key: Some(Bytes::from_static(b"k")),
            headers: vec![
                ("h".into(), Bytes::from_static(b"1")),
                ("bin".into(), Bytes::from_static(&[0xFF, 0])),
            ],
            timestamp_ms: Some(1_790_000_000_000),
            content: Bytes::from_static(b"v\xFE"),
        }
    }

    #[test]
    fn text_lines_put_the_chosen_fields_first_like_kafka() {
        let p = PrintOptions {
            timestamp: true,
            offset: true,
            headers: true,
            key: true,
            key_separator: "|".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_text(&mut out, &p, &record()).expect("write");
        assert_eq!(
            out,
            b"CreateTime:1790000000000\t7\th:1,bin:\xFF\0\tk|v\xFE\n"
        );
        let bare = Record {
            key: None,
            headers: vec![],
            timestamp_ms: None,
            ..record()
        };
        out.clear();
        write_text(&mut out, &p, &bare).expect("write");
        assert_eq!(out, b"NO_TIMESTAMP\t7\tNO_HEADERS\tnull|v\xFE\n");
        out.clear();
        write_text(&mut out, &PrintOptions::default(), &bare).expect("write");
        assert_eq!(out, b"v\xFE\n", "content alone by default");
    }

    #[test]
    fn json_shows_every_field_and_never_mangles_bytes() {
        let line = json_record(&record());
        assert!(
            line.starts_with(r#"{"topic":"t","partition":"abababab-"#),
            "fields in the documented order: {line}"
        );
        let v: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(
            v,
            json!({
                "topic": "t",
                "partition": "abababab-abab-abab-abab-abababababab",
                "offset": 7,
                "timestamp": 1_790_000_000_000i64,
                "key": "k",
                "headers": [["h", "1"], ["bin", {"base64": "/wA="}]],
                "value": {"base64": "dv4="},
            })
        );
        let bare: Value = serde_json::from_str(&json_record(&Record {
            key: None,
            headers: vec![],
            timestamp_ms: None,
            ..record()
        }))
        .expect("JSON");
        assert_eq!(bare["key"], Value::Null);
        assert_eq!(bare["timestamp"], Value::Null);
        assert_eq!(bare["headers"], json!([]));
    }
}
