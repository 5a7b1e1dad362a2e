//! A named consumer: positions gate a topic's start, commits wait for
//! acknowledgements, unanswered questions and commits are repeated.

use super::*;
use bytes::Bytes;
use dafka_protocol::Machine;

const ME: NodeId = NodeId([0xC; 16]);
const P: NodeId = NodeId([0x1; 16]);
const P2: NodeId = NodeId([0x2; 16]);
const S1: NodeId = NodeId([0x5; 16]);
const S2: NodeId = NodeId([0x6; 16]);

fn named(commit_acks: usize, now: Instant) -> ConsumerCore {
    let cfg = ConsumerConfig {
        name: "app".into(),
        commit_acks,
        ..Default::default()
    };
    let mut c = ConsumerCore::new(ME, cfg, now);
    c.subscribe("t", now);
    c
}

fn rec(partition: NodeId, offset: u64) -> Record {
    Record {
        topic: "t".into(),
        partition,
        offset,
        content: Bytes::from(format!("r{offset}")),
        ..Default::default()
    }
}

fn pos(partition: NodeId, offset: u64) -> Position {
    Position {
        topic: "t".into(),
        partition,
        offset,
    }
}

fn answer(store: NodeId, positions: Vec<Position>) -> Message {
    Message::DirectPositions {
        to: ME,
        store,
        name: "app".into(),
        topics: vec!["t".into()],
        positions,
        more: false,
        from_time_ms: None,
    }
}

fn feed(c: &mut ConsumerCore, m: Message, now: Instant) {
    c.handle(Input::Message(m), now);
}

fn sent(c: &mut ConsumerCore) -> Vec<Message> {
    c.take_outbox()
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn ack(store: NodeId, seq: u64) -> Message {
    Message::CommitAck { to: ME, store, seq }
}

/// Whether the consumer told the application that `ticket` is committed.
fn committed(c: &mut ConsumerCore, ticket: u64) -> bool {
    c.take_outbox()
        .into_iter()
        .any(|o| matches!(o, Output::Deliver(ConsumerDelivery::Committed(t)) if t == ticket))
}

fn delivered(c: &mut ConsumerCore) -> Vec<u64> {
    c.take_ready().map(|r| r.offset).collect()
}

#[test]
fn a_topic_starts_only_once_positions_are_known_and_resumes_there() {
    let t0 = Instant::now();
    let mut c = named(1, t0);
    let asked = sent(&mut c);
    assert!(asked.contains(&Message::GetPositions {
        name: "app".into(),
        sender: ME,
        topics: vec!["t".into()],
        from_time_ms: None,
    }));
    assert!(
        !asked.iter().any(|m| matches!(m, Message::GetHeads { .. })),
        "heads only once positions are known"
    );
    // Records before the answer are not delivered (nor is a start chosen).
    feed(&mut c, Message::Record(rec(P, 7)), t0);
    assert!(delivered(&mut c).is_empty());
    // Two stores answer: the highest position wins.
    feed(&mut c, answer(S1, vec![pos(P, 5)]), t0);
    let heads = sent(&mut c);
    assert!(
        heads.iter().any(|m| matches!(m, Message::GetHeads { .. })),
        "{heads:?}"
    );
    feed(&mut c, answer(S2, vec![pos(P, 3)]), t0);
    // Offset 7 arrives live: 5 and 6 are fetched first, nothing skipped.
    feed(&mut c, Message::Record(rec(P, 7)), t0);
    assert!(delivered(&mut c).is_empty());
    assert!(sent(&mut c)
        .iter()
        .any(|m| matches!(m, Message::Fetch(f) if f.offset == 5)));
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 5),
        },
        t0,
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 6),
        },
        t0,
    );
    assert_eq!(delivered(&mut c), [5, 6, 7]);
    // A partition never committed follows offset_reset (latest).
    feed(&mut c, Message::Record(rec(P2, 40)), t0);
    assert_eq!(delivered(&mut c), [40]);
}

#[test]
fn every_greeting_store_is_waited_for_until_a_retry_passes() {
    let t0 = Instant::now();
    let mut c = named(1, t0);
    feed(&mut c, Message::StoreHello { to: ME, store: S1 }, t0);
    feed(&mut c, Message::StoreHello { to: ME, store: S2 }, t0);
    sent(&mut c);
    feed(&mut c, answer(S1, vec![]), t0);
    assert!(
        c.named.as_ref().is_some_and(|n| n.is_loading("t")),
        "S2 greeted and may hold more"
    );
    // S2 stays silent: after a retry interval, one answer is enough.
    let later = t0 + c.cfg.fetch_retry() + Duration::from_millis(1);
    c.on_timeout(later);
    assert!(!c.named.as_ref().is_some_and(|n| n.is_loading("t")));
}

