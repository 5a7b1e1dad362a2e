//! Steps of named consumers' positions: GET-POSITIONS, DIRECT-POSITIONS,
//! COMMIT and COMMIT-ACK, for the consumer and the store features.

use super::scripted::{client, msg};
use super::{named_id, Mesh};
use cucumber::{given, then, when};
use dafka::{Consumer, OffsetReset, Record};
use dafka_proto::{Message, Position};
use std::time::Duration;

#[given(expr = "a consumer named {string} with offset reset {word}")]
fn a_named_consumer(w: &mut Mesh, name: String, reset: String) {
    let mut cfg = w.config();
    cfg.consumer.name = name;
    cfg.consumer.offset_reset = match reset.as_str() {
        "earliest" => OffsetReset::Earliest,
        _ => OffsetReset::Latest,
    };
    w.consumer = Some(Consumer::new(&cfg.consumer, &cfg.beacon).expect("consumer starts"));
}

#[given(expr = "a consumer starting at time {int}")]
fn a_consumer_at_a_time(w: &mut Mesh, time: u64) {
    let mut cfg = w.config();
    cfg.consumer.from_time = time;
    w.consumer = Some(Consumer::new(&cfg.consumer, &cfg.beacon).expect("consumer starts"));
}

#[then(expr = "the scripted store receives a GET-POSITIONS for time {int} in {string}")]
fn get_positions_at(w: &mut Mesh, time: u64, topic: String) {
    let consumer = w.consumer().id();
    msg(w.peer(), "GET-POSITIONS", |m| match m {
        Message::GetPositions {
            sender,
            topics,
            from_time_ms: Some(t),
            ..
        } if *t == time && *sender == consumer && topics.contains(&topic) => Some(()),
        _ => None,
    });
}

#[when(expr = "the scripted store says time {int} is at offset {int}")]
fn says_time(w: &mut Mesh, time: u64, offset: u64) {
    store_answers(w, String::new(), Some(time), offset);
}

/// The scripted store's DIRECT-POSITIONS: the stored partition at `offset`.
fn store_answers(w: &mut Mesh, name: String, from_time_ms: Option<u64>, offset: u64) {
    let to = w.consumer().id();
    let store = w.peer().id();
    let position = Position {
        topic: "hello".into(),
        partition: w.partition,
        offset,
    };
    w.peer()
        .send(&Message::DirectPositions {
            to,
            store,
            name,
            topics: vec!["hello".into()],
            positions: vec![position],
            more: false,
            from_time_ms,
        })
        .expect("send");
}

#[then(expr = "the scripted store receives a GET-POSITIONS of {string} for {string}")]
fn get_positions(w: &mut Mesh, name: String, topic: String) {
    let consumer = w.consumer().id();
    msg(w.peer(), "GET-POSITIONS", |m| match m {
        Message::GetPositions {
            name: n,
            sender,
            topics,
            from_time_ms: None,
        } if *n == name && *sender == consumer && topics.contains(&topic) => Some(()),
        _ => None,
    });
}

#[given(expr = "the scripted store says {string} is at offset {int}")]
#[when(expr = "the scripted store says {string} is at offset {int}")]
fn says_position(w: &mut Mesh, name: String, offset: u64) {
    store_answers(w, name, None, offset);
}

#[when(expr = "the application commits offset {int} of the stored partition")]
fn app_commits(w: &mut Mesh, offset: u64) {
    let r = Record {
        topic: "hello".into(),
        partition: w.partition,
        offset,
        ..Default::default()
    };
    w.consumer().commit(&r).expect("commit");
}

#[then(expr = "the scripted store receives a COMMIT of {string} at offset {int}")]
fn receives_commit(w: &mut Mesh, name: String, offset: u64) {
    let partition = w.partition;
    // Earlier COMMITs (auto-commit may send some as records are taken) are
    // remembered too: a store acknowledges every one.
    let mut seen = Vec::new();
    msg(w.peer(), "COMMIT", |m| match m {
        Message::Commit {
            name: n,
            seq,
            positions,
            ..
        } if *n == name => {
            seen.push(*seq);
            positions
                .iter()
                .any(|p| p.partition == partition && p.offset == offset)
                .then_some(())
        }
        _ => None,
    });
    w.offsets.extend(seen);
}

