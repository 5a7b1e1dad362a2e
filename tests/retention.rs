//! Retention with the real binaries: a store under a size limit keeps its
//! data directory near the limit while four times the limit is written,
//! and a consumer reading from the beginning gets the partition from its
//! log start to its end, in order, without waiting for what was deleted.

mod support;

use support::*;

const LIMIT: u64 = 4 << 20;
const LINE: usize = 1000;

/// Line `i`: its number, then hex that compresses about as little as real
/// data would.
fn line(i: u64) -> String {
    let mut s = format!("{i:08}-");
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < LINE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(LINE);
    s
}

/// The files of a directory and their sizes, for a message.
fn files(dir: &std::path::Path) -> String {
    let files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let len = e.metadata().ok()?.len();
            Some(format!("{} {len}", e.file_name().to_string_lossy()))
        })
        .collect();
    files.join(", ")
}

#[test]
fn a_store_under_a_size_limit_stays_near_it_and_readers_start_at_the_log_start() {
    let (_tower, t) = tower();
    let db = tempfile::tempdir().expect("db");
    let path = db.path().to_str().expect("utf-8");
    let limit = LIMIT.to_string();
    let env = [
        ("DAFKA_STORE__RETENTION_BYTES", limit.as_str()),
        ("DAFKA_STORE__RETENTION_CHECK", "100"),
        ("DAFKA_STORE__WRITE_BUFFER", "512KiB"),
    ];
    let store = Proc::spawn_env("dafka_stored", &["--db", path], Some(&t), &env);
    store.await_stderr("serving", TIMEOUT);

    // Four times the limit, in four rounds, watching the directory.
    let count = 4 * LIMIT / LINE as u64;
    let mut peak = 0;
    for round in 0..4 {
        let lines: Vec<String> = (round * count / 4..(round + 1) * count / 4)
            .map(line)
            .collect();
        let state = db.path().join("spool");
        let spool = ["--state-dir", state.to_str().expect("utf-8")];
        assert!(
            produce(&t, "big", &lines, &spool).success(),
            "round {round}"
        );
        peak = peak.max(dafka_cli::metrics::dir_bytes(db.path()));
    }
    // The compactions catch up: the directory ends near the limit.
    let size = poll_until("the data directory near the limit", || {
        let size = dafka_cli::metrics::dir_bytes(db.path());
        (size <= 2 * LIMIT)
            .then_some(size)
            .ok_or_else(|| format!("{size} bytes: {}", files(db.path())))
    });
    eprintln!(
        "wrote {} bytes; data directory peak {peak}, now {size}: {}",
        count * LINE as u64,
        files(db.path())
    );
    assert!(size <= 2 * LIMIT, "the data directory holds {size} bytes");

    // From the beginning: the log start on, every record, in order.
    let mut c = consumer(&t, "big", &["--from-beginning", "-e", "--print-offset"]);
    assert!(c.wait(TIMEOUT).success());
    let got: Vec<(u64, String)> = c
        .stdout
        .try_iter()
        .map(|l| {
            let (o, text) = l.split_once('\t').expect("offset and line");
            (o.parse().expect("offset"), text.to_string())
        })
        .collect();
    let first = got.first().expect("something is kept").0;
    assert!(first > 0, "retention deleted the oldest records");
    // The limit counts stored bytes, and those include each run's framing
    // (a header per run, a few bytes per record): the content kept may be
    // that much under it (0.17 % in one CI run). 0.5 % is room for that;
    // a full run (64 KiB, 1.6 % of the limit) deleted too many still fails.
    let kept = (count - first) * LINE as u64;
    assert!(
        kept >= LIMIT - LIMIT / 200,
        "kept {kept} bytes of content, under the limit of {LIMIT} by more than framing"
    );
    let want: Vec<(u64, String)> = (first..count).map(|o| (o, line(o))).collect();
    assert!(
        got == want,
        "records {first}.. differ from what was written"
    );
}
