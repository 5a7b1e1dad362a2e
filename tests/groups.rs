//! Producers of several partitions and consumer groups, with the real
//! binaries, stores on RocksDB in temporary directories and real sockets.

mod support;

use std::collections::BTreeMap;
use support::*;

/// `KEY<tab>KEY:N` lines: `keys` keys, `per` lines each, interleaved.
fn keyed(keys: usize, per: usize, from: usize) -> Vec<String> {
    (from..from + per)
        .flat_map(|n| (0..keys).map(move |k| format!("k{k}\tk{k}:{n}")))
        .collect()
}

#[test]
fn a_producer_of_four_partitions_keeps_each_key_in_one_partition_across_a_restart() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let state = tempfile::tempdir().expect("state");
    let dir = state.path().to_str().expect("utf-8");
    let args = [
        "--partitions",
        "4",
        "--state-dir",
        dir,
        "--property",
        "parse.key=true",
    ];
    assert!(produce(&t, "keyed", &keyed(12, 10, 0), &args).success());
    // Restarted on its state directory: the same four partitions go on.
    assert!(produce(&t, "keyed", &keyed(12, 10, 10), &args).success());

    let parts = read_all(&t, "keyed");
    assert_eq!(parts.len(), 4, "four partitions: {:?}", parts.keys());
    let mut home: BTreeMap<String, &String> = BTreeMap::new();
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (partition, records) in &parts {
        let offsets: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets,
            (0..records.len() as u64).collect::<Vec<_>>(),
            "{partition}"
        );
        for (_, text) in records {
            let (key, n) = text.split_once(':').expect("KEY:N");
            let at = home.entry(key.to_string()).or_insert(partition);
            assert_eq!(*at, partition, "key {key} in two partitions");
            seen.entry(key.to_string())
                .or_default()
                .push(n.parse().expect("N"));
        }
    }
    assert_eq!(seen.len(), 12);
    for (key, ns) in seen {
        assert_eq!(
            ns,
            (0..20).collect::<Vec<_>>(),
            "key {key}: every line, in order"
        );
    }

    // Another count on the same directory: one line, exit 1.
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &["--partitions", "2", "--state-dir", dir, "keyed"],
        Some(&t),
    );
    p.close_stdin();
    assert_eq!(p.wait(TIMEOUT).code(), Some(1));
    let err: Vec<String> = p.stderr.try_iter().collect();
    assert!(
        err.iter().any(|l| l.contains("holds 4 partitions")),
        "{err:?}"
    );
    let mut p = Proc::spawn(
        "dafka_console_producer",
        &["--partitions", "0", "keyed"],
        Some(&t),
    );
    assert_eq!(p.wait(TIMEOUT).code(), Some(1));
    let err: Vec<String> = p.stderr.try_iter().collect();
    assert!(
        err.iter().any(|l| l.contains("producer.partitions")),
        "{err:?}"
    );
}

/// What one worker printed: (partition, offset, job) per line.
#[derive(Default)]
struct Worker {
    lines: Vec<(String, u64, String)>,
    /// From its last "group assignment changed" log line: the members it
    /// counts and the partitions it owns.
    owns: Option<(usize, usize)>,
}

impl Worker {
    fn take(&mut self, p: &Proc) {
        for l in p.stdout.try_iter() {
            // A worker killed mid-line leaves half a line: not a job done.
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            if let [p, o, job] = f[..] {
                if let Ok(offset) = o.parse() {
                    self.lines.push((p.into(), offset, job.into()));
                }
            }
        }
        for l in p.stderr.try_iter() {
            if l.contains("group assignment changed") {
                let field = |name: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .and_then(|v| v.parse().ok())
                };
                if let (Some(m), Some(o)) = (field("members="), field("owned=")) {
                    self.owns = Some((m, o));
                }
            }
        }
    }
}

/// A worker: a console consumer in group "workers" committing every
/// 100 ms (so what a dead worker did and had not committed is small).
fn worker(t: &Towers) -> Proc {
    let args = [
        "--group",
        "workers",
        "--from-beginning",
        "--print-partition",
        "--print-offset",
        "jobs",
    ];
    // Info from the consumer: each change of its assignment.
    let env = [
        ("DAFKA_CONSUMER__COMMIT_INTERVAL", "100"),
        ("RUST_LOG", "warn,dafka_consumer=info"),
    ];
    Proc::spawn_env("dafka_console_consumer", &args, Some(t), &env)
}

/// Takes what every worker printed until `done` says enough, within the
/// tests' timeout.
fn drain_until(
    procs: &[&Proc],
    workers: &mut [Worker],
    what: &str,
    done: impl Fn(&[Worker]) -> bool,
) {
    poll_until(what, || {
        for (p, w) in procs.iter().zip(workers.iter_mut()) {
            w.take(p);
        }
        let n: usize = workers.iter().map(|w| w.lines.len()).sum();
        done(workers)
            .then_some(())
            .ok_or(format!("{n} lines so far"))
    });
}

/// Each worker's contiguous runs of offsets per partition, for a message.
fn ranges(workers: &[Worker]) -> String {
    let mut out = String::new();
    for (i, w) in workers.iter().enumerate() {
        let mut runs: Vec<(String, u64, u64)> = Vec::new();
        for (p, o, _) in &w.lines {
            match runs.iter_mut().rev().find(|r| r.0 == *p) {
                Some(r) if r.2 + 1 == *o => r.2 = *o,
                _ => runs.push((p.clone(), *o, *o)),
            }
        }
        let runs: Vec<String> = runs
            .iter()
            .map(|(p, a, b)| format!("{}:{a}-{b}", &p[..8]))
            .collect();
        out.push_str(&format!("\n  worker {}: {}", i + 1, runs.join(" ")));
    }
    out
}

