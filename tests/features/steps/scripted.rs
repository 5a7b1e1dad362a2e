//! Steps of the scripted peers: what they send and what they must receive.

use super::{named_id, timeout, Mesh};
use bytes::Bytes;
use cucumber::{given, then, when};
use dafka_proto::{routing, Ack, Fetch, Head, Message, MessageId, NodeId, Record, Role};
use dafka_testkit::PeerEvent as Event;
use dafka_testkit::TestPeer;

fn subscribed(peer: &mut TestPeer, prefix: &[u8]) {
    let what = String::from_utf8_lossy(prefix).into_owned();
    peer.expect_subscriber(timeout(), prefix)
        .unwrap_or_else(|e| panic!("no subscription {what:?}: {e}"));
}

pub fn msg<T>(peer: &mut TestPeer, what: &str, want: impl FnMut(&Message) -> Option<T>) -> T {
    peer.expect_msg(timeout(), want)
        .unwrap_or_else(|e| panic!("expected {what}: {e}"))
}

pub fn record(topic: &str, partition: NodeId, offset: u64, content: String) -> Record {
    Record {
        topic: topic.into(),
        partition,
        offset,
        content: Bytes::from(content),
        ..Default::default()
    }
}

// ---- the scripted peer facing a consumer ----

#[given("a scripted store connected to the consumer")]
fn store_to_consumer(w: &mut Mesh) {
    let peer = w.join(Role::Store);
    let me = peer.id();
    for k in [
        routing::node_key(MessageId::ConsumerHello, &me),
        routing::any_key(MessageId::GetHeads),
        routing::any_key(MessageId::GetPositions),
        routing::any_key(MessageId::Commit),
    ] {
        peer.subscribe(&k).expect("subscribe");
    }
    peer.subscribe(&routing::any_key(MessageId::Fetch))
        .expect("subscribe");
    w.partition = named_id("stored-partition");
    w.peer = Some(peer);
    let consumer = w.consumer().id();
    // The consumer's subscriber reached us, and ours reached it: it greets
    // any store that subscribes to its hellos.
    subscribed(
        w.peer(),
        &routing::node_key(MessageId::StoreHello, &consumer),
    );
    msg(w.peer(), "the consumer's hello", |m| {
        matches!(m, Message::ConsumerHello { to, .. } if *to == me).then_some(())
    });
}

#[given("a scripted producer connected to the consumer")]
fn producer_to_consumer(w: &mut Mesh) {
    let peer = w.join(Role::Producer);
    peer.subscribe(&routing::node_key(MessageId::Fetch, &peer.id()))
        .expect("subscribe");
    w.partition = peer.id();
    w.peer = Some(peer);
    for t in w.topics.clone() {
        subscribed(w.peer(), &routing::topic_key(MessageId::Record, &t));
    }
}

#[when("the scripted store greets the consumer")]
fn greets(w: &mut Mesh) {
    let to = w.consumer().id();
    let store = w.peer().id();
    w.peer()
        .send(&Message::StoreHello { to, store })
        .expect("send");
}

#[then(expr = "the consumer answers with a CONSUMER-HELLO listing {int} topic(s)")]
fn hello_count(w: &mut Mesh, n: usize) {
    let me = w.peer().id();
    let topics = msg(w.peer(), "CONSUMER-HELLO", |m| match m {
        Message::ConsumerHello { to, topics, .. } if *to == me => Some(topics.clone()),
        _ => None,
    });
    assert_eq!(topics.len(), n, "{topics:?}");
}

#[then(expr = "the consumer answers with a CONSUMER-HELLO listing {string}")]
fn hello_topic(w: &mut Mesh, topic: String) {
    let me = w.peer().id();
    let topics = msg(w.peer(), "CONSUMER-HELLO", |m| match m {
        Message::ConsumerHello { to, topics, .. } if *to == me && !topics.is_empty() => {
            Some(topics.clone())
        }
        _ => None,
    });
    assert_eq!(topics, vec![topic]);
}

