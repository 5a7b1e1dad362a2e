//! The record model end to end: keys, headers and timestamps from the
//! console producer and the library, through a real store, to live and
//! replaying consumers, bit for bit; and a database written before records
//! had them still reads.

mod support;

use dafka::{Consumer, OffsetReset, Producer, ProducerRecord};
use dafka_testkit::{TestCluster, EVENT_TIMEOUT};
use serde_json::Value;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use support::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn json(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn console_keys_headers_and_timestamps_reach_live_and_replaying_consumers_alike() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let live = consumer(&t, "keyed", &["--from-beginning", "--format", "json"]);
    let before = now_ms();
    let mut producer = Proc::spawn(
        "dafka_console_producer",
        &[
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=::",
            "--header",
            "origin=test",
            "--header",
            "origin=again",
            "keyed",
        ],
        Some(&t),
    );
    producer.write_bytes(b"a.txt::ready\n::empty key\nbin::\xFF\xFE\nk::v::with::seps\n");
    producer.close_stdin();
    assert!(producer.wait(TIMEOUT).success());
    let after = now_ms();

    let got = json(&live.stdout_lines(4, TIMEOUT));
    let keys: Vec<&Value> = got.iter().map(|v| &v["key"]).collect();
    assert_eq!(keys, ["a.txt", "", "bin", "k"]);
    let values: Vec<&Value> = got.iter().map(|v| &v["value"]).collect();
    let binary: Value = serde_json::json!({"base64": "//4="});
    assert_eq!(
        values,
        [
            &Value::from("ready"),
            &"empty key".into(),
            &binary,
            &"v::with::seps".into()
        ]
    );
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["offset"], i as u64);
        assert_eq!(
            v["headers"],
            serde_json::json!([["origin", "test"], ["origin", "again"]])
        );
        let ts = v["timestamp"].as_i64().expect("a timestamp");
        assert!(
            (before..=after).contains(&ts),
            "{ts} not in {before}..={after}"
        );
    }

    // The store gives a new reader the same records, field for field.
    let mut replay = consumer(
        &t,
        "keyed",
        &[
            "--from-beginning",
            "--format",
            "json",
            "--timeout-ms",
            "3000",
        ],
    );
    assert!(replay.wait(TIMEOUT).success());
    let again: Vec<Value> = json(&replay.stdout.try_iter().collect::<Vec<_>>());
    assert_eq!(again, got);
}

