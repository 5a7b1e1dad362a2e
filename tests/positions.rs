//! Durable named positions end to end: real stores (RocksDB in temporary
//! directories), real sockets, the console consumer killed with SIGKILL.

mod support;

use dafka::{Consumer, ConsumerError, OffsetReset, Producer};
use dafka_testkit::{TestCluster, EVENT_TIMEOUT};
use std::time::Duration;
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
    let unread = dafka::Record {
        topic: "lib-pos".into(),
        partition: dafka::NodeId([9; 16]),
        ..Default::default()
    };
    assert!(matches!(
        c.commit(&unread),
        Err(ConsumerError::NotRead { .. })
    ));
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

    // Batches: `poll` returns what is ready, in order; with auto-commit a
    // batch counts once the next is taken, the last on close.
    for i in 10..20 {
        producer.publish(format!("r{i}")).expect("publish");
    }
    assert!(producer.flush(EVENT_TIMEOUT));
    let c = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    c.subscribe("lib-pos").expect("subscribe");
    let mut polled = Vec::new();
    while polled.len() < 10 {
        let batch = c.poll(EVENT_TIMEOUT).expect("a batch");
        assert!(!batch.is_empty(), "poll returns records or an error");
        polled.extend(batch.iter().map(|r| r.offset));
    }
    assert_eq!(polled, (10..20).collect::<Vec<_>>());
    c.close();
    producer.publish("r20").expect("publish");
    let c = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    c.subscribe("lib-pos").expect("subscribe");
    assert_eq!(c.recv_timeout(EVENT_TIMEOUT).expect("record").offset, 20);
    c.close();
    producer.close();
}

/// A tiny deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The file-sync example (crates/dafka/examples/file_sync.rs) under
/// SIGKILL: the copier is killed at random points (right after a copy,
/// before its commit, or after it) and restarted until every file is in
/// place. Every file must be whole, no temporary file may be left, and no
/// file whose notification was committed may be copied again.
#[test]
fn file_sync_survives_kill_9_at_random_points() {
    const FILES: u64 = 300;
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let src = tempfile::tempdir().expect("src");
    let dest = tempfile::tempdir().expect("dest");
    let mut rng = Rng(0x5EED_F11E);
    for i in 0..FILES {
        let len = 1 + rng.below(64 << 10) as usize;
        let body: Vec<u8> = (0..len).map(|j| (j as u64 * 31 + i) as u8).collect();
        std::fs::write(src.path().join(format!("f{i:03}")), body).expect("write");
    }
    let env = [
        ("DAFKA_BEACON__SUB_ADDRESS", t.sub.as_str()),
        ("DAFKA_BEACON__PUB_ADDRESS", t.pub_.as_str()),
    ];
    let srcp = src.path().to_str().expect("utf-8");
    let destp = dest.path().to_str().expect("utf-8");
    let mut announce = Proc::spawn_env("file_sync", &["announce", srcp], None, &env);
    assert!(announce.wait(TIMEOUT).success());

    let mut log: Vec<String> = Vec::new();
    let mut kills = 0;
    while kills < 12 {
        let mut copier = Proc::spawn_env("file_sync", &["sync", srcp, destp], None, &env);
        // Kill after a random number of copies, at either side of a commit.
        let copies = 1 + rng.below(25) as usize;
        let after_commit = rng.below(2) == 1;
        let mut copied = 0;
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut done = false;
        while std::time::Instant::now() < deadline {
            let Ok(line) = copier.stdout.recv_timeout(Duration::from_secs(5)) else {
                done = true; // nothing left to copy
                break;
            };
            let is_copy = line.starts_with("copied ");
            log.push(line);
            copied += usize::from(is_copy);
            if copied >= copies && (is_copy != after_commit) {
                break;
            }
        }
        copier.kill();
        log.extend(copier.stdout.try_iter());
        kills += 1;
        if done {
            break;
        }
    }
    let mut last = Proc::spawn_env("file_sync", &["sync", srcp, destp, "3000"], None, &env);
    assert!(last.wait(TIMEOUT).success());
    log.extend(last.stdout.try_iter());

    for i in 0..FILES {
        let name = format!("f{i:03}");
        let want = std::fs::read(src.path().join(&name)).expect("source");
        let got = std::fs::read(dest.path().join(&name)).unwrap_or_default();
        assert!(
            got == want,
            "{name}: {} of {} bytes in place",
            got.len(),
            want.len()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dest.path())
        .expect("dest")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let mut committed = std::collections::HashSet::new();
    for line in &log {
        if let Some(name) = line.strip_prefix("committed ") {
            committed.insert(name.to_string());
        } else if let Some(name) = line.strip_prefix("copied ") {
            assert!(
                !committed.contains(name),
                "{name} copied again after its commit"
            );
        }
    }
    // (A copier killed right after commit_sync returned may not have
    // printed "committed": such a file is committed and never copied again
    // either, so only the copies can be counted.)
    let copies = log.iter().filter(|l| l.starts_with("copied ")).count() as u64;
    assert!(copies >= FILES, "{copies} copies of {FILES} files");
    eprintln!(
        "file_sync: {kills} kills, {} copies done twice",
        copies - FILES
    );
}
