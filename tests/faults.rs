//! Fault tests: the real binaries on loopback, a fault injected mid-stream,
//! and an exact check at the end: a fresh consumer reading from the
//! beginning gets every ACKed record, per partition in order, once, and
//! nothing else. A producer that exits 0 had every record ACKed.

mod support;

use dafka::NodeStats;
use dafka::{Consumer, ConsumerConfig, MeshConfig, OffsetReset};
use std::time::{Duration, Instant};
use support::*;

/// Feeds a producer lines in chunks until `cond` holds, bounded in time.
fn feed_until(p: &mut Proc, lines: &[String], cond: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + TIMEOUT;
    let mut at = 0;
    while !cond() {
        assert!(
            Instant::now() < deadline && at < lines.len(),
            "condition never held"
        );
        let end = (at + 10).min(lines.len());
        p.write_lines(&lines[at..end]);
        at = end;
    }
    at
}

/// 1. kill -9 a store in the middle of a 200,000-record stream and restart
///    it on the same directory: the producer still gets every record ACKed
///    and the restarted store serves all 200,000.
#[test]
fn store_killed_mid_stream_and_restarted() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = store(&t, dir.path());
    let lines = numbered("big", 200_000);
    let mut p = Proc::spawn("dafka_console_producer", &["big"], Some(&t));
    p.write_lines(&lines[..100_000]);
    s.kill();
    let _s = store(&t, dir.path());
    p.write_lines(&lines[100_000..]);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "every record ACKed");
    assert_exactly(&read_all(&t, "big"), &lines);
}

/// 1b. The same with 64 KiB records, which a store writes as table files of
///    their own rather than through its write-ahead log: killed once the
///    first such file is in, restarted, nothing ACKed is lost.
#[test]
fn store_killed_while_writing_large_records_and_restarted() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = store(&t, dir.path());
    let pad = "x".repeat(64 << 10);
    let lines: Vec<String> = numbered("large", 400)
        .into_iter()
        .map(|l| format!("{l}-{pad}"))
        .collect();
    let mut p = Proc::spawn("dafka_console_producer", &["large"], Some(&t));
    p.write_lines(&lines[..200]);
    poll_until("a table file of records", || {
        let files = std::fs::read_dir(dir.path()).map_err(|e| e.to_string())?;
        let mut paths = files.flatten().map(|e| e.path());
        match paths.any(|f| f.extension().is_some_and(|x| x == "sst")) {
            true => Ok(()),
            false => Err("none yet".to_string()),
        }
    });
    s.kill();
    let _s = store(&t, dir.path());
    p.write_lines(&lines[200..]);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "every record ACKed");
    assert_exactly(&read_all(&t, "large"), &lines);
}

/// 2. Two stores and min_acks = 2, one killed and restarted mid-stream: the
///    producer finishes only once both hold everything, and the restarted
///    one alone serves it all.
#[test]
fn quorum_of_two_with_one_store_restarted() {
    let (_tower, t) = tower();
    let (d1, d2) = (
        tempfile::tempdir().expect("d1"),
        tempfile::tempdir().expect("d2"),
    );
    let mut a = store(&t, d1.path());
    let mut b = store(&t, d2.path());
    let lines = numbered("q", 20_000);
    let args = ["--min-acks", "2", "quorum"];
    let mut p = Proc::spawn("dafka_console_producer", &args, Some(&t));
    p.write_lines(&lines[..10_000]);
    a.kill();
    let _a = store(&t, d1.path());
    p.write_lines(&lines[10_000..]);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "both stores ACKed everything");
    b.kill();
    assert_exactly(&read_all(&t, "quorum"), &lines);
}

