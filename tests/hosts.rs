//! Several hosts for real: each node in a network namespace of its own,
//! joined by veth pairs and a bridge (see `support/hosts.rs`), advertising
//! its own address. Each case cuts or degrades links mid-stream, heals them,
//! and ends with a fresh consumer reading every partition from the stores;
//! one checker compares that (and what live consumers got) with what the
//! producer was told was ACKed. Times are printed, never asserted.
//!
//! Needs root and `ip`; skipped with a message where they are missing.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use support::hosts::{Host, Net};
use support::*;

/// A tower on `host`, bound to the host's address.
fn tower_on(host: &Host) -> (Proc, Towers) {
    let ep = format!("tcp://{}:*", host.addr);
    let p = Proc::spawn_on(
        Some(host),
        "dafka_towerd",
        &["--sub", &ep, "--pub", &ep],
        None,
        &[],
    );
    let line = p.await_stderr("beacons in on", TIMEOUT);
    let words: Vec<&str> = line.split_whitespace().collect();
    let t = Towers {
        sub: words[4].trim_end_matches(',').to_string(),
        pub_: words[7].to_string(),
    };
    (p, t)
}

fn store_on(host: &Host, t: &Towers, dir: &std::path::Path) -> Proc {
    let db = dir.to_str().expect("utf-8");
    let p = Proc::spawn_on(Some(host), "dafka_stored", &["--db", db], Some(t), &[]);
    p.await_stderr("serving", TIMEOUT);
    p
}

fn on(host: &Host, name: &str, args: &[&str], t: &Towers) -> Proc {
    Proc::spawn_on(Some(host), name, args, Some(t), &[])
}

/// One delivery: partition, offset, content.
type Delivery = (String, u64, String);

/// What a consumer printed with --print-partition --print-offset.
fn parse(lines: &[String]) -> Vec<Delivery> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            assert_eq!(f.len(), 3, "partition, offset, content: {l:?}");
            (
                f[0].to_string(),
                f[1].parse().expect("offset"),
                f[2].to_string(),
            )
        })
        .collect()
}

const PRINT: [&str; 2] = ["--print-partition", "--print-offset"];

/// Everything `topic` holds, read from the start by a new consumer on
/// `host` that stops once nothing new came for 4 s.
fn read_all_on(host: &Host, t: &Towers, topic: &str) -> Vec<Delivery> {
    let mut args = vec!["--from-beginning", "--timeout-ms", "4000"];
    args.extend(PRINT);
    args.push(topic);
    let mut r = on(host, "dafka_console_consumer", &args, t);
    assert!(
        r.wait(Duration::from_secs(300)).success(),
        "the reader exits 0"
    );
    parse(&r.stdout.try_iter().collect::<Vec<_>>())
}

/// One case's history: what was sent and ACKed, what each consumer got.
struct History<'a> {
    case: &'a str,
    sent: &'a [String],
    /// The producer exited 0: every record sent was ACKed.
    all_acked: bool,
    consumers: Vec<(&'a str, Vec<Delivery>)>,
    healed_in: Option<Duration>,
}

impl History<'_> {
    /// Checks the promise and prints the case's numbers: no ACKed record
    /// lost; no record twice to one consumer; each partition in order, its
    /// offsets contiguous (every gap repaired).
    fn check(&self) {
        let acked = if self.all_acked { self.sent.len() } else { 0 };
        let mut report = format!(
            "case {}: sent {}, ACKed {acked}",
            self.case,
            self.sent.len()
        );
        for (name, got) in &self.consumers {
            let mut seen: HashMap<(&str, u64), usize> = HashMap::new();
            let mut next: BTreeMap<&str, u64> = BTreeMap::new();
            for (p, off, _) in got {
                *seen.entry((p.as_str(), *off)).or_default() += 1;
                let want = next.entry(p.as_str()).or_insert(*off);
                assert_eq!(
                    *off,
                    *want,
                    "{}: {name} got {p} offset {off} after {}",
                    self.case,
                    *want as i64 - 1
                );
                *want = off + 1;
            }
            let dup = seen.values().filter(|n| **n > 1).count();
            let contents: std::collections::HashSet<&str> =
                got.iter().map(|(_, _, c)| c.as_str()).collect();
            let lost = if self.all_acked {
                self.sent
                    .iter()
                    .filter(|s| !contents.contains(s.as_str()))
                    .count()
            } else {
                0
            };
            report.push_str(&format!(
                "; {name}: delivered {}, lost {lost}, duplicated {dup}",
                got.len()
            ));
            assert_eq!(dup, 0, "{}: {name} got a record twice", self.case);
            assert_eq!(lost, 0, "{}: {name} misses ACKed records", self.case);
        }
        if let Some(d) = self.healed_in {
            report.push_str(&format!("; healed in {} ms", d.as_millis()));
        }
        eprintln!("{report}");
    }
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    numbered(prefix, n)
}