#[then(expr = "the scripted store receives a GET-HEADS for {string}")]
fn get_heads(w: &mut Mesh, topic: String) {
    let sender = msg(w.peer(), "GET-HEADS", |m| match m {
        Message::GetHeads {
            topic: t,
            sender,
            partition: None,
        } if *t == topic => Some(*sender),
        _ => None,
    });
    assert_eq!(sender, w.consumer().id());
}

#[when(expr = "the scripted store sends a DIRECT-HEAD for offset {int}")]
fn direct_head(w: &mut Mesh, offset: u64) {
    let head = Head {
        topic: "hello".into(),
        partition: w.partition,
        offset,
    };
    let to = w.consumer().id();
    let store = Some(w.peer().id());
    let state = dafka_proto::HeadState::Holds;
    w.peer()
        .send(&Message::DirectHead {
            to,
            head,
            store,
            state,
            log_start: 0,
        })
        .expect("send");
}

// ---- records, heads and fetches from the scripted producer ----

fn send_records(
    w: &mut Mesh,
    topic: &str,
    partition: NodeId,
    from: u64,
    to: u64,
    content: Option<&str>,
) {
    for off in from..=to {
        let text = content.map_or_else(|| format!("r{off}"), str::to_string);
        w.first_content.entry(off).or_insert_with(|| text.clone());
        let r = record(topic, partition, off, text);
        w.peer().send(&Message::Record(r)).expect("send");
    }
}

#[when(expr = "the scripted producer sends records {int} to {int}")]
fn sends_records(w: &mut Mesh, from: u64, to: u64) {
    let p = w.partition;
    send_records(w, "hello", p, from, to, None);
}

#[when(expr = "the scripted producer sends records {int} to {int} as one run")]
fn sends_run(w: &mut Mesh, from: u64, to: u64) {
    let p = w.partition;
    let run: Vec<Record> = (from..=to)
        .map(|off| {
            let text = format!("r{off}");
            w.first_content.entry(off).or_insert_with(|| text.clone());
            record("hello", p, off, text)
        })
        .collect();
    let frames = dafka_proto::encode_run(None, &run);
    w.peer().send_raw(&frames.to_vec()).expect("send");
}

#[when(
    expr = "the scripted producer sends records {int} to {int} stamped {int} ms apart from {int}"
)]
fn sends_stamped(w: &mut Mesh, from: u64, to: u64, apart: i64, start: i64) {
    let p = w.partition;
    for off in from..=to {
        let text = format!("r{off}");
        w.first_content.entry(off).or_insert_with(|| text.clone());
        let mut r = record("hello", p, off, text);
        r.timestamp_ms = Some(start + apart * (off - from) as i64);
        w.peer().send(&Message::Record(r)).expect("send");
    }
}

#[when(expr = "the scripted producer sends records {int} to {int} of {string}")]
fn sends_records_of(w: &mut Mesh, from: u64, to: u64, topic: String) {
    let p = w.partition;
    send_records(w, &topic, p, from, to, None);
}

#[when(expr = "the scripted producer sends records {int} to {int} of partition {string}")]
fn sends_records_partition(w: &mut Mesh, from: u64, to: u64, name: String) {
    send_records(w, "hello", named_id(&name), from, to, None);
}

#[when(expr = "the scripted producer sends records {int} to {int} with content {string}")]
fn sends_records_content(w: &mut Mesh, from: u64, to: u64, content: String) {
    let p = w.partition;
    send_records(w, "hello", p, from, to, Some(&content));
}

#[when(expr = "the scripted producer sends a HEAD for offset {int}")]
fn sends_head(w: &mut Mesh, offset: u64) {
    let head = Head {
        topic: "hello".into(),
        partition: w.partition,
        offset,
    };
    w.peer().send(&Message::Head(head)).expect("send");
}

