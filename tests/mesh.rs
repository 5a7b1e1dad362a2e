//! The mesh end to end: the real binaries, real sockets, real RocksDB.
//! Issue 3's scenarios, one test each.

mod support;

use std::collections::HashMap;
use support::*;

/// 1. The quickstart: a consumer from the beginning, started first, receives
///    exactly the 1,000 lines a producer pipes in, in order.
#[test]
fn quickstart_1000_lines_in_order() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = store(&t, dir.path());
    let reader = consumer(&t, "hello", &["--from-beginning", "--max-messages", "1000"]);
    let lines = numbered("line", 1000);
    assert!(
        produce(&t, "hello", &lines, &[]).success(),
        "producer: every record ACKed"
    );
    assert_eq!(reader.stdout_lines(1000, TIMEOUT), lines);
}

/// 2. A consumer started after the producer has exited gets everything from
///    the store.
#[test]
fn late_consumer_reads_everything_from_the_store() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = store(&t, dir.path());
    let lines = numbered("rec", 500);
    assert!(produce(&t, "late", &lines, &[]).success());
    let mut reader = consumer(&t, "late", &["--from-beginning", "--max-messages", "500"]);
    assert_eq!(reader.stdout_lines(500, TIMEOUT), lines);
    assert!(
        reader.wait(TIMEOUT).success(),
        "exits 0 after --max-messages"
    );
}

/// 3. With `latest`, a consumer sees only records published after it
///    joined: none of the old partition, and the new one without a gap.
#[test]
fn latest_sees_only_new_records() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = store(&t, dir.path());
    assert!(produce(&t, "news", &numbered("old", 100), &[]).success());

    let reader = consumer(&t, "news", &["--print-offset"]);
    let mut live = Proc::spawn("dafka_console_producer", &["news"], Some(&t));
    // Feed new records until the consumer shows the first one: it is
    // connected then. Bounded by TIMEOUT, no sleeping.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut sent = 0;
    let first = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "consumer never saw a new record"
        );
        live.write_lines([format!("new-{sent}")]);
        sent += 1;
        if let Ok(l) = reader
            .stdout
            .recv_timeout(std::time::Duration::from_millis(50))
        {
            break l;
        }
    };
    live.write_lines((sent..sent + 50).map(|i| format!("new-{i}")));
    live.close_stdin();
    assert!(live.wait(TIMEOUT).success());
    let (off, text) = first.split_once('\t').expect("offset\\tcontent");
    let start: usize = off.parse().expect("offset");
    assert_eq!(
        text,
        format!("new-{start}"),
        "the first record shown is a new one"
    );
    let rest = reader.stdout_lines(sent + 50 - start - 1, TIMEOUT);
    for (i, l) in rest.iter().enumerate() {
        assert_eq!(
            l,
            &format!("{}\tnew-{}", start + 1 + i, start + 1 + i),
            "contiguous, in order, no old record"
        );
    }
}

/// 4. A store restarted on the same directory serves everything it had.
#[test]
fn restarted_store_serves_everything() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = store(&t, dir.path());
    let lines = numbered("kept", 300);
    assert!(produce(&t, "kept", &lines, &[]).success());
    assert!(
        first.interrupt().success(),
        "Ctrl-C stops the store cleanly"
    );
    let _second = store(&t, dir.path());
    let reader = consumer(&t, "kept", &["--from-beginning", "--max-messages", "300"]);
    assert_eq!(reader.stdout_lines(300, TIMEOUT), lines);
}

/// 5. Two stores, one killed with -9 in the middle of the stream: a consumer
///    from the beginning still gets every record.
#[test]
fn two_stores_one_killed_nothing_lost() {
    let (_tower, t) = tower();
    let (d1, d2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let mut doomed = store(&t, d1.path());
    let _survivor = store(&t, d2.path());
    let lines = numbered("ha", 1000);
    let mut p = Proc::spawn("dafka_console_producer", &["ha"], Some(&t));
    p.write_lines(&lines[..500]);
    doomed.kill();
    p.write_lines(&lines[500..]);
    p.close_stdin();
    assert!(
        p.wait(TIMEOUT).success(),
        "the surviving store ACKed everything"
    );
    let reader = consumer(&t, "ha", &["--from-beginning", "--max-messages", "1000"]);
    assert_eq!(reader.stdout_lines(1000, TIMEOUT), lines);
}

/// 7. Two producers on one topic: both partitions arrive, each in order.
#[test]
fn two_producers_two_partitions_each_in_order() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = store(&t, dir.path());
    assert!(produce(&t, "pair", &numbered("a", 200), &[]).success());
    assert!(produce(&t, "pair", &numbered("b", 200), &[]).success());
    let args = [
        "--from-beginning",
        "--print-partition",
        "--print-offset",
        "--max-messages",
        "400",
    ];
    let reader = consumer(&t, "pair", &args);
    let mut parts: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for l in reader.stdout_lines(400, TIMEOUT) {
        let f: Vec<&str> = l.splitn(3, '\t').collect();
        parts
            .entry(f[0].into())
            .or_default()
            .push((f[1].parse().expect("offset"), f[2].into()));
    }
    assert_eq!(parts.len(), 2);
    for recs in parts.values() {
        let prefix = &recs[0].1[..1];
        let want: Vec<(u64, String)> = (0..200).map(|i| (i, format!("{prefix}-{i}"))).collect();
        assert_eq!(recs, &want);
    }
}
