//! Steps that create and observe the real component under test.

use super::Mesh;
use cucumber::{given, then, when};
use dafka::{Consumer, OffsetReset, Producer};
use std::sync::atomic::Ordering::Relaxed;

#[given("a Dafka mesh on loopback")]
fn mesh(_w: &mut Mesh) {
    // The tower starts on first use, so settings steps can come first.
}

#[given(expr = "beacons every {int} ms")]
fn beacons_every(w: &mut Mesh, ms: u64) {
    w.beacon_interval = Some(ms);
}

#[given(expr = "a consumer with offset reset {word}")]
fn a_consumer(w: &mut Mesh, reset: String) {
    let mut cfg = w.config();
    cfg.consumer.offset_reset = match reset.as_str() {
        "earliest" => OffsetReset::Earliest,
        _ => OffsetReset::Latest,
    };
    w.consumer = Some(Consumer::new(&cfg.consumer, &cfg.beacon).expect("consumer starts"));
}

#[given(expr = "the consumer subscribes to {string}")]
#[when(expr = "the consumer subscribes to {string}")]
fn subscribes(w: &mut Mesh, topic: String) {
    w.consumer().subscribe(&topic).expect("subscribe");
    w.topics.push(topic);
}

#[when(expr = "the consumer unsubscribes from {string}")]
fn unsubscribes(w: &mut Mesh, topic: String) {
    w.consumer().unsubscribe(&topic).expect("unsubscribe");
}

#[then(expr = "the consumer delivers offsets {int} to {int}")]
fn delivers(w: &mut Mesh, from: u64, to: u64) {
    for want in from..=to {
        let r = w
            .consumer()
            .recv_timeout(super::timeout())
            .unwrap_or_else(|e| panic!("offset {want} not delivered: {e}"));
        assert_eq!((&*r.topic, r.offset), ("hello", want));
    }
}

#[then(expr = "the consumer delivers offset {int} of {string} next")]
fn delivers_next(w: &mut Mesh, offset: u64, topic: String) {
    let r = w
        .consumer()
        .recv_timeout(super::timeout())
        .expect("a record");
    assert_eq!((&*r.topic, r.offset), (topic.as_str(), offset));
}

#[then(expr = "the consumer has counted {int} malformed message(s)")]
fn consumer_malformed(w: &mut Mesh, n: u64) {
    assert_eq!(w.consumer().stats().malformed.load(Relaxed), n);
}

#[given(expr = "a producer of {string}")]
fn a_producer(w: &mut Mesh, topic: String) {
    a_producer_with(w, topic, 1);
}

#[given(expr = "a producer of {string} with min_acks {int}")]
fn a_producer_with(w: &mut Mesh, topic: String, min_acks: usize) {
    let mut cfg = w.config();
    cfg.producer.min_acks = min_acks;
    w.producer = Some(Producer::new(&topic, &cfg.producer, &cfg.beacon).expect("producer starts"));
    w.topics.push(topic);
}

#[when(expr = "the producer publishes {int} record(s)")]
fn publishes(w: &mut Mesh, n: u64) {
    for i in 0..n {
        let off = w.producer().publish(format!("p{i}")).expect("publish");
        w.offsets.push(off);
    }
}

#[then(expr = "the producer has assigned offsets {int} to {int}")]
fn assigned(w: &mut Mesh, from: u64, to: u64) {
    assert_eq!(w.offsets, (from..=to).collect::<Vec<u64>>());
}

#[then(expr = "the producer has {int} unacknowledged record(s)")]
fn unacked(w: &mut Mesh, n: u64) {
    assert!(
        w.producer().wait_unacked_at_most(n, super::timeout()),
        "more than {n} unacknowledged"
    );
    assert_eq!(w.producer().unacked(), n);
}

#[then(expr = "the producer reports delivery of every offset below {int}")]
fn delivered(w: &mut Mesh, n: u64) {
    let deadline = std::time::Instant::now() + super::timeout();
    let mut last = 0;
    while last < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match w.producer().deliveries().recv_timeout(left) {
            Ok(v) => {
                assert!(v > last, "delivery reports only grow: {last} then {v}");
                last = v;
            }
            Err(_) => panic!("delivery reported up to {last}, not {n}"),
        }
    }
    assert_eq!(last, n, "no delivery past what was ACKed");
    assert_eq!(w.producer().acked(), n);
}

#[then(expr = "the producer has counted {int} malformed message(s)")]
fn producer_malformed(w: &mut Mesh, n: u64) {
    assert_eq!(w.producer().stats().malformed.load(Relaxed), n);
}

#[given("a store")]
fn a_store(w: &mut Mesh) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    w.dirs.push(dir);
    w.store = Some(w.cluster().store(&path).expect("store starts"));
    w.store_dir = Some(path);
}

#[when("the store restarts on the same directory")]
fn store_restarts(w: &mut Mesh) {
    if let Some(s) = w.store.take() {
        s.stop();
    }
    let path = w.store_dir.clone().expect("a store directory");
    w.store = Some(w.cluster().store(&path).expect("store restarts"));
    // A scripted consumer must meet the restarted store again.
    w.client_store = None;
}

#[when(expr = "the store restarts keeping {int} byte(s) per partition")]
fn store_restarts_with_retention(w: &mut Mesh, bytes: u64) {
    if let Some(s) = w.store.take() {
        s.stop();
    }
    let path = w.store_dir.clone().expect("a store directory");
    let mut cfg = w.config();
    cfg.store.db = path;
    cfg.store.retention_bytes = bytes;
    cfg.store.retention_check = 50;
    w.store = Some(dafka::Store::start(&cfg.store, &cfg.beacon).expect("store restarts"));
    w.client_store = None;
}

#[then(expr = "the store has counted {int} malformed message(s)")]
fn store_malformed(w: &mut Mesh, n: u64) {
    assert_eq!(w.store().stats().malformed.load(Relaxed), n);
}
