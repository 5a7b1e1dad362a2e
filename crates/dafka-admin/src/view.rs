//! A report as rows: what a table shows a person and `--json` gives a
//! script. Pure functions of a [`Report`].
//!
//! Each store holds its own copy of a partition, and copies can differ: a
//! store that joined late or was cut off lags, and retention runs on each
//! store's own clock. A row shows what a reader can get from the cluster
//! as a whole (from the lowest log start to the highest head of any store)
//! and says where the copies differ.

use crate::report::Report;
use dafka_proto::{NodeId, PartitionState};
use std::collections::BTreeMap;

/// One topic, over every store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRow {
    /// The topic.
    pub topic: String,
    /// Partitions some store holds.
    pub partitions: usize,
    /// Records readable, summed over partitions.
    pub records: u64,
    /// Bytes of the largest copy of each partition, summed.
    pub bytes: u64,
    /// Stores holding some partition of it.
    pub stores: usize,
}

/// One store's copy of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The store.
    pub store: NodeId,
    /// What it holds.
    pub state: PartitionState,
}

/// One partition, over every store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRow {
    /// The topic.
    pub topic: String,
    /// The partition (its producer's id).
    pub partition: NodeId,
    /// The lowest offset some store still holds.
    pub log_start: u64,
    /// The highest offset some store holds.
    pub head: u64,
    /// Records readable: head + 1 - log start.
    pub records: u64,
    /// Bytes of the largest copy.
    pub bytes: u64,
    /// Every store's copy.
    pub copies: Vec<Copy>,
    /// Where the copies differ, in words; empty when they agree.
    pub note: String,
}

/// Where a named consumer stands in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The next offset it will process (the highest any store keeps);
    /// `None` if it committed none in this partition.
    pub position: Option<u64>,
    /// The partition's highest offset on any store.
    pub head: u64,
    /// Records it has still to process: head + 1 - position.
    pub lag: Option<u64>,
}

/// One topic's lag for a named consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagRow {
    /// The topic.
    pub topic: String,
    /// Partitions of the topic.
    pub partitions: usize,
    /// Partitions where it committed a position.
    pub committed: usize,
    /// Records still to process, summed over the partitions it committed in.
    pub lag: u64,
    /// The largest lag of one partition.
    pub max_lag: u64,
}

/// Every partition the stores answered with, by topic then partition.
pub fn partitions(report: &Report) -> Vec<PartitionRow> {
    let mut copies: BTreeMap<(String, NodeId), Vec<Copy>> = BTreeMap::new();
    for s in &report.stores {
        for p in s.partitions.iter().flatten() {
            let copy = Copy {
                store: s.id,
                state: p.clone(),
            };
            copies
                .entry((p.topic.clone(), p.partition))
                .or_default()
                .push(copy);
        }
    }
    copies
        .into_iter()
        .map(|((topic, partition), copies)| row(topic, partition, copies))
        .collect()
}

fn row(topic: String, partition: NodeId, copies: Vec<Copy>) -> PartitionRow {
    let head = copies.iter().map(|c| c.state.head).max().unwrap_or(0);
    let log_start = copies.iter().map(|c| c.state.log_start).min().unwrap_or(0);
    let bytes = copies.iter().map(|c| c.state.bytes).max().unwrap_or(0);
    let note = note(&copies, head);
    PartitionRow {
        topic,
        partition,
        log_start,
        head,
        records: (head + 1).saturating_sub(log_start),
        bytes,
        copies,
        note,
    }
}

/// Stores behind the highest head, and conflicts (two writers).
fn note(copies: &[Copy], head: u64) -> String {
    let mut notes = Vec::new();
    for c in copies {
        let store = short(&c.store);
        if let Some(at) = c.state.conflict_at {
            notes.push(format!("conflict at {at} on store {store}"));
        }
        if c.state.head < head {
            notes.push(format!("store {store} at {}", c.state.head));
        }
    }
    notes.join("; ")
}

/// The first 8 hex digits of an id: enough to tell nodes apart in a table.
pub fn short(id: &NodeId) -> String {
    id.to_string().chars().take(8).collect()
}