#[test]
fn the_library_sends_every_field_and_stamps_what_has_no_time() {
    let cluster = TestCluster::start().expect("tower");
    let cfg = &cluster.config;
    let db = tempfile::tempdir().expect("db");
    let _store = cluster.store(db.path()).expect("store");
    let producer = Producer::new("lib-records", &cfg.producer, &cfg.beacon).expect("producer");
    let full = ProducerRecord::new(vec![0u8, 0xFF])
        .key(vec![0xC3u8, 0x28])
        .header("h", vec![1u8])
        .header("h", "two")
        .timestamp_ms(-1);
    producer.send(full.clone()).expect("send");
    let before = now_ms();
    producer.publish("plain").expect("publish");
    let after = now_ms();
    assert!(producer.flush(EVENT_TIMEOUT), "ACKed");
    producer.close();

    // Read from the store alone (the producer is gone).
    let mut ccfg = cfg.consumer.clone();
    ccfg.offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(&ccfg, &cfg.beacon).expect("consumer");
    consumer.subscribe("lib-records").expect("subscribe");
    let first = consumer.recv_timeout(EVENT_TIMEOUT).expect("record 0");
    assert_eq!(
        (first.key, first.headers, first.timestamp_ms, first.content),
        (full.key, full.headers, full.timestamp_ms, full.content)
    );
    let second = consumer.recv_timeout(EVENT_TIMEOUT).expect("record 1");
    assert_eq!((second.key, second.headers.len()), (None, 0));
    let ts = second.timestamp_ms.expect("stamped");
    assert!(
        (before..=after).contains(&ts),
        "{ts} not in {before}..={after}"
    );
    consumer.close();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// tests/fixtures/store-2026-11 is a store's database as the code before
/// keys, headers and timestamps wrote it (1000 records of topic "fixture"
/// in runs, 3 of "fixture2" one at a time, tables flushed).
#[test]
fn a_database_written_before_the_record_model_still_reads() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/store-2026-11");
    let db = tempfile::tempdir().expect("db");
    copy_dir(&fixture, db.path());
    let (_tower, t) = tower();
    let _store = store(&t, db.path());
    for (topic, want) in [
        (
            "fixture",
            (0..1000)
                .map(|i| format!("run record {i}"))
                .collect::<Vec<_>>(),
        ),
        ("fixture2", (0..3).map(|i| format!("single {i}")).collect()),
    ] {
        let mut reader = consumer(
            &t,
            topic,
            &[
                "--from-beginning",
                "--format",
                "json",
                "--timeout-ms",
                "3000",
            ],
        );
        assert!(reader.wait(TIMEOUT).success());
        let got = json(&reader.stdout.try_iter().collect::<Vec<_>>());
        assert_eq!(got.len(), want.len(), "{topic}");
        for (i, (v, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(v["offset"], i as u64, "{topic}");
            assert_eq!(v["value"], w.as_str());
            assert_eq!((&v["key"], &v["timestamp"]), (&Value::Null, &Value::Null));
            assert_eq!(v["headers"], serde_json::json!([]));
        }
    }
}

#[test]
fn a_line_without_the_key_separator_stops_the_producer_with_exit_2_and_names_it() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let args = ["--property", "parse.key=true"];
    let lines = ["k\tv".to_string(), "no key here".into(), "k\tafter".into()];
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &[&args[..], &["stops"]].concat(),
        Some(&t),
    );
    p.write_lines(&lines);
    p.close_stdin();
    assert_eq!(p.wait(TIMEOUT).code(), Some(2));
    let line = p.await_stderr("line 2", TIMEOUT);
    assert!(
        line.contains("has no key separator") && line.contains("--skip-bad-lines"),
        "{line}"
    );
    // What came before it was published and ACKed; nothing after it.
    let parts = read_all(&t, "stops");
    assert_exactly(&parts, &["v".to_string()]);

    let skip = ["--property", "parse.key=true", "--skip-bad-lines"];
    assert!(produce(&t, "skips", &lines, &skip).success());
    let parts = read_all(&t, "skips");
    assert_exactly(&parts, &["v".to_string(), "after".into()]);
}

/// A download service's results: each job is marked done only from the
/// producer's delivery reports, while the only store is killed with
/// SIGKILL and restarted mid-run. Afterwards the store is killed once more
/// and a fresh consumer reads the topic: every job marked done is there.
#[test]
fn jobs_marked_done_from_delivery_reports_are_all_readable_after_store_kills() {
    const JOBS: u64 = 3000;
    let cluster = TestCluster::start().expect("tower");
    let cfg = &cluster.config;
    let t = Towers {
        sub: cfg.beacon.sub_address.clone(),
        pub_: cfg.beacon.pub_address.clone(),
    };
    let db = tempfile::tempdir().expect("db");
    let mut store1 = store(&t, db.path());
    let producer = Producer::new("results", &cfg.producer, &cfg.beacon).expect("producer");
    let mut done = 0u64; // every job below this is marked done
    let mut store2 = None;
    for job in 0..JOBS {
        let r = ProducerRecord::new(format!("result-{job}")).key(format!("job-{job}"));
        producer.send(r).expect("send");
        while let Ok(w) = producer.deliveries().try_recv() {
            done = done.max(w);
        }
        if job == 1000 {
            store1.kill();
        }
        if job == 1500 {
            store2 = Some(store(&t, db.path()));
        }
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    while done < JOBS && std::time::Instant::now() < deadline {
        if let Ok(w) = producer.deliveries().recv_timeout(EVENT_TIMEOUT) {
            done = done.max(w);
        }
    }
    assert_eq!(done, JOBS, "every job reported delivered");
    producer.close();
    if let Some(mut s) = store2 {
        s.kill();
    }
    let _store3 = store(&t, db.path());
    let parts = read_all(&t, "results");
    let want: Vec<String> = (0..JOBS).map(|j| format!("result-{j}")).collect();
    assert_exactly(&parts, &want);
}

#[test]
fn a_consumer_starts_at_any_offset_of_one_partition_and_waits_past_the_end() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let state = tempfile::tempdir().expect("state");
    let state_dir = state.path().to_str().expect("utf-8");
    let spool = ["--state-dir", state_dir];
    assert!(produce(&t, "any", &numbered("a", 10), &spool).success());
    // A second partition, which an assigned reader must not show.
    assert!(produce(&t, "any", &numbered("other", 3), &[]).success());
    let partition = std::fs::read_to_string(state.path().join("partition")).expect("partition");
    let partition = partition
        .split_whitespace()
        .next()
        .expect("uuid")
        .to_string();

    let from7 = [
        "--partition",
        &partition,
        "--offset",
        "7",
        "--print-offset",
        "--timeout-ms",
        "2000",
    ];
    let mut r = consumer(&t, "any", &from7);
    assert!(r.wait(TIMEOUT).success());
    let got: Vec<String> = r.stdout.try_iter().collect();
    assert_eq!(got, ["7\ta-7", "8\ta-8", "9\ta-9"]);

    // Past the end: nothing yet; the records come once published.
    let waiting = consumer(
        &t,
        "any",
        &[
            "--partition",
            &partition,
            "--offset",
            "12",
            "--print-offset",
        ],
    );
    assert!(produce(&t, "any", &numbered("b", 5), &spool).success());
    let lines = waiting.stdout_lines(3, TIMEOUT);
    assert_eq!(lines, ["12\tb-2", "13\tb-3", "14\tb-4"]);
}

