//! The library as an application uses it: readiness, borrowed content,
//! and the difference between "nothing yet" and "stopped".

use dafka::{Consumer, OffsetReset, Producer, RecvTimeoutError};
use dafka_testkit::{TestCluster, EVENT_TIMEOUT};
use std::time::Duration;

#[test]
fn an_application_waits_for_the_mesh_and_publishes_borrowed_bytes() {
    let cluster = TestCluster::start().expect("tower");
    let cfg = &cluster.config;
    let producer = Producer::new("lib", &cfg.producer, &cfg.beacon).expect("producer");
    // Nobody else is there yet: the wait says so (no peer can appear).
    assert!(!producer.wait_for_peers(1, Duration::from_millis(100)));
    let db = tempfile::tempdir().expect("db");
    let _store = cluster.store(db.path()).expect("store");
    assert!(producer.wait_for_peers(1, EVENT_TIMEOUT), "the store joins");

    let mut reused = Vec::with_capacity(64);
    for i in 0..3u8 {
        reused.clear();
        reused.extend_from_slice(&[b'r', i, 0xFF]);
        producer.publish(&reused[..]).expect("publish borrowed");
    }
    let line = String::from("a line");
    producer.publish(&line).expect("publish &String");
    assert!(producer.flush(EVENT_TIMEOUT), "ACKed");

    let mut ccfg = cfg.consumer.clone();
    ccfg.offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    consumer.subscribe("lib").expect("subscribe");
    let got: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            consumer
                .recv_timeout(EVENT_TIMEOUT)
                .expect("record")
                .content
                .to_vec()
        })
        .collect();
    assert_eq!(
        got,
        [
            vec![b'r', 0, 0xFF],
            vec![b'r', 1, 0xFF],
            vec![b'r', 2, 0xFF],
            b"a line".to_vec()
        ]
    );
    // Caught up: a timeout, not a stopped consumer.
    assert_eq!(
        consumer.recv_timeout(Duration::from_millis(10)).err(),
        Some(RecvTimeoutError::Timeout)
    );
    consumer.close();
    assert_eq!(producer.close().unacked, 0);
}
