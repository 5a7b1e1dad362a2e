//! `dafka_admin` against a real cluster: a tower, two stores on RocksDB in
//! temporary directories, the console tools, real sockets.

mod support;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::*;

/// Runs `dafka_admin ARGS --json`; returns its exit code, its JSON and its
/// standard error.
fn admin(t: &Towers, args: &[&str]) -> (i32, Value, Vec<String>) {
    let mut args = args.to_vec();
    args.push("--json");
    let mut p = Proc::spawn("dafka_admin", &args, Some(t));
    let code = p.wait(TIMEOUT).code().expect("an exit code");
    let out: String = p.stdout.try_iter().collect();
    let json = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, json, p.stderr.try_iter().collect())
}

fn only<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    let found: Vec<&Value> = rows
        .as_array()
        .expect("an array")
        .iter()
        .filter(|r| r[key] == value)
        .collect();
    assert_eq!(found.len(), 1, "one row with {key} = {value} in {rows}");
    found[0]
}

#[test]
fn an_operator_sees_peers_topics_partitions_and_a_consumers_lag() {
    let (_tower, t) = tower();
    let (db1, db2) = (
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("db"),
    );
    let _s1 = store(&t, db1.path());
    let _s2 = store(&t, db2.path());
    assert!(produce(&t, "orders", &numbered("o", 100), &["--min-acks", "2"]).success());
    assert!(produce(&t, "logs", &numbered("l", 10), &["--min-acks", "2"]).success());
    let named = [
        "--name",
        "billing",
        "--from-beginning",
        "--max-messages",
        "40",
    ];
    assert!(consumer(&t, "orders", &named).wait(TIMEOUT).success());

    let (code, peers, _) = admin(&t, &["peers"]);
    assert_eq!(code, 0, "{peers}");
    let stores = peers
        .as_array()
        .expect("rows")
        .iter()
        .filter(|p| p["role"] == "store")
        .count();
    assert_eq!(stores, 2, "{peers}");
    assert_eq!(only(&peers, "role", "tower")["endpoint"], t.pub_.as_str());

    let (code, topics, _) = admin(&t, &["topics"]);
    assert_eq!(code, 0, "{topics}");
    let orders = only(&topics, "topic", "orders");
    assert_eq!(
        (orders["partitions"].as_u64(), orders["records"].as_u64()),
        (Some(1), Some(100))
    );
    assert_eq!(orders["stores"], 2);
    assert_eq!(only(&topics, "topic", "logs")["records"], 10);

    // Both stores ACKed everything (--min-acks 2): their copies agree.
    let (code, parts, _) = admin(&t, &["partitions", "orders"]);
    assert_eq!(code, 0, "{parts}");
    let p = &parts[0];
    assert_eq!(
        (p["log_start"].as_u64(), p["head"].as_u64()),
        (Some(0), Some(99))
    );
    assert_eq!(p["stores"].as_array().map(Vec::len), Some(2));
    assert_eq!(p["note"], "", "{p}");
    assert!(p["bytes"].as_u64() > Some(0));

    let (code, positions, _) = admin(&t, &["positions", "billing"]);
    assert_eq!(code, 0, "{positions}");
    let row = only(&positions, "topic", "orders");
    assert_eq!(
        (row["position"].as_u64(), row["lag"].as_u64()),
        (Some(40), Some(60))
    );
    let (code, lag, _) = admin(&t, &["lag", "billing"]);
    assert_eq!(code, 0);
    assert_eq!(only(&lag, "topic", "orders")["lag"], 60);

    // What is not there is a clear answer and exit 1.
    let (code, _, err) = admin(&t, &["partitions", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.iter().any(|l| l.contains("no store holds topic nope")),
        "{err:?}"
    );
    let (code, _, err) = admin(&t, &["lag", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.iter().any(|l| l.contains("consumer nobody")), "{err:?}");
}

#[test]
fn a_store_that_does_not_answer_is_named_and_the_rest_is_printed() {
    let (_tower, t) = tower();
    let (db1, db2) = (
        tempfile::tempdir().expect("db"),
        tempfile::tempdir().expect("db"),
    );
    let _s1 = store(&t, db1.path());
    let s2 = store(&t, db2.path());
    assert!(produce(&t, "orders", &numbered("o", 10), &["--min-acks", "2"]).success());
    // Stopped, it still counts as live for the tower's timeout (4 s by
    // default), so the admin tool asks it and hears nothing.
    let stopped = Pid::from_raw(s2.pid() as i32);
    kill(stopped, Signal::SIGSTOP).expect("stop the store");
    let (code, topics, err) = admin(&t, &["topics", "--timeout", "1s"]);
    kill(stopped, Signal::SIGCONT).expect("continue the store");
    assert_eq!(code, 4, "{err:?}");
    assert_eq!(only(&topics, "topic", "orders")["records"], 10);
    let silent = err
        .iter()
        .filter(|l| l.contains("did not answer in time"))
        .count();
    assert_eq!(silent, 1, "{err:?}");
}

#[test]
fn without_a_tower_it_says_where_it_looked_and_exits_3() {
    // ipc endpoints in a fresh directory: certainly nobody there.
    let dir = tempfile::tempdir().expect("dir");
    let at = |n: &str| format!("ipc://{}/{n}", dir.path().display());
    let t = Towers {
        sub: at("in"),
        pub_: at("out"),
    };
    let (code, _, err) = admin(&t, &["peers", "--timeout", "300ms"]);
    assert_eq!(code, 3);
    assert!(
        err.iter()
            .any(|l| l.contains("no tower answered at ipc://")),
        "{err:?}"
    );
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for args in [
        &["peers", "--timeout", "0"][..],
        &["partitions"],
        &["lag", ""],
        &[],
    ] {
        let mut p = Proc::spawn("dafka_admin", args, None);
        assert_eq!(p.wait(TIMEOUT).code(), Some(2), "{args:?}");
        let err: Vec<String> = p.stderr.try_iter().collect();
        assert_eq!(err.len(), 1, "{args:?}: {err:?}");
    }
}
