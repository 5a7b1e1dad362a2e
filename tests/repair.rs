//! 6. A live record that never reached the consumer is repaired by FETCH.
//!
//! A scripted producer (a `TestPeer` over real sockets) publishes offsets
//! 0..20 but deliberately skips offset 7 on the live path. The real consumer
//! must notice the gap, FETCH it, and deliver every offset exactly once.

use bytes::Bytes;
use dafka::{Consumer, OffsetReset};
use dafka_proto::{routing, Message, MessageId, Record, Role};
use dafka_testkit::{TestCluster, TestPeer, EVENT_TIMEOUT};

fn record(peer: &TestPeer, offset: u64) -> Record {
    Record {
        topic: "repair".into(),
        partition: peer.id(),
        offset,
        content: Bytes::from(format!("r{offset}")),
        ..Default::default()
    }
}

#[test]
fn dropped_live_record_is_fetched_and_delivered_once() {
    let cluster = TestCluster::start().expect("tower");
    let mut producer = TestPeer::join(Role::Producer, &cluster.config.beacon).expect("peer");
    producer
        .subscribe(&routing::node_key(MessageId::Fetch, &producer.id()))
        .expect("subscribe");

    let mut cfg = cluster.config.consumer.clone();
    cfg.offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(&cfg, &cluster.config.beacon).expect("consumer");
    consumer.subscribe("repair").expect("subscribe");

    // The consumer is listening once its subscription reaches us.
    let topic_key = routing::topic_key(MessageId::Record, "repair");
    producer
        .expect_subscriber(EVENT_TIMEOUT, &topic_key)
        .expect("consumer subscribed");

    for off in (0..20).filter(|&o| o != 7) {
        producer
            .send(&Message::Record(record(&producer, off)))
            .expect("send");
    }
    // The consumer asks for exactly the missing offset.
    let me = producer.id();
    let fetch = producer
        .expect_msg(EVENT_TIMEOUT, |m| match m {
            Message::Fetch(f) if f.partition == me => Some(f.clone()),
            _ => None,
        })
        .expect("a FETCH for the gap");
    assert_eq!((fetch.offset, fetch.count), (7, 1));
    assert_eq!(fetch.sender, consumer.id());

    // Answer it twice, as a store and the producer both might.
    for _ in 0..2 {
        let msg = Message::DirectRecord {
            to: fetch.sender,
            record: record(&producer, 7),
        };
        producer.send(&msg).expect("send");
    }
    let got: Vec<u64> = (0..20)
        .map(|_| consumer.recv_timeout(EVENT_TIMEOUT).expect("record").offset)
        .collect();
    assert_eq!(got, (0..20).collect::<Vec<u64>>());
    // And nothing more: the duplicate answer was dropped.
    producer
        .send(&Message::Record(record(&producer, 20)))
        .expect("send");
    let next = consumer.recv_timeout(EVENT_TIMEOUT).expect("record 20");
    assert_eq!(next.offset, 20);
    assert_eq!(
        consumer
            .stats()
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