/// 3. kill -9 a producer that has a state directory, restart it on that
///    directory: it continues its partition, and every record it accepted
///    before the crash is there, followed by the new ones.
#[test]
fn producer_killed_and_restarted_from_its_spool() {
    let (_tower, t) = tower();
    let (db, state) = (
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("state"),
    );
    let _s = store(&t, db.path());
    let state_arg = state.path().to_str().expect("utf-8");
    let live = consumer(&t, "spool", &["--from-beginning"]);
    let first = numbered("a", 50_000);
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &["--state-dir", state_arg, "spool"],
        Some(&t),
    );
    // Wait for the first records to reach a consumer, then feed more so the
    // kill lands mid-stream.
    p.write_lines(&first[..5_000]);
    let seen = live.stdout_lines(1_000, TIMEOUT).len();
    p.write_lines(&first[5_000..10_000]);
    p.kill();
    drop(live);
    let second = numbered("b", 1_000);
    let args = ["--state-dir", state_arg, "spool"];
    let mut again = Proc::spawn("dafka_console_producer", &args, Some(&t));
    again.write_lines(&second);
    again.close_stdin();
    assert!(
        again.wait(TIMEOUT).success(),
        "the restart got everything ACKed"
    );

    let parts = read_all(&t, "spool");
    let got = parts.values().next().expect("a partition");
    let kept = got.len() - second.len();
    assert!(
        kept >= seen,
        "{kept} records survived, {seen} were seen before the kill"
    );
    eprintln!("{kept} records accepted before the kill ({seen} seen live), then 1,000 more");
    let mut want: Vec<String> = first[..kept].to_vec();
    want.extend(second);
    assert_exactly(&parts, &want);
}

/// 4. A consumer whose application stops reading: its queue fills, ZeroMQ's
///    high-water marks overflow and live records are dropped. Once it reads
///    again, every gap is repaired and it gets everything, in order, once.
#[test]
fn slow_consumer_overflows_and_catches_up() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _s = store(&t, dir.path());
    let mesh = MeshConfig {
        sub_address: t.sub.clone(),
        pub_address: t.pub_.clone(),
        interval: 100,
        timeout: 1000,
        high_watermark: 100,
        // The kernel's own receive buffer (well under 1 MB on loopback):
        // 4 MiB of it would hold most of the stream, and nothing would
        // overflow to repair.
        receive_buffer: 0,
        security: security(),
        ..MeshConfig::default()
    };
    let cfg = ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        queue: 100,
        fetch_retry: 200,
        heads_refresh: 500,
        ..ConsumerConfig::default()
    };
    let slow = Consumer::new(&cfg, &mesh).expect("consumer");
    slow.subscribe("slow").expect("subscribe");
    let lines: Vec<String> = (0..50_000).map(|i| format!("{i:0>200}")).collect();
    let mut p = Proc::spawn("dafka_console_producer", &["slow"], Some(&t));
    // The first record proves the consumer is connected; then it stops
    // reading while the other 49,999 go by.
    p.write_lines(&lines[..1]);
    let first = slow.recv_timeout(TIMEOUT).expect("first record");
    p.write_lines(&lines[1..]);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success());
    let mut got = vec![String::from_utf8_lossy(&first.content).into_owned()];
    while got.len() < lines.len() {
        let r = slow
            .recv_timeout(TIMEOUT)
            .expect("every record, eventually");
        assert_eq!(r.offset as usize, got.len(), "in order, once");
        got.push(String::from_utf8_lossy(&r.content).into_owned());
    }
    assert_eq!(got, lines);
    let fetches = NodeStats::get(&slow.stats().fetches);
    assert!(fetches > 0, "the overflow left gaps to repair");
    eprintln!("slow consumer repaired its gaps with {fetches} FETCHes");
}

/// 5. The tower killed and restarted mid-stream: the stream goes on (the
///    data path never touches the tower) and a node started afterwards
///    still finds everyone.
#[test]
fn tower_killed_and_restarted_mid_stream() {
    let (mut tw, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let _s = store(&t, dir.path());
    let lines = numbered("tw", 10_000);
    let mut p = Proc::spawn("dafka_console_producer", &["towered"], Some(&t));
    p.write_lines(&lines[..5_000]);
    tw.kill();
    p.write_lines(&lines[5_000..8_000]);
    let _tw = tower_at(&t);
    p.write_lines(&lines[8_000..]);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "every record ACKed");
    assert_exactly(&read_all(&t, "towered"), &lines);
}

/// 6. A store started after the producer has sent records catches up on
///    the whole partition from the producer.
#[test]
fn late_store_catches_up_on_the_partition() {
    let (_tower, t) = tower();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = numbered("early", 5_000);
    let live = consumer(&t, "early", &[]);
    let mut p = Proc::spawn("dafka_console_producer", &["early"], Some(&t));
    // Records are out (a live consumer sees them) before any store exists.
    let seen = || live.stdout.recv_timeout(Duration::from_millis(50)).is_ok();
    let fed = feed_until(&mut p, &lines, seen);
    p.write_lines(&lines[fed..]);
    let _s = store(&t, dir.path());
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "the late store ACKed everything");
    assert_exactly(&read_all(&t, "early"), &lines);
}