/// (a) Every link loses 5 % of packets and delays them 20 ms ± 10 ms.
#[test]
fn lossy_slow_links_lose_nothing() {
    let Some(net) = Net::new(4) else { return };
    let case = match net.lossy(5, 20, 10) {
        Ok(()) => "(a) 5 % loss, 20 ± 10 ms",
        Err(why) => {
            // This kernel has no netem: degrade the links the way a
            // congested one does instead, and say so.
            eprintln!("no netem ({why}): links limited to 20 Mbit/s with 20 ms of queue instead");
            if let Err(why) = net.throttle(20, 20) {
                eprintln!("skipped: no traffic control on this kernel: {why}");
                return;
            }
            "(a) 20 Mbit/s links, 20 ms queue, drops past it"
        }
    };
    let (_tw, t) = tower_on(net.host(0));
    let db = tempfile::tempdir().expect("db");
    let _s = store_on(net.host(1), &t, db.path());
    let mut args = vec!["--from-beginning"];
    args.extend(PRINT);
    args.push("lossy");
    let live = on(net.host(3), "dafka_console_consumer", &args, &t);
    let sent = lines("lossy", 3000);
    let mut p = on(net.host(2), "dafka_console_producer", &["lossy"], &t);
    p.write_lines(&sent);
    p.close_stdin();
    let all_acked = p.wait(Duration::from_secs(300)).success();
    let got = parse(&live.stdout_lines(sent.len(), Duration::from_secs(300)));
    let fresh = read_all_on(net.host(3), &t, "lossy");
    History {
        case,
        sent: &sent,
        all_acked,
        consumers: vec![("live", got), ("fresh", fresh)],
        healed_in: None,
    }
    .check();
    assert!(all_acked, "every record ACKed");
}

