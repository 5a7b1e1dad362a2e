//! Durable named positions end to end: real stores (RocksDB in temporary
//! directories), real sockets, the console consumer killed with SIGKILL.

mod support;

use dafka::{Consumer, ConsumerError, OffsetReset, Producer};
use dafka_testkit::{TestCluster, EVENT_TIMEOUT};
use support::*;

/// Offsets of `--print-offset` lines (`OFFSET<tab>CONTENT`).
fn offsets(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| {
            l.split('\t')
                .next()
                .and_then(|o| o.parse().ok())
                .expect("offset")
        })
        .collect()
}

#[test]
fn a_named_console_consumer_resumes_after_what_it_wrote_across_store_restarts() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let mut store1 = store(&t, db.path());
    assert!(produce(&t, "jobs", &numbered("job", 100), &[]).success());

    let named = ["--name", "worker", "--from-beginning", "--print-offset"];
    let mut first = consumer(
        &t,
        "jobs",
        &[&named[..], &["--max-messages", "40"]].concat(),
    );
    assert!(first.wait(TIMEOUT).success());
    assert_eq!(
        offsets(&first.stdout.try_iter().collect::<Vec<_>>()),
        (0..40).collect::<Vec<_>>()
    );

    // The store restarts (its positions are on disk); more jobs arrive.
    store1.interrupt();
    let _store2 = store(&t, db.path());
    assert!(produce(&t, "jobs", &numbered("late", 10), &[]).success());

    let mut second = consumer(
        &t,
        "jobs",
        &[&named[..], &["--timeout-ms", "3000"]].concat(),
    );
    assert!(second.wait(TIMEOUT).success());
    let lines: Vec<String> = second.stdout.try_iter().collect();
    let mut got: Vec<String> = lines
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap_or("").to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = numbered("job", 100)[40..].to_vec();
    want.extend(numbered("late", 10));
    want.sort();
    assert_eq!(got, want, "exactly what the first run did not write");

    // Another name starts over; the same name again has nothing left.
    let mut other = consumer(
        &t,
        "jobs",
        &[
            "--name",
            "auditor",
            "--from-beginning",
            "--timeout-ms",
            "3000",
        ],
    );
    assert!(other.wait(TIMEOUT).success());
    assert_eq!(other.stdout.try_iter().count(), 110);
    let mut again = consumer(
        &t,
        "jobs",
        &[&named[..], &["--timeout-ms", "2000"]].concat(),
    );
    assert!(again.wait(TIMEOUT).success());
    assert_eq!(again.stdout.try_iter().count(), 0);
}

#[test]
fn a_killed_named_consumer_skips_nothing_when_it_restarts() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    assert!(produce(&t, "kill", &numbered("k", 500), &[]).success());

    let named = ["--name", "w", "--from-beginning", "--print-offset"];
    let mut first = consumer(&t, "kill", &named);
    let seen = offsets(&first.stdout_lines(200, TIMEOUT));
    first.kill();
    let mut seen_first = seen.clone();
    seen_first.extend(offsets(&first.stdout.try_iter().collect::<Vec<_>>()));

    let mut second = consumer(
        &t,
        "kill",
        &[&named[..], &["--timeout-ms", "3000"]].concat(),
    );
    assert!(second.wait(TIMEOUT).success());
    let resumed = offsets(&second.stdout.try_iter().collect::<Vec<_>>());
    // At least once: the second run starts at or before where the first
    // stopped writing, and together they cover every record, each run in
    // order without repeats of its own.
    // (Had the first run committed everything before it died, nothing is
    // left: start at the end.)
    let start = resumed.first().copied().unwrap_or(500);
    let last_first = *seen_first.last().expect("the first run wrote");
    assert!(
        start <= last_first + 1,
        "resumed at {start}, after {last_first}"
    );
    assert_eq!(resumed, (start..500).collect::<Vec<_>>());
    assert_eq!(seen_first, (0..seen_first.len() as u64).collect::<Vec<_>>());
}

#[test]
fn the_library_commits_on_request_and_on_close_and_reports_lag() {
    let cluster = TestCluster::start().expect("tower");
    let cfg = &cluster.config;
    let db = tempfile::tempdir().expect("db");
    let _store = cluster.store(db.path()).expect("store");
    let producer = Producer::new("lib-pos", &cfg.producer, &cfg.beacon).expect("producer");
    for i in 0..10 {
        producer.publish(format!("r{i}")).expect("publish");
    }
    assert!(producer.flush(EVENT_TIMEOUT));

    let mut ccfg = cfg.consumer.clone();
    ccfg.offset_reset = OffsetReset::Earliest;
    let plain = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    let r = dafka::Record::default();
    assert!(matches!(plain.commit(&r), Err(ConsumerError::NoName)));
    plain.close();

    // Explicit commits: only what the application says it processed.
    ccfg.name = "app".into();
    ccfg.auto_commit = false;
    let c = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    c.subscribe("lib-pos").expect("subscribe");
    let got: Vec<_> = (0..10)
        .map(|_| c.recv_timeout(EVENT_TIMEOUT).expect("record"))
        .collect();
    c.commit(&got[5]).expect("commit");
    c.commit_sync(EVENT_TIMEOUT).expect("acknowledged");
    let p = c.positions(EVENT_TIMEOUT).expect("positions");
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].position, p[0].committed, p[0].lag()),
        (10, Some(6), 0)
    );
    assert_eq!(p[0].partition, producer.partition());
    c.close();

    // Auto-commit: a record counts once the next is taken, and the last one
    // taken on close.
    ccfg.auto_commit = true;
    let c = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    c.subscribe("lib-pos").expect("subscribe");
    let first = c.recv_timeout(EVENT_TIMEOUT).expect("record");
    assert_eq!(first.offset, 6, "resumes after the commit");
    assert_eq!(c.recv_timeout(EVENT_TIMEOUT).expect("record").offset, 7);
    c.close();

    let c = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    c.subscribe("lib-pos").expect("subscribe");
    assert_eq!(c.recv_timeout(EVENT_TIMEOUT).expect("record").offset, 8);
    assert_eq!(c.recv_timeout(EVENT_TIMEOUT).expect("record").offset, 9);
    c.close();
    producer.close();
}