#[then(expr = "the {word} sends a FETCH from offset {int} for {int} record(s)")]
fn sends_fetch(w: &mut Mesh, who: String, offset: u64, count: u32) {
    let partition = w.partition;
    let f = msg(w.peer(), "FETCH", |m| match m {
        Message::Fetch(f) if f.partition == partition => Some(f.clone()),
        _ => None,
    });
    assert_eq!((f.offset, f.count), (offset, count), "{f:?}");
    let sender = if who == "store" {
        w.store().id()
    } else {
        w.consumer().id()
    };
    assert_eq!(f.sender, sender);
    w.fetch = Some(f);
}

fn answer(w: &mut Mesh, times: usize) {
    let f = w.fetch.clone().expect("a FETCH was seen");
    for _ in 0..times {
        for off in f.offset..f.offset + u64::from(f.count) {
            let r = record(&f.topic, f.partition, off, format!("r{off}"));
            w.peer()
                .send(&Message::DirectRecord {
                    to: f.sender,
                    record: r,
                })
                .expect("send");
        }
    }
}

#[when(regex = r"^the scripted (?:producer|store) answers the FETCH$")]
fn answers(w: &mut Mesh) {
    answer(w, 1);
}

#[when(expr = "the scripted store answers the FETCH with log start {int}")]
fn answers_from_log_start(w: &mut Mesh, log_start: u64) {
    let f = w.fetch.clone().expect("a FETCH was seen");
    let end = f.offset + u64::from(f.count);
    let head = Head {
        topic: f.topic.clone(),
        partition: f.partition,
        offset: end - 1,
    };
    let store = Some(w.peer().id());
    let said = Message::DirectHead {
        to: f.sender,
        head,
        store,
        state: dafka_proto::HeadState::Holds,
        log_start,
    };
    w.peer().send(&said).expect("send");
    for off in log_start..end {
        let r = record(&f.topic, f.partition, off, format!("r{off}"));
        let m = Message::DirectRecord {
            to: f.sender,
            record: r,
        };
        w.peer().send(&m).expect("send");
    }
}

#[when("the scripted producer answers the FETCH twice")]
fn answers_twice(w: &mut Mesh) {
    answer(w, 2);
}

// ---- the scripted peers facing a producer ----

#[given("a scripted consumer connected to the producer")]
#[when("a scripted consumer connected to the producer")]
fn consumer_to_producer(w: &mut Mesh) {
    let peer = w.join(Role::Consumer);
    let topic = w.topics[0].clone();
    peer.subscribe(&routing::node_key(MessageId::DirectRecord, &peer.id()))
        .expect("subscribe");
    peer.subscribe(&routing::topic_key(MessageId::Head, &topic))
        .expect("subscribe");
    w.peer = Some(peer);
    let p = w.producer().partition();
    subscribed(w.peer(), &routing::node_key(MessageId::Fetch, &p));
    // The producer has published: its HEAD proves it reaches us.
    msg(w.peer(), "a HEAD", |m| {
        matches!(m, Message::Head(_)).then_some(())
    });
}

#[given("a scripted store connected to the producer")]
fn store_to_producer(w: &mut Mesh) {
    let peer = w.join(Role::Store);
    peer.subscribe(&routing::any_key(MessageId::Head))
        .expect("subscribe");
    peer.subscribe(&routing::any_key(MessageId::Record))
        .expect("subscribe");
    w.peer = Some(peer);
    let p = w.producer().partition();
    subscribed(w.peer(), &routing::node_key(MessageId::Ack, &p));
}

fn fetch_from_producer(w: &mut Mesh, offset: u64, count: u32) {
    let sender = w.peer().id();
    let partition = w.producer().partition();
    let f = Fetch {
        topic: w.topics[0].clone(),
        partition,
        offset,
        count,
        sender,
    };
    w.peer().send(&Message::Fetch(f)).expect("send");
}

