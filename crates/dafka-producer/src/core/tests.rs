use super::*;
use bytes::Bytes;
use dafka_protocol::Machine;

const ME: NodeId = NodeId([1; 16]);
const S1: NodeId = NodeId([0xA; 16]);
const S2: NodeId = NodeId([0xB; 16]);
const C: NodeId = NodeId([0xC; 16]);

fn core(min_acks: usize) -> ProducerCore {
    let cfg = ProducerConfig {
        min_acks,
        ..Default::default()
    };
    let mut p = ProducerCore::new(ME, "t".into(), cfg);
    p.drain(&mut Vec::new());
    p
}

/// What the producer sent, runs taken apart into their records.
fn sent(p: &mut ProducerCore) -> Vec<Message> {
    let mut out = Vec::new();
    p.drain(&mut out);
    let mut msgs = Vec::new();
    for o in out {
        match o {
            Output::Send(m) => msgs.push(m),
            Output::SendRun { frames, records } => {
                let before = msgs.len();
                assert!(dafka_proto::decode_all(&frames.to_vec(), &mut msgs).is_ok());
                assert_eq!(msgs.len() - before, records as usize);
            }
            _ => {}
        }
    }
    msgs
}

/// The offsets of the DIRECT-RECORDs sent to the consumer C, the only
/// messages expected.
fn fetched(p: &mut ProducerCore) -> Vec<u64> {
    sent(p)
        .into_iter()
        .map(|m| match m {
            Message::DirectRecord { to, record } if to == C => record.offset,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn ack(store: NodeId, offset: u64) -> Input<ProducerCommand, Infallible> {
    Input::Message(Message::Ack(Ack {
        topic: "t".into(),
        partition: ME,
        offset,
        store,
    }))
}

fn fetch(offset: u64, count: u32) -> Input<ProducerCommand, Infallible> {
    Input::Message(Message::Fetch(Fetch {
        topic: "t".into(),
        partition: ME,
        offset,
        count,
        sender: C,
    }))
}

#[test]
fn subscribes_to_its_acks_and_fetches() {
    let mut p = ProducerCore::new(ME, "t".into(), ProducerConfig::default());
    let mut out = Vec::new();
    p.drain(&mut out);
    assert!(out.contains(&Output::Subscribe(routing::node_key(MessageId::Ack, &ME))));
    assert!(out.contains(&Output::Subscribe(routing::node_key(MessageId::Fetch, &ME))));
}

#[test]
fn offsets_start_at_zero_and_records_are_sent() {
    let mut p = core(1);
    let t = Instant::now();
    assert_eq!(p.publish(Bytes::from_static(b"a"), t), 0);
    assert_eq!(p.publish(Bytes::from_static(b"b"), t), 1);
    let msgs = sent(&mut p);
    assert!(
        matches!(&msgs[..], [Message::Record(a), Message::Record(b)] if a.offset == 0 && b.offset == 1)
    );
}

#[test]
fn keeps_records_until_acked_and_ignores_bogus_acks() {
    let mut p = core(1);
    let t = Instant::now();
    for _ in 0..5 {
        p.publish(Bytes::from_static(b"x"), t);
    }
    p.handle(ack(S1, u64::MAX), t);
    assert_eq!(p.unacked(), 5, "an ACK past our head is ignored");
    p.handle(ack(S1, 2), t);
    assert_eq!(p.unacked(), 2);
    p.handle(ack(S1, 1), t);
    assert_eq!(p.unacked(), 2, "ACKs never go back");
}

#[test]
fn min_acks_waits_for_distinct_stores() {
    let mut p = core(2);
    let t = Instant::now();
    for _ in 0..4 {
        p.publish(Bytes::from_static(b"x"), t);
    }
    p.handle(ack(S1, 3), t);
    p.handle(ack(S1, 3), t);
    assert_eq!(p.unacked(), 4, "one store twice is not two stores");
    p.handle(ack(S2, 1), t);
    assert_eq!(p.unacked(), 2);
}

#[test]
fn answers_fetch_from_unacked_records_only() {
    let mut p = core(1);
    let t = Instant::now();
    for _ in 0..5 {
        p.publish(Bytes::from_static(b"x"), t);
    }
    p.handle(ack(S1, 1), t);
    sent(&mut p);
    p.handle(fetch(0, 4_000_000_000), t);
    let offs = fetched(&mut p);
    assert_eq!(offs, [2, 3, 4]);
}

#[test]
fn head_starts_after_the_first_record_and_repeats() {
    let mut p = core(1);
    let t = Instant::now();
    p.on_timeout(t + Duration::from_secs(5));
    assert!(sent(&mut p).is_empty(), "no HEAD before any record");
    p.publish(Bytes::from_static(b"x"), t);
    sent(&mut p);
    p.on_timeout(t + Duration::from_millis(999));
    assert!(sent(&mut p).is_empty());
    p.on_timeout(t + Duration::from_millis(1000));
    assert!(matches!(&sent(&mut p)[..], [Message::Head(h)] if h.offset == 0));
}

#[test]
fn a_new_record_subscriber_gets_a_head_at_once() {
    let mut p = core(1);
    let t = Instant::now();
    p.publish(Bytes::from_static(b"x"), t);
    sent(&mut p);
    p.handle(Input::Subscribed(routing::any_key(MessageId::Record)), t);
    assert!(matches!(&sent(&mut p)[..], [Message::Head(_)]));
}

#[test]
fn close_ends_when_acked_or_at_the_timeout() {
    let mut p = core(1);
    let t = Instant::now();
    p.publish(Bytes::from_static(b"x"), t);
    p.close(t, Duration::from_secs(1));
    assert!(!p.is_done());
    p.handle(ack(S1, 0), t);
    p.on_timeout(t);
    assert!(p.is_done());

    let mut q = core(1);
    q.publish(Bytes::from_static(b"x"), t);
    q.close(t, Duration::from_secs(1));
    q.on_timeout(t + Duration::from_secs(1));
    assert!(q.is_done());
    assert_eq!(q.unacked(), 1);
}

fn answer(store: NodeId, offset: u64, state: HeadState) -> Input<ProducerCommand, Infallible> {
    Input::Message(Message::DirectHead {
        to: ME,
        head: Head {
            topic: "t".into(),
            partition: ME,
            offset,
        },
        store: Some(store),
        state,
        log_start: 0,
    })
}

#[test]
fn a_partition_taken_over_continues_after_the_stores_head() {
    let t = Instant::now();
    let mut p = ProducerCore::claim(ME, "t".into(), ProducerConfig::default(), t);
    let mut out = Vec::new();
    p.drain(&mut out);
    assert!(out.contains(&Output::Subscribe(routing::node_key(
        MessageId::DirectHead,
        &ME
    ))));
    p.handle(Input::Subscribed(routing::any_key(MessageId::GetHeads)), t);
    p.handle(Input::Subscribed(routing::any_key(MessageId::GetHeads)), t);
    let asks = sent(&mut p);
    assert!(asks.iter().all(|m| matches!(
        m,
        Message::GetHeads {
            partition: Some(ME),
            sender: ME,
            ..
        }
    )));
    assert!(!asks.is_empty());
    p.handle(answer(S1, 99, HeadState::Holds), t);
    assert_eq!(p.claim_outcome(), None, "one of two stores answered");
    p.handle(answer(S2, 0, HeadState::Empty), t);
    assert_eq!(p.claim_outcome(), Some(&ClaimOutcome::Start(100)));
    assert_eq!(p.publish(Bytes::from_static(b"x"), t), 100);
}

/// The queue of unacknowledged records has room for the whole budget
/// from the start, so it never grows (and copies itself) under load.
#[test]
fn the_unacked_queue_is_sized_from_the_budget_up_to_a_cap() {
    let room = |bytes: usize| {
        let cfg = ProducerConfig {
            max_unacked_bytes: bytes,
            ..Default::default()
        };
        ProducerCore::new(ME, "t".into(), cfg).unacked.capacity()
    };
    assert!(room(32 << 20) >= (32 << 20) / RECORD_OVERHEAD);
    assert!(room(1 << 40) <= 2 * HELD_ROOM_MAX);
}

#[test]
fn a_claim_nobody_answers_fails_at_its_deadline() {
    let t = Instant::now();
    let cfg = ProducerConfig {
        claim_timeout: 1000,
        ..Default::default()
    };
    let mut p = ProducerCore::claim(ME, "t".into(), cfg, t);
    p.on_timeout(t + Duration::from_millis(500));
    assert_eq!(p.claim_outcome(), None);
    assert!(p.next_timeout().is_some(), "it asks again");
    p.on_timeout(t + Duration::from_millis(1000));
    assert_eq!(p.claim_outcome(), Some(&ClaimOutcome::Failed(0)));
}

#[test]
fn records_leave_before_a_head_and_fetches_span_the_ring_buffer() {
    // A budget of 16 small records: the ring buffer has room for 16.
    let cfg = ProducerConfig {
        min_acks: 1,
        max_unacked_bytes: 16 * RECORD_OVERHEAD,
        ..Default::default()
    };
    let mut p = ProducerCore::new(ME, "t".into(), cfg);
    p.drain(&mut Vec::new());
    assert_eq!(p.unacked.capacity(), 16);
    let t = Instant::now();
    for _ in 0..10 {
        p.publish(Bytes::from_static(b"x"), t);
    }
    // The HEAD of a close must follow the records it names.
    p.close(t, Duration::from_secs(1));
    let msgs = sent(&mut p);
    assert_eq!(msgs.len(), 11);
    assert!(matches!(msgs.last(), Some(Message::Head(h)) if h.offset == 9));
    // ACKs free the front of the buffer, new records wrap around into it.
    p.handle(ack(S1, 6), t);
    for _ in 0..10 {
        p.publish(Bytes::from_static(b"y"), t);
    }
    let live: Vec<u64> = sent(&mut p)
        .into_iter()
        .filter_map(|m| match m {
            Message::Record(r) => Some(r.offset),
            _ => None,
        })
        .collect();
    assert_eq!(live, (10..20).collect::<Vec<_>>());
    assert!(!p.unacked.as_slices().1.is_empty(), "the buffer wrapped");
    p.handle(fetch(0, 100), t);
    assert_eq!(fetched(&mut p), (7..20).collect::<Vec<_>>());
}

/// Records keep their own offsets: if the handle's numbering ever jumps,
/// the records after the jump leave in a run of their own, each under the
/// offset the application was told, and keys and headers go with them.
#[test]
fn a_jump_in_the_handles_numbering_starts_a_new_run() {
    let mut p = core(1);
    let t = Instant::now();
    let publish = |offset, record| Input::Command(ProducerCommand::Publish { offset, record });
    p.handle(publish(0, ProducerRecord::new("a")), t);
    p.handle(publish(1, ProducerRecord::new("b").key("k")), t);
    p.handle(publish(5, ProducerRecord::new("c").header("h", "v")), t);
    let mut out = Vec::new();
    p.drain(&mut out);
    let runs: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::SendRun { records, .. } => Some(*records),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [2, 1]);
    p.handle(fetch(0, 10), t);
    let recs: Vec<dafka_proto::Record> = sent(&mut p)
        .into_iter()
        .filter_map(|m| match m {
            Message::DirectRecord { record, .. } => Some(record),
            _ => None,
        })
        .collect();
    let offsets: Vec<u64> = recs.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 5]);
    assert_eq!(recs[1].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(recs[2].headers, [("h".to_string(), Bytes::from("v"))]);
    assert_eq!(
        p.unacked_records().map(|(o, _)| o).collect::<Vec<_>>(),
        [0, 1, 5]
    );
}
