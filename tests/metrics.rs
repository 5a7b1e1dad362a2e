//! The daemons' metrics and health endpoints, over real HTTP: what a store
//! holds, garbage on the port, a port in use, and a full disk turning the
//! store unhealthy until space returns (with every ACKed record kept).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

/// The metrics address a daemon printed.
fn metrics_addr(p: &Proc) -> String {
    let line = p.await_stderr("metrics on http://", TIMEOUT);
    let rest = line.split("http://").nth(1).expect("an address");
    rest.trim_end_matches("/metrics").trim().to_string()
}

/// `GET path`: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Waits until `GET /metrics` shows a line starting with `prefix`, and
/// returns that line.
fn await_metric(addr: &str, prefix: &str) -> String {
    poll_until(prefix, || {
        let (_, body) = get(addr, "/metrics");
        let line = body.lines().find(|l| l.starts_with(prefix));
        line.map(str::to_string).ok_or(body)
    })
}

#[test]
fn a_store_reports_its_partitions_and_health_and_survives_garbage() {
    let (tower, t) = tower();
    let tower_addr = metrics_addr(&tower);
    let db = tempfile::tempdir().expect("db");
    let store = store(&t, db.path());
    let addr = metrics_addr(&store);
    assert!(produce(&t, "m", &numbered("x", 10), &[]).success());
    let head = await_metric(&addr, "dafka_store_partition_head{topic=\"m\"");
    assert!(head.ends_with(" 9"), "{head}");
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(&addr, "/nowhere").0, 404);
    // Not HTTP at all: answered or dropped; the store goes on.
    let mut s = TcpStream::connect(&addr).expect("connect");
    let _ = s.write_all(b"\x00\xff garbage \r\n\r\n\x16\x03\x01");
    drop(s);
    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("dafka_store_write_seconds_bucket{le=\"+Inf\"}"),
        "{body}"
    );
    assert!(get(&tower_addr, "/metrics").1.contains("dafka_peers"));
    // Each record once at least (a record may also come back in answer
    // to a FETCH the store sent while it arrived).
    let records = await_metric(&addr, "dafka_records_received_total ");
    let n: u64 = records
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(n >= 10, "{records}");
    let acks = await_metric(&addr, "dafka_messages_sent_total{kind=\"ACK\"}");
    assert!(!acks.ends_with(" 0"), "{acks}");

    // Garbage on the data socket is counted by what was wrong with it.
    let mut mesh = dafka::MeshConfig::default();
    (mesh.sub_address, mesh.pub_address) = (t.sub.clone(), t.pub_.clone());
    mesh.bind = "tcp://127.0.0.1:*".into();
    let mut peer =
        dafka_testkit::TestPeer::join(dafka::proto::Role::Producer, &mesh).expect("join");
    peer.expect_subscriber(TIMEOUT, b"R")
        .expect("the store listens");
    peer.send_raw(&[b"Rm\0", b"\x00\x00\x02", b"x"])
        .expect("send");
    let bad = await_metric(
        &addr,
        "dafka_malformed_messages_total{kind=\"bad_signature\"} 1",
    );
    assert!(bad.ends_with(" 1"), "{bad}");

    // The port in use: one line, exit 1.
    let other = tempfile::tempdir().expect("db");
    let out = Command::new(bin("dafka_stored"))
        .args([
            "--db",
            other.path().to_str().expect("utf-8"),
            "--metrics",
            &addr,
        ])
        .args(["--sub", &t.sub, "--pub", &t.pub_])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot serve metrics on"), "{err}");
}