/// (b) The producer cannot reach one of two stores (min_acks = 1); once
/// healed, the lagging store catches up by itself.
#[test]
fn a_store_cut_off_from_the_producer_catches_up_after_the_heal() {
    let Some(net) = Net::new(5) else { return };
    let (_tw, t) = tower_on(net.host(0));
    let (da, db) = (
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("db"),
    );
    let mut a = store_on(net.host(1), &t, da.path());
    let _b = store_on(net.host(2), &t, db.path());
    let mut p = on(
        net.host(3),
        "dafka_console_producer",
        &["--min-acks", "1", "split"],
        &t,
    );
    let sent = lines("split", 4000);
    p.write_lines(&sent[..1000]);
    net.split(3, 2);
    p.write_lines(&sent[1000..3000]);
    // Store A ACKs alone while B hears nothing: wait for those records by
    // reading them live.
    let mut live_args = vec!["--from-beginning"];
    live_args.extend(PRINT);
    live_args.push("split");
    let live = on(net.host(4), "dafka_console_consumer", &live_args, &t);
    live.stdout_lines(3000, TIMEOUT);
    // The admin tool's view of the partition: one row, every store's copy.
    let row = || {
        let mut q = on(
            net.host(4),
            "dafka_admin",
            &["partitions", "split", "--json"],
            &t,
        );
        q.wait(TIMEOUT);
        let out: String = q.stdout.try_iter().collect();
        let rows: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        Ok::<_, String>(rows[0].clone())
    };
    // The split is real: B holds less (or nothing) of the partition.
    poll_until("store B behind", || {
        let r = row()?;
        let copies = r["stores"].as_array().map_or(0, Vec::len);
        let note = r["note"].as_str().unwrap_or_default();
        if copies < 2 || !note.is_empty() {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    let healed = Instant::now();
    net.unsplit(3, 2);
    p.write_lines(&sent[3000..]);
    poll_until("store B catches up", || {
        let r = row()?;
        let caught_up =
            r["head"] == 3999 && r["stores"].as_array().map(Vec::len) == Some(2) && r["note"] == "";
        if caught_up {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    let healed_in = healed.elapsed();
    p.close_stdin();
    let all_acked = p.wait(TIMEOUT).success();
    // Store A gone: what a reader gets now is B's copy alone.
    a.kill();
    let fresh = read_all_on(net.host(4), &t, "split");
    History {
        case: "(b) producer split from store B",
        sent: &sent,
        all_acked,
        consumers: vec![("fresh from B", fresh)],
        healed_in: Some(healed_in),
    }
    .check();
    assert!(all_acked, "every record ACKed");
}

/// (c) A consumer cut off from everything for 10 s mid-stream.
#[test]
fn a_consumer_cut_off_for_ten_seconds_gets_everything_once() {
    let Some(net) = Net::new(4) else { return };
    let (_tw, t) = tower_on(net.host(0));
    let db = tempfile::tempdir().expect("db");
    let _s = store_on(net.host(1), &t, db.path());
    let mut args = vec!["--from-beginning"];
    args.extend(PRINT);
    args.push("cut");
    let live = on(net.host(3), "dafka_console_consumer", &args, &t);
    let sent = lines("cut", 9000);
    let mut p = on(net.host(2), "dafka_console_producer", &["cut"], &t);
    p.write_lines(&sent[..3000]);
    let mut got = live.stdout_lines(3000, TIMEOUT);
    net.isolate(3);
    p.write_lines(&sent[3000..6000]);
    // The cut lasts 10 s whatever happens meanwhile: a scenario's length,
    // not a wait for an event.
    std::thread::sleep(Duration::from_secs(10));
    let healed = Instant::now();
    net.rejoin(3);
    got.extend(live.stdout_lines(3000, TIMEOUT));
    let healed_in = healed.elapsed();
    p.write_lines(&sent[6000..]);
    p.close_stdin();
    let all_acked = p.wait(TIMEOUT).success();
    got.extend(live.stdout_lines(3000, TIMEOUT));
    let fresh = read_all_on(net.host(3), &t, "cut");
    History {
        case: "(c) consumer cut off 10 s",
        sent: &sent,
        all_acked,
        consumers: vec![("live", parse(&got)), ("fresh", fresh)],
        healed_in: Some(healed_in),
    }
    .check();
    assert!(all_acked, "every record ACKed");
}

/// (d) One of two towers' hosts cut off: the other keeps the cluster
/// joined, and a consumer started during the cut finds everyone.
#[test]
fn a_second_tower_keeps_the_cluster_joined() {
    let Some(net) = Net::new(5) else { return };
    let (_t1, a) = tower_on(net.host(0));
    let (_t2, b) = tower_on(net.host(1));
    let t = Towers {
        sub: format!("{},{}", a.sub, b.sub),
        pub_: format!("{},{}", a.pub_, b.pub_),
    };
    let db = tempfile::tempdir().expect("db");
    let _s = store_on(net.host(2), &t, db.path());
    let sent = lines("towers", 2000);
    let mut p = on(net.host(3), "dafka_console_producer", &["towers"], &t);
    p.write_lines(&sent[..1000]);
    net.isolate(0);
    p.write_lines(&sent[1000..]);
    p.close_stdin();
    let all_acked = p.wait(TIMEOUT).success();
    let fresh = read_all_on(net.host(4), &t, "towers");
    History {
        case: "(d) tower 1 cut off",
        sent: &sent,
        all_acked,
        consumers: vec![("fresh, joined via tower 2", fresh)],
        healed_in: None,
    }
    .check();
    assert!(all_acked, "every record ACKed");
}

/// (e) A store's host cut off and its store killed; a new store starts on
/// another host. What min_acks = 2 ACKed is all there.
#[test]
fn a_lost_store_host_loses_nothing_acked_by_two() {
    let Some(net) = Net::new(6) else { return };
    let (_tw, t) = tower_on(net.host(0));
    let (da, db, dc) = (
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("db"),
    );
    let mut a = store_on(net.host(1), &t, da.path());
    let _b = store_on(net.host(2), &t, db.path());
    let sent = lines("two", 3000);
    let mut p = on(
        net.host(4),
        "dafka_console_producer",
        &["--min-acks", "2", "two"],
        &t,
    );
    p.write_lines(&sent[..2000]);
    net.isolate(1);
    a.kill();
    let _c = store_on(net.host(3), &t, dc.path());
    p.write_lines(&sent[2000..]);
    p.close_stdin();
    let all_acked = p.wait(TIMEOUT).success();
    let fresh = read_all_on(net.host(5), &t, "two");
    History {
        case: "(e) store host lost, new store",
        sent: &sent,
        all_acked,
        consumers: vec![("fresh", fresh)],
        healed_in: None,
    }
    .check();
    assert!(all_acked, "every record ACKed by two stores");
}