#[when(expr = "the scripted consumer fetches offsets {int} to {int}")]
fn fetches(w: &mut Mesh, from: u64, to: u64) {
    fetch_from_producer(w, from, (to - from + 1) as u32);
}

#[when(expr = "the scripted consumer fetches {int} records from offset {int}")]
fn fetches_count(w: &mut Mesh, count: u32, offset: u64) {
    fetch_from_producer(w, offset, count);
}

fn direct_records(peer: &mut TestPeer, from: u64, to: u64) -> Vec<Record> {
    let me = peer.id();
    let got: Vec<Record> = (from..=to)
        .map(|_| {
            msg(peer, "a DIRECT-RECORD", |m| match m {
                Message::DirectRecord { to, record } if *to == me => Some(record.clone()),
                _ => None,
            })
        })
        .collect();
    let offs: Vec<u64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offs, (from..=to).collect::<Vec<u64>>());
    got
}

#[then(expr = "the scripted consumer receives DIRECT-RECORDs {int} to {int}")]
fn receives_direct(w: &mut Mesh, from: u64, to: u64) {
    let peer = w
        .client
        .as_mut()
        .or(w.peer.as_mut())
        .expect("a scripted consumer");
    direct_records(peer, from, to);
}

#[then(
    expr = "the scripted consumer receives DIRECT-RECORDs {int} to {int} with the first content"
)]
fn receives_direct_first(w: &mut Mesh, from: u64, to: u64) {
    let got = direct_records(w.client.as_mut().expect("a scripted consumer"), from, to);
    for r in got {
        assert_eq!(
            String::from_utf8_lossy(&r.content),
            w.first_content[&r.offset]
        );
    }
}

#[then(expr = "the scripted consumer receives a HEAD for offset {int}")]
fn receives_head(w: &mut Mesh, offset: u64) {
    let h = msg(w.peer(), "a HEAD", |m| {
        if let Message::Head(h) = m {
            Some(h.clone())
        } else {
            None
        }
    });
    assert_eq!(h.offset, offset);
}

#[then(expr = "the scripted store receives no HEAD within {int} head intervals")]
fn no_head(w: &mut Mesh, n: u64) {
    let wait = std::time::Duration::from_millis(n * w.config().producer.head_interval);
    let got = w
        .peer()
        .expect_msg(wait, |m| matches!(m, Message::Head(_)).then_some(()));
    assert!(got.is_err(), "a HEAD before any record");
}

#[then(expr = "the scripted store receives a HEAD for offset {int}")]
fn store_receives_head(w: &mut Mesh, offset: u64) {
    receives_head(w, offset);
}

#[when(expr = "the scripted store ACKs offset {int} as store {string}")]
fn acks(w: &mut Mesh, offset: u64, store: String) {
    let a = Ack {
        topic: w.topics[0].clone(),
        partition: w.producer().partition(),
        offset,
        store: named_id(&store),
    };
    w.peer().send(&Message::Ack(a)).expect("send");
}

// ---- the scripted peers facing a store ----

fn connected_to_store(peer: &mut TestPeer, store: NodeId) {
    peer.subscribe(&routing::node_key(MessageId::StoreHello, &peer.id()))
        .expect("subscribe");
    subscribed(peer, &routing::node_key(MessageId::ConsumerHello, &store));
    msg(peer, "STORE-HELLO", |m| {
        matches!(m, Message::StoreHello { store: s, .. } if *s == store).then_some(())
    });
}

#[given("a scripted producer connected to the store")]
fn producer_to_store(w: &mut Mesh) {
    let peer = w.join(Role::Producer);
    let me = peer.id();
    peer.subscribe(&routing::node_key(MessageId::Ack, &me))
        .expect("subscribe");
    peer.subscribe(&routing::node_key(MessageId::Fetch, &me))
        .expect("subscribe");
    w.partition = me;
    w.peer = Some(peer);
    let store = w.store().id();
    connected_to_store(w.peer(), store);
}

