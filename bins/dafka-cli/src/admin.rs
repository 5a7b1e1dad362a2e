//! What `dafka_admin` prints: a report's rows as aligned tables for people,
//! or as JSON for scripts.

use dafka::admin::view::{self, LagRow, PartitionRow, PositionRow, TopicRow};
use dafka::admin::{Peer, Report};
use dafka::proto::Role;
use serde_json::{json, Value};

/// Columns aligned on the widest cell, two spaces apart, header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A size for people: bytes up to 10 KiB, then KiB, MiB, GiB with one
/// decimal.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 10 * 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// How long ago, for people: "0.3 s ago", "12 s ago".
pub fn ago(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s ago", ms as f64 / 1000.0)
    } else {
        format!("{} s ago", ms / 1000)
    }
}

/// A role as tables and JSON name it.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Producer => "producer",
        Role::Consumer => "consumer",
        Role::Store => "store",
        Role::Tower => "tower",
        Role::Admin => "admin",
        Role::Unspecified => "unknown",
    }
}

/// The towers that answered, then every node they know. A tower's address
/// is the one configured when there is one tower (a tower does not know
/// how it is reached); with several, which answered from where is unknown.
pub fn with_towers(report: &Report, configured: &str) -> Vec<Peer> {
    let one = report.towers_expected == 1;
    let towers = report.towers.iter().map(|id| Peer {
        id: *id,
        role: Role::Tower,
        endpoint: if one {
            configured.trim().to_string()
        } else {
            "-".into()
        },
        age_ms: 0,
        group: String::new(),
    });
    towers.chain(report.peers.iter().cloned()).collect()
}

/// `peers`: every node the towers know.
pub fn peers_table(peers: &[Peer]) -> String {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                role_name(p.role).into(),
                p.endpoint.clone(),
                ago(p.age_ms),
            ]
        })
        .collect();
    table(&["ID", "ROLE", "ADDRESS", "LAST SEEN"], &rows)
}

/// `peers --json`.
pub fn peers_json(peers: &[Peer]) -> Value {
    peers
        .iter()
        .map(|p| {
            json!({
                "id": p.id.to_string(),
                "role": role_name(p.role),
                "endpoint": p.endpoint,
                "last_seen_ms": p.age_ms,
            })
        })
        .collect()
}

/// `topics`.
pub fn topics_table(rows: &[TopicRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            vec![
                t.topic.clone(),
                t.partitions.to_string(),
                t.records.to_string(),
                size(t.bytes),
                t.stores.to_string(),
            ]
        })
        .collect();
    table(
        &["TOPIC", "PARTITIONS", "RECORDS", "BYTES", "STORES"],
        &rows,
    )
}

/// `topics --json`.
pub fn topics_json(rows: &[TopicRow]) -> Value {
    rows.iter()
        .map(|t| {
            json!({
                "topic": t.topic,
                "partitions": t.partitions,
                "records": t.records,
                "bytes": t.bytes,
                "stores": t.stores,
            })
        })
        .collect()
}

/// `partitions TOPIC`.
pub fn partitions_table(rows: &[PartitionRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            let stores: Vec<String> = p.copies.iter().map(|c| view::short(&c.store)).collect();
            vec![
                p.partition.to_string(),
                p.log_start.to_string(),
                p.head.to_string(),
                p.records.to_string(),
                size(p.bytes),
                stores.join(","),
                p.note.clone(),
            ]
        })
        .collect();
    table(
        &[
            "PARTITION",
            "LOG START",
            "HEAD",
            "RECORDS",
            "BYTES",
            "STORES",
            "NOTE",
        ],
        &rows,
    )
}

