//! A whole mesh in one process: a tower, a store, a producer and a consumer,
//! on loopback with ephemeral ports and a temporary store directory.
//!
//! Run it with `cargo run -p dafka --example hello`.

use dafka::{Config, Consumer, OffsetReset, Producer, Store, Tower};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = Config::default();
    // A private tower on ports the OS picks, so this never clashes with a
    // real cluster on 5556/5557.
    cfg.tower.sub_address = "tcp://127.0.0.1:*".into();
    cfg.tower.pub_address = "tcp://127.0.0.1:*".into();
    let tower = Tower::start(&cfg.tower)?;
    let (input, output) = tower.endpoints();
    cfg.beacon.sub_address = input.to_string();
    cfg.beacon.pub_address = output.to_string();
    cfg.beacon.bind = "tcp://127.0.0.1:*".into();

    let dir = tempfile::tempdir()?;
    cfg.store.db = dir.path().join("storedb");
    let store = Store::start(&cfg.store, &cfg.beacon)?;

    let producer = Producer::new("hello", &cfg.producer, &cfg.beacon)?;
    for i in 0..10 {
        producer.publish(format!("HELLO WORLD {i}"))?;
    }
    // Every record is stored (and ACKed) before we read from the start.
    assert!(
        producer.flush(Duration::from_secs(10)),
        "the store did not ACK in time"
    );

    cfg.consumer.offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
    consumer.subscribe("hello")?;
    for _ in 0..10 {
        let r = consumer
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("no record: {e}"))?;
        println!(
            "offset {}: {}",
            r.offset,
            String::from_utf8_lossy(&r.content)
        );
    }
    consumer.close();
    let report = producer.close();
    println!(
        "published {}, unacknowledged {}",
        report.published, report.unacked
    );
    store.stop();
    tower.stop();
    Ok(())
}