/// Every topic the stores answered with.
pub fn topics(report: &Report) -> Vec<TopicRow> {
    let mut rows: BTreeMap<String, (TopicRow, std::collections::BTreeSet<NodeId>)> =
        BTreeMap::new();
    for p in partitions(report) {
        let (row, stores) = rows.entry(p.topic.clone()).or_insert_with(|| {
            let row = TopicRow {
                topic: p.topic.clone(),
                partitions: 0,
                records: 0,
                bytes: 0,
                stores: 0,
            };
            (row, Default::default())
        });
        row.partitions += 1;
        row.records += p.records;
        row.bytes += p.bytes;
        stores.extend(p.copies.iter().map(|c| c.store));
        row.stores = stores.len();
    }
    rows.into_values().map(|(r, _)| r).collect()
}

/// The named consumer's position in every partition of the topics where it
/// committed one (a partition it never committed in shows no position).
pub fn positions(report: &Report) -> Vec<PositionRow> {
    let mut kept: BTreeMap<(String, NodeId), u64> = BTreeMap::new();
    for s in &report.stores {
        for p in s.positions.iter().flatten() {
            let k = (p.topic.clone(), p.partition);
            let v = kept.entry(k).or_insert(p.offset);
            *v = (*v).max(p.offset);
        }
    }
    let topics: std::collections::BTreeSet<&String> = kept.keys().map(|(t, _)| t).collect();
    let mut rows: Vec<PositionRow> = partitions(report)
        .into_iter()
        .filter(|p| topics.contains(&p.topic))
        .map(|p| {
            let position = kept.get(&(p.topic.clone(), p.partition)).copied();
            PositionRow {
                lag: position.map(|o| (p.head + 1).saturating_sub(o)),
                topic: p.topic,
                partition: p.partition,
                position,
                head: p.head,
            }
        })
        .collect();
    // Positions in partitions no store answered for (all copies deleted,
    // or their stores silent) still show.
    for ((topic, partition), offset) in &kept {
        if !rows
            .iter()
            .any(|r| r.topic == *topic && r.partition == *partition)
        {
            rows.push(PositionRow {
                topic: topic.clone(),
                partition: *partition,
                position: Some(*offset),
                head: 0,
                lag: None,
            });
        }
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

/// One partition of a group's topics: who reads it and how far it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: NodeId,
    /// The member that reads it, as the members compute it from the
    /// members the towers know (`None`: no member is alive).
    pub member: Option<NodeId>,
    /// The group's committed position.
    pub position: Option<u64>,
    /// The partition's highest offset on any store.
    pub head: u64,
    /// Records still to process.
    pub lag: Option<u64>,
}

/// A group's members (as the towers know them) and who reads each
/// partition of the topics it committed in, with its lag.
pub fn group(report: &Report, name: &str) -> (Vec<NodeId>, Vec<GroupRow>) {
    let members: Vec<NodeId> = report
        .peers
        .iter()
        .filter(|p| p.role == dafka_proto::Role::Consumer && p.group == name)
        .map(|p| p.id)
        .collect();
    let rows = positions(report);
    let parts: std::collections::BTreeSet<(String, NodeId)> = rows
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    let owners = dafka_consumer::assign(&members, &parts);
    let rows = rows
        .into_iter()
        .map(|r| GroupRow {
            member: owners.get(&(r.topic.clone(), r.partition)).copied(),
            topic: r.topic,
            partition: r.partition,
            position: r.position,
            head: r.head,
            lag: r.lag,
        })
        .collect();
    (members, rows)
}

/// The named consumer's lag per topic.
pub fn lag(report: &Report) -> Vec<LagRow> {
    let mut rows: BTreeMap<String, LagRow> = BTreeMap::new();
    for p in positions(report) {
        let row = rows.entry(p.topic.clone()).or_insert_with(|| LagRow {
            topic: p.topic.clone(),
            partitions: 0,
            committed: 0,
            lag: 0,
            max_lag: 0,
        });
        row.partitions += 1;
        row.committed += usize::from(p.position.is_some());
        if let Some(l) = p.lag {
            row.lag += l;
            row.max_lag = row.max_lag.max(l);
        }
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests;