/// `partitions TOPIC --json`: each store's copy too.
pub fn partitions_json(rows: &[PartitionRow]) -> Value {
    rows.iter()
        .map(|p| {
            let copies: Vec<Value> = p
                .copies
                .iter()
                .map(|c| {
                    json!({
                        "store": c.store.to_string(),
                        "log_start": c.state.log_start,
                        "head": c.state.head,
                        "bytes": c.state.bytes,
                        "conflict_at": c.state.conflict_at,
                    })
                })
                .collect();
            json!({
                "topic": p.topic,
                "partition": p.partition.to_string(),
                "log_start": p.log_start,
                "head": p.head,
                "records": p.records,
                "bytes": p.bytes,
                "stores": copies,
                "note": p.note,
            })
        })
        .collect()
}

fn or_dash(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// `positions NAME`.
pub fn positions_table(rows: &[PositionRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                or_dash(p.position),
                p.head.to_string(),
                or_dash(p.lag),
            ]
        })
        .collect();
    table(&["TOPIC", "PARTITION", "POSITION", "HEAD", "LAG"], &rows)
}

/// `positions NAME --json`.
pub fn positions_json(rows: &[PositionRow]) -> Value {
    rows.iter()
        .map(|p| {
            json!({
                "topic": p.topic,
                "partition": p.partition.to_string(),
                "position": p.position,
                "head": p.head,
                "lag": p.lag,
            })
        })
        .collect()
}

/// `group NAME`: its members, then who reads each partition.
pub fn group_table(members: &[dafka::NodeId], rows: &[view::GroupRow]) -> String {
    let names: Vec<String> = members.iter().map(view::short).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                r.member.as_ref().map_or_else(|| "-".into(), view::short),
                or_dash(r.position),
                r.head.to_string(),
                or_dash(r.lag),
            ]
        })
        .collect();
    let header = ["TOPIC", "PARTITION", "MEMBER", "POSITION", "HEAD", "LAG"];
    format!(
        "members ({}): {}\n{}",
        members.len(),
        names.join(", "),
        table(&header, &rows)
    )
}

/// `group NAME --json`.
pub fn group_json(members: &[dafka::NodeId], rows: &[view::GroupRow]) -> Value {
    let partitions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "partition": r.partition.to_string(),
                "member": r.member.map(|m| m.to_string()),
                "position": r.position,
                "head": r.head,
                "lag": r.lag,
            })
        })
        .collect();
    let members: Vec<String> = members.iter().map(ToString::to_string).collect();
    json!({ "members": members, "partitions": partitions })
}

/// `lag NAME`.
pub fn lag_table(rows: &[LagRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|l| {
            vec![
                l.topic.clone(),
                l.partitions.to_string(),
                l.committed.to_string(),
                l.lag.to_string(),
                l.max_lag.to_string(),
            ]
        })
        .collect();
    table(
        &["TOPIC", "PARTITIONS", "COMMITTED", "LAG", "MAX LAG"],
        &rows,
    )
}

/// `lag NAME --json`.
pub fn lag_json(rows: &[LagRow]) -> Value {
    rows.iter()
        .map(|l| {
            json!({
                "topic": l.topic,
                "partitions": l.partitions,
                "committed": l.committed,
                "lag": l.lag,
                "max_lag": l.max_lag,
            })
        })
        .collect()
}

/// Lines for stderr about who did not answer.
pub fn warnings(report: &Report, towers: &str) -> Vec<String> {
    let mut out = Vec::new();
    if report.towers.is_empty() {
        out.push(format!(
            "no tower answered at {towers} (is dafka_towerd running there? see --pub)"
        ));
        return out;
    }
    if report.towers.len() < report.towers_expected {
        out.push(format!(
            "{} of {} towers answered",
            report.towers.len(),
            report.towers_expected
        ));
    }
    for s in report.silent_stores() {
        out.push(format!("store {s} did not answer in time"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_on_the_widest_cell() {
        let t = table(
            &["A", "LONG HEADER"],
            &[vec!["wide cell".into(), "x".into()]],
        );
        assert_eq!(t, "A          LONG HEADER\nwide cell  x\n");
    }

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(10 * 1024), "10.0 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(ago(300), "0.3 s ago");
        assert_eq!(ago(12_345), "12 s ago");
    }
}