#[when("the scripted store acknowledges the COMMIT")]
fn acks_commit(w: &mut Mesh) {
    let to = w.consumer().id();
    let store = w.peer().id();
    for seq in std::mem::take(&mut w.offsets) {
        w.peer()
            .send(&Message::CommitAck { to, store, seq })
            .expect("send");
    }
}

#[then("the consumer has nothing left to commit")]
fn nothing_left(w: &mut Mesh) {
    // With every commit acknowledged, a sync has nothing to wait for.
    w.consumer()
        .commit_sync(Duration::from_secs(5))
        .expect("every commit acknowledged");
}

// ---- the store's side ----

#[when(expr = "the scripted consumer commits {string} at offset {int} of partition {string}")]
fn client_commits(w: &mut Mesh, name: String, offset: u64, partition: String) {
    let partition = named_id(&partition);
    let seq = w.offsets.len() as u64 + 1;
    w.offsets.push(seq);
    let peer = client(w);
    let sender = peer.id();
    let position = Position {
        topic: "hello".into(),
        partition,
        offset,
    };
    peer.send(&Message::Commit {
        name,
        sender,
        seq,
        positions: vec![position],
    })
    .expect("send");
}

#[then("the store acknowledges the commit")]
fn store_acks(w: &mut Mesh) {
    let store = w.store().id();
    let seq = *w.offsets.last().expect("a commit sent");
    let peer = client(w);
    msg(peer, "COMMIT-ACK", |m| {
        matches!(m, Message::CommitAck { store: s, seq: q, .. } if *s == store && *q == seq)
            .then_some(())
    });
}

#[when(expr = "the scripted consumer asks the store for the positions of {string} in {string}")]
fn client_asks(w: &mut Mesh, name: String, topic: String) {
    let peer = client(w);
    let sender = peer.id();
    peer.send(&Message::GetPositions {
        name,
        sender,
        topics: vec![topic],
        from_time_ms: None,
    })
    .expect("send");
}

#[then(expr = "the scripted consumer is told {string} is at offset {int} of partition {string}")]
fn client_told(w: &mut Mesh, name: String, offset: u64, partition: String) {
    let partition = named_id(&partition);
    let peer = client(w);
    let got = msg(peer, "DIRECT-POSITIONS", |m| match m {
        Message::DirectPositions {
            name: n,
            positions,
            more: false,
            ..
        } if *n == name => Some(positions.clone()),
        _ => None,
    });
    assert_eq!(got, vec![hello_at(partition, offset)]);
}

#[then(expr = "the scripted consumer is told {string} has no position in {string}")]
fn client_told_none(w: &mut Mesh, name: String, topic: String) {
    let peer = client(w);
    let (topics, positions) = msg(peer, "DIRECT-POSITIONS", |m| match m {
        Message::DirectPositions {
            name: n,
            topics,
            positions,
            more: false,
            ..
        } if *n == name => Some((topics.clone(), positions.clone())),
        _ => None,
    });
    assert_eq!(topics, vec![topic]);
    assert!(positions.is_empty(), "{positions:?}");
}

#[when(expr = "the scripted consumer asks the store where time {int} falls in {string}")]
fn client_asks_time(w: &mut Mesh, time: u64, topic: String) {
    let peer = client(w);
    let sender = peer.id();
    peer.send(&Message::GetPositions {
        name: String::new(),
        sender,
        topics: vec![topic],
        from_time_ms: Some(time),
    })
    .expect("send");
}

#[then(expr = "the scripted consumer is told time {int} is at offset {int}")]
fn client_told_time(w: &mut Mesh, time: u64, offset: u64) {
    let partition = w.partition;
    let peer = client(w);
    let got = msg(peer, "DIRECT-POSITIONS", |m| match m {
        Message::DirectPositions {
            positions,
            more: false,
            from_time_ms: Some(t),
            ..
        } if *t == time => Some(positions.clone()),
        _ => None,
    });
    assert_eq!(got, vec![hello_at(partition, offset)]);
}

/// A position in the scenarios' topic.
fn hello_at(partition: dafka_proto::NodeId, offset: u64) -> Position {
    Position {
        topic: "hello".into(),
        partition,
        offset,
    }
}