#[test]
fn without_enough_stores_the_topic_waits_and_asks_again() {
    let t0 = Instant::now();
    let mut c = named(2, t0);
    sent(&mut c);
    feed(&mut c, answer(S1, vec![pos(P, 5)]), t0);
    let later = t0 + c.cfg.fetch_retry() + Duration::from_millis(1);
    c.on_timeout(later);
    assert!(
        c.named.as_ref().is_some_and(|n| n.is_loading("t")),
        "one of two stores"
    );
    assert!(sent(&mut c)
        .iter()
        .any(|m| matches!(m, Message::GetPositions { .. })));
    // A partial answer (more follows) does not count.
    let mut partial = answer(S2, vec![]);
    if let Message::DirectPositions { more, .. } = &mut partial {
        *more = true;
    }
    feed(&mut c, partial, later);
    assert!(c.named.as_ref().is_some_and(|n| n.is_loading("t")));
    feed(&mut c, answer(S2, vec![]), later);
    assert!(!c.named.as_ref().is_some_and(|n| n.is_loading("t")));
}

#[test]
fn commits_go_out_on_the_timer_and_count_once_enough_stores_acknowledge() {
    let t0 = Instant::now();
    let mut c = named(2, t0);
    feed(&mut c, answer(S1, vec![]), t0);
    feed(&mut c, answer(S2, vec![]), t0);
    sent(&mut c);
    c.handle(
        Input::Command(ConsumerCommand::Processed(vec![pos(P, 3)])),
        t0,
    );
    c.handle(
        Input::Command(ConsumerCommand::Processed(vec![pos(P, 9)])),
        t0,
    );
    c.handle(Input::Command(ConsumerCommand::CommitNow(77)), t0);
    let commits = sent(&mut c);
    let seq = match commits.as_slice() {
        [Message::Commit { seq, positions, .. }] => {
            assert_eq!(positions, &[pos(P, 9)], "the highest only");
            *seq
        }
        other => panic!("{other:?}"),
    };
    let acked = |c: &mut ConsumerCore| committed(c, 77);
    feed(&mut c, ack(S1, seq), t0);
    assert!(!acked(&mut c), "one of two stores");
    // Unacknowledged: sent again after a retry interval.
    let later = t0 + c.cfg.fetch_retry() + Duration::from_millis(1);
    c.on_timeout(later);
    assert!(sent(&mut c)
        .iter()
        .any(|m| matches!(m, Message::Commit { seq: s, .. } if *s == seq)));
    feed(&mut c, ack(S1, seq), later);
    assert!(!acked(&mut c), "the same store twice is one store");
    feed(&mut c, ack(S2, seq), later);
    assert!(acked(&mut c));
    let p = c.positions();
    assert!(p.is_empty(), "no partition seen yet: {p:?}");
    // With nothing to commit, a sync is answered at once.
    c.handle(Input::Command(ConsumerCommand::CommitNow(78)), later);
    assert!(committed(&mut c, 78));
}

#[test]
fn positions_report_lag_from_the_head() {
    let t0 = Instant::now();
    let mut c = named(1, t0);
    feed(&mut c, answer(S1, vec![pos(P, 2)]), t0);
    feed(
        &mut c,
        Message::Head(dafka_proto::Head {
            topic: "t".into(),
            partition: P,
            offset: 9,
        }),
        t0,
    );
    let p = c.positions();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].position, p[0].committed, p[0].head),
        (2, Some(2), Some(9))
    );
    assert_eq!(p[0].lag(), 8, "offsets 2..=9");
}

#[test]
fn an_assigned_partition_starts_at_its_offset_and_others_are_ignored() {
    let t0 = Instant::now();
    let cfg = ConsumerConfig::default(); // latest, no name
    let mut c = ConsumerCore::new(ME, cfg, t0);
    c.assign("t", P, Some(2), t0);
    assert!(
        sent(&mut c)
            .iter()
            .any(|m| matches!(m, Message::GetHeads { .. })),
        "the stores are asked where the partition stands"
    );
    feed(&mut c, Message::Record(rec(P2, 0)), t0);
    feed(&mut c, Message::Record(rec(P, 4)), t0);
    assert!(delivered(&mut c).is_empty(), "2 and 3 first");
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 2),
        },
        t0,
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 3),
        },
        t0,
    );
    assert_eq!(delivered(&mut c), [2, 3, 4]);
    assert_eq!(c.positions().len(), 1, "the other partition is not read");
}