#[test]
fn exit_at_end_prints_what_exists_and_stops() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    assert!(produce(&t, "ends", &numbered("a", 300), &[]).success());
    assert!(produce(&t, "ends", &numbered("b", 5), &[]).success());
    let mut all = consumer(&t, "ends", &["--from-beginning", "-e"]);
    assert!(all.wait(TIMEOUT).success());
    let mut got: Vec<String> = all.stdout.try_iter().collect();
    got.sort();
    let mut want = numbered("a", 300);
    want.extend(numbered("b", 5));
    want.sort();
    assert_eq!(got, want);
    // From now on there is nothing; a topic never written has no end to wait for.
    for (topic, flags) in [
        ("ends", &["-e"][..]),
        ("never-written", &["-e", "--from-beginning"][..]),
    ] {
        let mut c = consumer(&t, topic, flags);
        assert!(c.wait(TIMEOUT).success(), "{topic}");
        assert_eq!(c.stdout.try_iter().count(), 0, "{topic}");
    }
}

/// 2026-11-30T09:00:00Z in ms.
const NINE: i64 = 1_796_029_200_000;

/// `--from-time` starts each partition where the stores' time index says:
/// the first record at or after the time, counting a clock that stepped
/// back by the latest time before it (Kafka's rule); a partition with
/// nothing that late starts at its end.
#[test]
fn a_consumer_starts_at_a_time_in_every_partition() {
    let cluster = TestCluster::start().expect("tower");
    let cfg = &cluster.config;
    let db = tempfile::tempdir().expect("db");
    let _store = cluster.store(db.path()).expect("store");
    let minute = 60_000;
    let stamps = [0, 1, 0, 2, 3, 4].map(|m| NINE + m * minute);
    let late = Producer::new("times", &cfg.producer, &cfg.beacon).expect("producer");
    for (i, ts) in stamps.iter().enumerate() {
        let r = ProducerRecord::new(format!("late-{i}")).timestamp_ms(*ts);
        late.send(r).expect("send");
    }
    let early = Producer::new("times", &cfg.producer, &cfg.beacon).expect("producer");
    for i in 0..3 {
        let r = ProducerRecord::new(format!("early-{i}")).timestamp_ms(NINE - 3_600_000);
        early.send(r).expect("send");
    }
    assert!(
        late.flush(EVENT_TIMEOUT) && early.flush(EVENT_TIMEOUT),
        "ACKed"
    );
    let t = Towers {
        sub: cfg.beacon.sub_address.clone(),
        pub_: cfg.beacon.pub_address.clone(),
    };
    let read_from = |time: &str| {
        let mut c = consumer(&t, "times", &["--from-time", time, "-e"]);
        assert!(c.wait(TIMEOUT).success(), "{time}");
        c.stdout.try_iter().collect::<Vec<String>>()
    };
    // 09:01:30 UTC: the first record at or after it is late-3 (late-2, at
    // 09:00, comes after 09:01 and so is past the time already).
    assert_eq!(
        read_from("2026-11-30T10:01:30+01:00"),
        ["late-3", "late-4", "late-5"]
    );
    let half_past = (NINE + minute / 2).to_string();
    assert_eq!(
        read_from(&half_past),
        ["late-1", "late-2", "late-3", "late-4", "late-5"]
    );
    let mut all = read_from("2026-11-30T07:00:00Z");
    all.sort();
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(read_from("2026-11-30T09:05:00.001Z").is_empty());
    late.close();
    early.close();
}