fn ack_of(w: &mut Mesh, topic: &str, offset: u64) {
    let (partition, store) = (w.partition, w.store().id());
    msg(w.peer(), &format!("ACK {offset}"), |m| match m {
        Message::Ack(a) if a.partition == partition && a.topic == topic && a.offset == offset => {
            assert_eq!(a.store, store);
            Some(())
        }
        _ => None,
    });
}

#[then(expr = "the store has sent no ACK of {string} past offset {int}")]
fn no_ack_past(w: &mut Mesh, topic: String, offset: u64) {
    // Called after an ACK of a later message on the same connection has
    // arrived: an ACK sent before it is already queued, so nothing is
    // awaited here (no fixed wait, no timing).
    let partition = w.partition;
    let late = w.peer().expect(std::time::Duration::ZERO, |e| match e {
        Event::Message(Message::Ack(a))
            if a.partition == partition && a.topic == topic && a.offset > offset =>
        {
            Some(a.offset)
        }
        _ => None,
    });
    assert!(late.is_err(), "the store ACKed offset {late:?}");
}

#[when("the scripted producer asks the store for the head of its partition")]
fn asks_own_head(w: &mut Mesh) {
    let p = w.partition;
    ask_head_of(w, p);
}

#[when(expr = "the scripted producer asks the store for the head of partition {string}")]
fn asks_head_of(w: &mut Mesh, name: String) {
    ask_head_of(w, named_id(&name));
}

fn ask_head_of(w: &mut Mesh, partition: NodeId) {
    let peer = w.peer();
    let me = peer.id();
    peer.subscribe(&routing::node_key(MessageId::DirectHead, &me))
        .expect("subscribe");
    w.asked = Some(partition);
}

/// The answer to the last GET-HEADS naming a partition. The question is
/// repeated until answered, as a producer does: the store may hear it before
/// our subscription to its answers has reached it.
fn told(w: &mut Mesh) -> (u64, dafka_proto::HeadState) {
    let (me, store) = (w.peer().id(), w.store().id());
    let partition = w.asked.expect("a question was asked");
    let deadline = std::time::Instant::now() + timeout();
    loop {
        let ask = Message::GetHeads {
            topic: "hello".into(),
            sender: me,
            partition: Some(partition),
        };
        w.peer().send(&ask).expect("send");
        let got = w
            .peer()
            .expect_msg(std::time::Duration::from_millis(200), |m| match m {
                Message::DirectHead {
                    to,
                    head,
                    store: s,
                    state,
                    ..
                } if *to == me && *s == Some(store) && head.partition == partition => {
                    Some((head.offset, state.clone()))
                }
                _ => None,
            });
        match got {
            Ok(answer) => return answer,
            Err(e) if std::time::Instant::now() >= deadline => panic!("no DIRECT-HEAD: {e}"),
            Err(_) => {}
        }
    }
}

#[then(expr = "the scripted producer is told the store holds it up to offset {int}")]
fn told_holds(w: &mut Mesh, offset: u64) {
    assert_eq!(told(w), (offset, dafka_proto::HeadState::Holds));
}

#[then("the scripted producer is told the store holds none of it")]
fn told_empty(w: &mut Mesh) {
    assert_eq!(told(w).1, dafka_proto::HeadState::Empty);
}

#[then(expr = "the store ACKs offset {int}")]
fn store_acks(w: &mut Mesh, offset: u64) {
    ack_of(w, "hello", offset);
}

#[then(expr = "the store ACKs offset {int} of {string}")]
fn store_acks_of(w: &mut Mesh, offset: u64, topic: String) {
    ack_of(w, &topic, offset);
}

