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
