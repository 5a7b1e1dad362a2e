use super::*;
use crate::report::{Question, StoreReport};
use dafka_proto::Position;

const A: NodeId = NodeId([0xa0; 16]);
const B: NodeId = NodeId([0xb0; 16]);
const P: NodeId = NodeId([1; 16]);
const Q: NodeId = NodeId([2; 16]);

fn state(topic: &str, partition: NodeId, log_start: u64, head: u64) -> PartitionState {
    PartitionState {
        topic: topic.into(),
        partition,
        head,
        log_start,
        bytes: (head + 1 - log_start) * 100,
        conflict_at: None,
    }
}

fn position(topic: &str, partition: NodeId, offset: u64) -> Position {
    Position {
        topic: topic.into(),
        partition,
        offset,
    }
}

fn report(stores: Vec<StoreReport>) -> Report {
    Report {
        question: Question::Positions {
            name: "billing".into(),
        },
        towers_expected: 1,
        towers: vec![NodeId([9; 16])],
        peers: vec![],
        stores,
        timed_out: false,
    }
}

/// Store A holds orders/P up to 99 from 10 and orders/Q; store B lags on
/// orders/P and holds logs/P.
fn two_stores() -> Report {
    report(vec![
        StoreReport {
            id: A,
            partitions: Some(vec![state("orders", P, 10, 99), state("orders", Q, 0, 4)]),
            positions: Some(vec![position("orders", P, 50)]),
        },
        StoreReport {
            id: B,
            partitions: Some(vec![state("orders", P, 0, 80), state("logs", P, 0, 0)]),
            positions: Some(vec![position("orders", P, 60)]),
        },
    ])
}

#[test]
fn a_partition_row_spans_every_copy_and_names_the_laggard() {
    let rows = partitions(&two_stores());
    assert_eq!(rows.len(), 3);
    let p = rows
        .iter()
        .find(|r| r.topic == "orders" && r.partition == P)
        .expect("orders/P");
    assert_eq!((p.log_start, p.head, p.records), (0, 99, 100));
    assert_eq!(p.bytes, 9000, "the largest copy");
    assert_eq!(p.copies.len(), 2);
    assert_eq!(p.note, "store b0b0b0b0 at 80");
    let q = rows.iter().find(|r| r.partition == Q).expect("orders/Q");
    assert_eq!(q.note, "");
}

#[test]
fn a_conflict_is_named() {
    let mut s = state("orders", P, 0, 9);
    s.conflict_at = Some(7);
    let r = report(vec![StoreReport {
        id: A,
        partitions: Some(vec![s]),
        positions: None,
    }]);
    assert_eq!(partitions(&r)[0].note, "conflict at 7 on store a0a0a0a0");
}

#[test]
fn topics_sum_their_partitions() {
    let rows = topics(&two_stores());
    assert_eq!(
        rows,
        vec![
            TopicRow {
                topic: "logs".into(),
                partitions: 1,
                records: 1,
                bytes: 100,
                stores: 1
            },
            TopicRow {
                topic: "orders".into(),
                partitions: 2,
                records: 105,
                bytes: 9500,
                stores: 2
            },
        ]
    );
}

#[test]
fn a_position_is_the_highest_any_store_keeps() {
    let rows = positions(&two_stores());
    // Only the topic it committed in; Q shows without a position.
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].partition, P);
    assert_eq!((rows[0].position, rows[0].lag), (Some(60), Some(40)));
    assert_eq!((rows[1].position, rows[1].lag), (None, None));
    let lag = lag(&two_stores());
    assert_eq!(
        lag,
        vec![LagRow {
            topic: "orders".into(),
            partitions: 2,
            committed: 1,
            lag: 40,
            max_lag: 40
        }]
    );
}

#[test]
fn a_position_without_a_partition_still_shows() {
    let r = report(vec![StoreReport {
        id: A,
        partitions: Some(vec![]),
        positions: Some(vec![position("gone", P, 7)]),
    }]);
    let rows = positions(&r);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].position, rows[0].lag), (Some(7), None));
}

#[test]
fn a_group_row_names_the_member_the_members_would_pick() {
    let mut r = two_stores();
    let member = |n: u8, group: &str| crate::report::Peer {
        id: NodeId([n; 16]),
        role: dafka_proto::Role::Consumer,
        endpoint: String::new(),
        age_ms: 0,
        group: group.into(),
    };
    r.peers = vec![member(7, "billing"), member(8, "other")];
    let (members, rows) = group(&r, "billing");
    assert_eq!(members, vec![NodeId([7; 16])], "only the group's");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.member == Some(NodeId([7; 16]))));
}