fn distinct_jobs(workers: &[Worker]) -> usize {
    let all: std::collections::BTreeSet<&str> = workers
        .iter()
        .flat_map(|w| w.lines.iter().map(|l| l.2.as_str()))
        .collect();
    all.len()
}

#[test]
fn a_worker_pool_shares_jobs_survives_a_kill_and_takes_in_a_newcomer() {
    const JOBS: usize = 100_000;
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let _store = store(&t, db.path());
    let mut w1 = worker(&t);
    let w2 = worker(&t);
    let w3 = worker(&t);
    let mut producer = Proc::spawn(
        "dafka_console_producer",
        &["--partitions", "8", "jobs"],
        Some(&t),
    );
    let jobs = numbered("job", JOBS);
    let mut workers: Vec<Worker> = (0..4).map(|_| Worker::default()).collect();

    producer.write_lines(&jobs[..40_000]);
    drain_until(
        &[&w1, &w2, &w3],
        &mut workers[..3],
        "30,000 jobs done",
        |w| distinct_jobs(w) >= 30_000,
    );
    w1.kill(); // kill -9, mid-run: its partitions move to the others
    producer.write_lines(&jobs[40_000..70_000]);
    drain_until(
        &[&w1, &w2, &w3],
        &mut workers[..3],
        "60,000 jobs done",
        |w| distinct_jobs(w) >= 60_000,
    );
    let w4 = worker(&t);
    producer.write_lines(&jobs[70_000..85_000]);
    // Once the three live workers agree (each counts three members, and
    // their shares add up to the eight partitions), the rest is read
    // under the final assignment: 3/3/2.
    let all = [&w1, &w2, &w3, &w4];
    drain_until(&all, &mut workers, "the group settled", |w| {
        let live = &w[1..];
        let agreed = live.iter().all(|w| w.owns.is_some_and(|(m, _)| m == 3));
        let owned: usize = live.iter().filter_map(|w| w.owns).map(|(_, o)| o).sum();
        agreed && owned == 8
    });
    let shares: Vec<usize> = workers[1..]
        .iter()
        .filter_map(|w| w.owns)
        .map(|o| o.1)
        .collect();
    producer.write_lines(&jobs[85_000..]);
    producer.close_stdin();
    assert!(producer.wait(TIMEOUT).success(), "every job ACKed");
    drain_until(&all, &mut workers, "every job done", |w| {
        distinct_jobs(w) == JOBS
    });

    // Who read each partition, and which jobs were done twice.
    let mut readers: BTreeMap<&str, std::collections::BTreeSet<usize>> = BTreeMap::new();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, w) in workers.iter().enumerate() {
        for (p, _, job) in &w.lines {
            readers.entry(p).or_default().insert(i);
            *times.entry(job).or_default() += 1;
        }
    }
    assert_eq!(readers.len(), 8, "eight partitions");
    let twice: Vec<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(j, _)| *j)
        .collect();
    // A partition changed hands if two workers read it, or one worker's
    // offsets of it went back (it lost it, and got it back later).
    let mut moved: std::collections::BTreeSet<&str> = readers
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(p, _)| *p)
        .collect();
    for w in &workers {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (p, o, _) in &w.lines {
            if last.insert(p, *o).is_some_and(|before| *o <= before) {
                moved.insert(p);
            }
        }
    }
    for w in &workers {
        for (p, _, job) in &w.lines {
            if twice.contains(&job.as_str()) {
                assert!(
                    moved.contains(p.as_str()),
                    "{job} done twice in partition {p}, which never changed hands"
                );
            }
        }
    }
    if !twice.is_empty() {
        eprintln!("who read what: {}", ranges(&workers));
    }
    eprintln!(
        "jobs done twice: {} (partitions that changed hands: {}); partitions per live worker once settled: {shares:?}",
        twice.len(),
        moved.len(),
    );
    // Even is 8/3: every share within 25 % of it.
    assert!(shares.iter().all(|s| (2..=3).contains(s)), "{shares:?}");

    // The admin tool shows the group: who reads each partition, and how
    // far the group is (everything is done: no lag once committed).
    let mut admin = Proc::spawn("dafka_admin", &["group", "workers", "--json"], Some(&t));
    assert_eq!(admin.wait(TIMEOUT).code(), Some(0));
    let out: String = admin.stdout.try_iter().collect();
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let parts = v["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 8, "{v}");
    assert!(parts.iter().all(|p| p["member"].is_string()), "{v}");
    assert!(v["members"].as_array().is_some_and(|m| m.len() >= 3), "{v}");
}

#[test]
fn a_bad_group_gets_one_line_naming_the_setting() {
    let long = "g".repeat(300);
    for (args, says) in [
        (vec!["--group", long.as_str(), "jobs"], "consumer.group"),
        (vec!["--group", "a", "--name", "b", "jobs"], "consumer.name"),
    ] {
        let mut p = Proc::spawn("dafka_console_consumer", &args, None);
        assert_eq!(p.wait(TIMEOUT).code(), Some(1), "{args:?}");
        let err: Vec<String> = p.stderr.try_iter().collect();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains(says), "{err:?}");
    }
}