/// A console consumer with `--metrics` reports each partition's position,
/// head and lag.
#[test]
fn a_console_consumer_reports_its_lag_per_partition() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    assert!(produce(&t, "lag", &numbered("x", 5), &[]).success());
    let c = consumer(&t, "lag", &["--from-beginning", "--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&c);
    assert_eq!(c.stdout_lines(5, TIMEOUT), numbered("x", 5));
    let lag = await_metric(&addr, "dafka_consumer_lag{topic=\"lag\"");
    assert!(lag.ends_with(" 0"), "{lag}");
    let pos = await_metric(&addr, "dafka_consumer_position{topic=\"lag\"");
    assert!(pos.ends_with(" 5"), "{pos}");
}

/// A console producer with `--metrics` reports what it published and what
/// the stores ACKed.
#[test]
fn a_console_producer_reports_published_and_acked() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &["--metrics", "127.0.0.1:0", "acks"],
        Some(&t),
    );
    let addr = metrics_addr(&p);
    p.write_lines(numbered("x", 5));
    poll_until("5 records ACKed", || {
        let line = await_metric(&addr, "dafka_producer_acked{topic=\"acks\"");
        line.ends_with(" 5").then_some(()).ok_or(line)
    });
    let unacked = await_metric(&addr, "dafka_producer_unacked{topic=\"acks\"");
    assert!(unacked.ends_with(" 0"), "{unacked}");
    // Live, and again for any FETCH a store sent.
    let sent = await_metric(&addr, "dafka_records_sent_total ");
    let n: u64 = sent
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(n >= 5, "{sent}");
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success());
}

/// A small tmpfs, removed when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_str()?.to_string();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &path])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a store killed a moment ago may still hold files there.
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system at `dir` but for about `leave` bytes.
fn fill(dir: &Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    loop {
        let free = nix_free(dir);
        if free <= leave {
            break;
        }
        let n = chunk.len().min((free - leave) as usize);
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    path
}

fn nix_free(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_full_disk_makes_the_store_unhealthy_until_space_returns_and_loses_nothing_acked() {
    let Some(fs) = Tmpfs::mount("48m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk test did not run"
        );
        return;
    };
    let (_tower, t) = tower();
    let db = fs.path().join("db");
    let env = [("DAFKA_STORE__WRITE_BUFFER", "1MiB")];
    let store = Proc::spawn_env(
        "dafka_stored",
        &["--db", db.to_str().expect("utf-8")],
        Some(&t),
        &env,
    );
    store.await_stderr("serving", TIMEOUT);
    let addr = metrics_addr(&store);
    assert!(produce(&t, "disk", &numbered("before", 100), &[]).success());
    let filler = fill(fs.path(), 0);

    // Writes fail now: the producer is not told "ACKed", the store says
    // why and turns unhealthy.
    let state = tempfile::tempdir().expect("state");
    let spool = ["--state-dir", state.path().to_str().expect("utf-8")];
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &[&spool[..], &["disk"]].concat(),
        Some(&t),
    );
    // More than RocksDB preallocated for its log before the disk filled.
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("during-{i}-{}", "y".repeat(900)))
        .collect();
    p.write_lines(&lines);
    let body = poll_until("unhealthy while the disk is full", || {
        match get(&addr, "/healthz") {
            (503, body) => Ok(body),
            (status, body) => Err(format!("{status} {body}")),
        }
    });
    assert!(body.contains("unhealthy"), "{body}");
    // Space returns: the store recovers by itself and the producer's
    // records are ACKed.
    std::fs::remove_file(&filler).expect("free the disk");
    p.close_stdin();
    assert!(
        p.wait(TIMEOUT).success(),
        "every record ACKed once space returned"
    );
    poll_until("healthy again", || match get(&addr, "/healthz") {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{status} {body}")),
    });
    // Each producer's partition holds all it was told was ACKed, in order.
    let parts = read_all(&t, "disk");
    let mut got: Vec<Vec<String>> = parts
        .values()
        .map(|p| {
            let offsets: Vec<u64> = p.iter().map(|r| r.0).collect();
            assert!(
                offsets.iter().enumerate().all(|(i, o)| *o == i as u64),
                "gapless"
            );
            p.iter().map(|r| r.1.clone()).collect()
        })
        .collect();
    got.sort_by_key(Vec::len);
    assert_eq!(got, vec![numbered("before", 100), lines]);
}
