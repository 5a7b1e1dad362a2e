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
}

impl Worker {
    fn take(&mut self, p: &Proc) {
        for l in p.stdout.try_iter() {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            assert_eq!(f.len(), 3, "partition, offset, job: {l:?}");
            let offset = f[1].parse().expect("offset");
            self.lines.push((f[0].into(), offset, f[2].into()));
        }
    }
}

fn worker(t: &Towers) -> Proc {
    let args = [
        "--group",
        "workers",
        "--from-beginning",
        "--print-partition",
        "--print-offset",
    ];
    consumer(t, "jobs", &args)
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
    producer.write_lines(&jobs[70_000..]);
    producer.close_stdin();
    assert!(producer.wait(TIMEOUT).success(), "every job ACKed");
    let all = [&w1, &w2, &w3, &w4];
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
    let moved: std::collections::BTreeSet<&str> = readers
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(p, _)| *p)
        .collect();
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
    // Once stable, the three live workers share the eight partitions 3/3/2:
    // each partition's last job was done by its final owner.
    let mut last: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for (i, w) in workers.iter().enumerate().skip(1) {
        for (p, o, _) in &w.lines {
            let e = last.entry(p).or_insert((*o, i));
            if *o >= e.0 {
                *e = (*o, i);
            }
        }
    }
    let mut shares = [0usize; 4];
    last.values().for_each(|(_, i)| shares[*i] += 1);
    eprintln!(
        "jobs done twice: {} (partitions that changed hands: {}); final partitions per live worker: {:?}",
        twice.len(),
        moved.len(),
        &shares[1..]
    );
    assert!(
        shares[1..].iter().all(|s| (2..=3).contains(s)),
        "{shares:?}"
    );
}