/// The scripted consumer of store scenarios, connected to the current store.
pub fn client(w: &mut Mesh) -> &mut TestPeer {
    if w.client.is_none() {
        let peer = w.join(Role::Consumer);
        let mine = [
            MessageId::DirectRecord,
            MessageId::DirectHead,
            MessageId::CommitAck,
            MessageId::DirectPositions,
        ];
        for k in mine {
            peer.subscribe(&routing::node_key(k, &peer.id()))
                .expect("subscribe");
        }
        w.client = Some(peer);
    }
    let store = w.store().id();
    if w.client_store != Some(store) {
        connected_to_store(w.client.as_mut().expect("client"), store);
        w.client_store = Some(store);
    }
    w.client.as_mut().expect("client")
}

fn client_fetch(w: &mut Mesh, offset: u64, count: u32) {
    let partition = w.partition;
    let peer = client(w);
    let f = Fetch {
        topic: "hello".into(),
        partition,
        offset,
        count,
        sender: peer.id(),
    };
    peer.send(&Message::Fetch(f)).expect("send");
}

#[when(regex = r"^(?:a|the) scripted consumer fetches offsets (\d+) to (\d+) from the store$")]
fn client_fetches(w: &mut Mesh, from: u64, to: u64) {
    client_fetch(w, from, (to - from + 1) as u32);
}

#[when(expr = "a scripted consumer fetches {int} records from offset {int} of the store")]
fn client_fetches_count(w: &mut Mesh, count: u32, offset: u64) {
    client_fetch(w, offset, count);
}

#[then(expr = "the scripted consumer is told the log start is {int}")]
fn client_told_log_start(w: &mut Mesh, log_start: u64) {
    let partition = w.partition;
    let peer = client(w);
    let got = msg(peer, "DIRECT-HEAD", |m| match m {
        Message::DirectHead {
            head, log_start, ..
        } if head.partition == partition => Some(*log_start),
        _ => None,
    });
    assert_eq!(got, log_start);
}

#[then(expr = "the store's log start becomes {int}")]
fn log_start_becomes(w: &mut Mesh, want: u64) {
    // Retention runs on the store's timer: ask for the heads until the
    // answer says so, within the scenario's timeout.
    let partition = w.partition;
    let deadline = std::time::Instant::now() + super::timeout();
    loop {
        let peer = client(w);
        let me = peer.id();
        let ask = Message::GetHeads {
            topic: "hello".into(),
            sender: me,
            partition: Some(partition),
        };
        peer.send(&ask).expect("send");
        let got = peer.expect_msg(std::time::Duration::from_millis(200), |m| match m {
            Message::DirectHead {
                head, log_start, ..
            } if head.partition == partition => Some(*log_start),
            _ => None,
        });
        match got {
            Ok(l) if l == want => return,
            Ok(l) if std::time::Instant::now() >= deadline => panic!("log start {l}, not {want}"),
            Err(e) if std::time::Instant::now() >= deadline => panic!("no DIRECT-HEAD: {e}"),
            _ => {}
        }
    }
}

#[when(expr = "a scripted consumer asks the store for the heads of {string}")]
fn client_get_heads(w: &mut Mesh, topic: String) {
    let peer = client(w);
    let sender = peer.id();
    peer.send(&Message::GetHeads {
        topic,
        sender,
        partition: None,
    })
    .expect("send");
}

#[when(expr = "a scripted consumer of {string} joins")]
fn client_joins(w: &mut Mesh, topic: String) {
    let peer = w.join(Role::Consumer);
    for k in [MessageId::DirectHead, MessageId::StoreHello] {
        peer.subscribe(&routing::node_key(k, &peer.id()))
            .expect("subscribe");
    }
    w.client = Some(peer);
    w.topics = vec![topic];
}

#[then("the store greets the scripted consumer")]
fn store_greets(w: &mut Mesh) {
    let store = w.store().id();
    let peer = w.client.as_mut().expect("client");
    msg(peer, "STORE-HELLO", |m| {
        matches!(m, Message::StoreHello { store: s, .. } if *s == store).then_some(())
    });
}