#[test]
fn the_end_is_reached_once_a_store_told_everything_and_it_is_delivered() {
    let t0 = Instant::now();
    let cfg = ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        ..Default::default()
    };
    let mut c = ConsumerCore::new(ME, cfg, t0);
    c.subscribe("t", t0);
    sent(&mut c);
    assert!(!c.at_end(), "no store has answered");
    let head = |partition, offset| Message::DirectHead {
        to: ME,
        head: dafka_proto::Head {
            topic: "t".into(),
            partition,
            offset,
        },
        store: Some(S1),
        state: dafka_proto::HeadState::Holds,
        log_start: 0,
    };
    feed(&mut c, head(P, 1), t0);
    let end = Message::DirectHead {
        to: ME,
        head: dafka_proto::Head {
            topic: "t".into(),
            partition: NodeId::NONE,
            offset: 0,
        },
        store: Some(S1),
        state: dafka_proto::HeadState::Empty,
        log_start: 0,
    };
    feed(&mut c, end, t0);
    assert!(!c.at_end(), "offsets 0 and 1 are not delivered yet");
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 0),
        },
        t0,
    );
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 1),
        },
        t0,
    );
    assert_eq!(delivered(&mut c), [0, 1]);
    assert!(c.at_end());
    // A record past the end makes a new end to reach.
    feed(&mut c, Message::Record(rec(P, 3)), t0);
    assert!(!c.at_end());
}

#[test]
fn a_silent_producer_makes_the_consumer_ask_the_stores_once() {
    let t0 = Instant::now();
    let mut c = ConsumerCore::new(ME, ConsumerConfig::default(), t0);
    c.subscribe("t", t0);
    feed(&mut c, Message::Record(rec(P, 0)), t0);
    sent(&mut c);
    let asks = |c: &mut ConsumerCore, at: Instant| {
        c.on_timeout(at);
        sent(c)
            .iter()
            .filter(|m| matches!(m, Message::GetHeads { .. }))
            .count()
    };
    assert_eq!(
        asks(&mut c, t0 + Duration::from_millis(500)),
        0,
        "not silent yet"
    );
    let silent = t0 + dafka_protocol::tuning::SILENT_PRODUCER;
    assert_eq!(asks(&mut c, silent), 1, "the tail may have been dropped");
    assert_eq!(
        asks(&mut c, silent + Duration::from_secs(2)),
        0,
        "once per silence"
    );
    // Fetched records are not the producer speaking; a live one is.
    let later = silent + Duration::from_secs(3);
    feed(
        &mut c,
        Message::DirectRecord {
            to: ME,
            record: rec(P, 1),
        },
        later,
    );
    assert_eq!(asks(&mut c, later + Duration::from_secs(3)), 0);
    let again = later + Duration::from_secs(4);
    feed(&mut c, Message::Record(rec(P, 2)), again);
    let silent_again = again + dafka_protocol::tuning::SILENT_PRODUCER;
    assert_eq!(asks(&mut c, silent_again), 1, "a new silence");
}

/// A consumer without a name starting at a time asks the stores where the
/// time falls, starts each partition there (the highest answer wins, as
/// with positions), ignores answers to other questions, and commits
/// nothing.
#[test]
fn a_consumer_starting_at_a_time_starts_where_the_stores_found_it() {
    let t0 = Instant::now();
    let cfg = ConsumerConfig {
        from_time: 1_000,
        commit_interval: 1,
        ..Default::default()
    };
    let mut c = ConsumerCore::new(ME, cfg, t0);
    c.subscribe("t", t0);
    let asked = sent(&mut c);
    assert!(asked.contains(&Message::GetPositions {
        name: String::new(),
        sender: ME,
        topics: vec!["t".into()],
        from_time_ms: Some(1_000),
    }));
    let answer_at = |store, time, offset| Message::DirectPositions {
        to: ME,
        store,
        name: String::new(),
        topics: vec!["t".into()],
        positions: vec![pos(P, offset)],
        more: false,
        from_time_ms: Some(time),
    };
    // An answer about another time (an earlier run of this consumer id
    // cannot have one, but a stray message can) changes nothing.
    feed(&mut c, answer_at(S1, 2_000, 9), t0);
    assert!(c.named.as_ref().is_some_and(|n| n.is_loading("t")));
    feed(&mut c, answer_at(S1, 1_000, 4), t0);
    feed(&mut c, answer_at(S2, 1_000, 3), t0);
    for o in 4..=5 {
        feed(&mut c, Message::Record(rec(P, o)), t0);
    }
    assert_eq!(delivered(&mut c), [4, 5]);
    c.handle(
        Input::Command(ConsumerCommand::Processed(vec![pos(P, 6)])),
        t0,
    );
    c.on_timeout(t0 + Duration::from_millis(10));
    assert!(
        !sent(&mut c)
            .iter()
            .any(|m| matches!(m, Message::Commit { .. })),
        "nothing is committed without a name"
    );
    let p = &c.positions()[0];
    assert_eq!((p.position, p.committed), (6, None));
}