#[when("the scripted consumer answers the greeting")]
fn client_answers(w: &mut Mesh) {
    let store = w.store().id();
    let topics = w.topics.clone();
    let peer = w.client.as_mut().expect("client");
    subscribed(peer, &routing::node_key(MessageId::ConsumerHello, &store));
    let consumer = peer.id();
    peer.send(&Message::ConsumerHello {
        to: store,
        consumer,
        topics,
    })
    .expect("send");
    w.client_store = Some(store);
}

#[then(expr = "the scripted consumer receives {int} DIRECT-HEADs for {string} with offsets {}")]
fn client_heads(w: &mut Mesh, n: usize, topic: String, offsets: String) {
    let mut want: Vec<u64> = offsets
        .split(" and ")
        .map(|s| s.trim().parse().expect("offset"))
        .collect();
    let peer = w.client.as_mut().expect("client");
    let me = peer.id();
    // Every head of the answer, up to its end (a DIRECT-HEAD of no
    // partition): nothing beyond those, without waiting for silence.
    let mut got = Vec::new();
    loop {
        let head = msg(peer, "DIRECT-HEAD", |m| match m {
            Message::DirectHead { to, head, .. } if *to == me && head.topic == topic => {
                Some(head.clone())
            }
            _ => None,
        });
        if head.partition == NodeId::NONE {
            break;
        }
        got.push(head.offset);
    }
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got.len(), n);
    assert_eq!(got, want);
}

// ---- a scripted admin tool facing a store ----

fn admin(w: &mut Mesh) -> &mut TestPeer {
    if w.client.is_none() {
        let peer = w.join(Role::Admin);
        peer.subscribe(&routing::node_key(MessageId::DirectPartitions, &peer.id()))
            .expect("subscribe");
        w.client = Some(peer);
        let store = w.store().id();
        // The store greets any node that listens for its hello: then both
        // directions are connected.
        connected_to_store(w.client.as_mut().expect("admin"), store);
        w.client_store = Some(store);
    }
    w.client.as_mut().expect("admin")
}

fn admin_ask(w: &mut Mesh, topic: Option<String>) {
    let peer = admin(w);
    let sender = peer.id();
    peer.send(&Message::GetPartitions { sender, topic })
        .expect("send");
}

#[when("a scripted admin asks the store for every partition")]
fn admin_asks_all(w: &mut Mesh) {
    admin_ask(w, None);
}

#[when(expr = "a scripted admin asks the store for the partitions of {string}")]
fn admin_asks_topic(w: &mut Mesh, topic: String) {
    admin_ask(w, Some(topic));
}

/// Every partition of one answer, up to its last message.
fn admin_answer(w: &mut Mesh) -> Vec<dafka_proto::PartitionState> {
    let store = w.store().id();
    let peer = w.client.as_mut().expect("admin");
    let me = peer.id();
    let mut all = Vec::new();
    loop {
        let (parts, more) = msg(peer, "DIRECT-PARTITIONS", |m| match m {
            Message::DirectPartitions {
                to,
                store: s,
                partitions,
                more,
            } if *to == me && *s == store => Some((partitions.clone(), *more)),
            _ => None,
        });
        all.extend(parts);
        if !more {
            return all;
        }
    }
}

#[then(expr = "the scripted admin hears of partitions {}")]
fn admin_hears(w: &mut Mesh, list: String) {
    let mut want: Vec<(String, u64)> = list
        .split(" and ")
        .map(|s| {
            let (topic, head) = s.split_once(" at head ").expect("\"topic\" at head N");
            (
                topic.trim_matches('"').to_string(),
                head.parse().expect("head"),
            )
        })
        .collect();
    let answer = admin_answer(w);
    assert!(
        answer.iter().all(|p| p.bytes > 0 && p.log_start == 0),
        "{answer:?}"
    );
    let mut got: Vec<(String, u64)> = answer.into_iter().map(|p| (p.topic, p.head)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[then("the scripted admin hears of no partition")]
fn admin_hears_none(w: &mut Mesh) {
    assert_eq!(admin_answer(w), []);
}
