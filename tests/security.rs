//! CURVE security end to end: real binaries and the library over real
//! sockets, each node with its own key pair from `dafka_keygen`'s code,
//! an `authorized_keys` file they all read.

mod support;

use dafka::proto::{routing, Ack, Message, MessageId, Record, Role};
use dafka::{MeshConfig, Producer, ProducerConfig, SecurityConfig};
use dafka_testkit::TestPeer;
use dafka_transport::keys::{generate, write_pair, KeyPair};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use support::*;

/// Key pairs in a temporary directory, and the allowlist they share.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    /// A new key pair written as NAME.secret / NAME.public.
    fn pair(&self, name: &str) -> (PathBuf, KeyPair) {
        let pair = generate().expect("CURVE");
        let (secret, _) = write_pair(&self.dir.path().join(name), &pair).expect("write");
        (secret, pair)
    }

    fn allowlist(&self) -> PathBuf {
        self.dir.path().join("authorized_keys")
    }

    /// Writes the allowlist: these public keys, with comments.
    fn authorize(&self, pairs: &[&KeyPair]) {
        let mut text = String::from("# the test cluster\n");
        for (i, p) in pairs.iter().enumerate() {
            text.push_str(&format!("{} node{i}\n", p.public));
        }
        // Written aside and renamed over, as an operator should: a node
        // never reads half a file.
        let aside = self.dir.path().join("authorized_keys.new");
        std::fs::write(&aside, text).expect("authorized_keys");
        std::fs::rename(&aside, self.allowlist()).expect("rename");
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8").to_string()
}

/// The environment that turns security on for one process.
fn secure(keys: &Keys, secret: &Path, tower: &KeyPair) -> Vec<(String, String)> {
    vec![
        ("DAFKA_SECURITY__ENABLED".into(), "true".into()),
        ("DAFKA_SECURITY__SECRET_KEY_FILE".into(), path(secret)),
        (
            "DAFKA_SECURITY__AUTHORIZED_KEYS".into(),
            path(&keys.allowlist()),
        ),
        ("DAFKA_SECURITY__TOWER_KEYS".into(), tower.public.clone()),
    ]
}

/// Security off, whatever DAFKA_TEST_SECURE says.
fn plain() -> Vec<(String, String)> {
    vec![("DAFKA_SECURITY__ENABLED".into(), "false".into())]
}

fn spawn(name: &str, args: &[&str], t: Option<&Towers>, env: &[(String, String)]) -> Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Proc::spawn_env(name, args, t, &env)
}

fn secure_tower(env: &[(String, String)]) -> (Proc, Towers) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    tower_env(&env)
}

/// A library node's mesh config with its own key.
/// A store on a fresh database with this environment's keys, serving;
/// the database lives as long as the returned directory.
fn secure_store(t: &Towers, env: &[(String, String)]) -> (Proc, tempfile::TempDir) {
    let db = tempfile::tempdir().expect("db");
    let s = spawn("dafka_stored", &["--db", &path(db.path())], Some(t), env);
    s.await_stderr("serving", TIMEOUT);
    (s, db)
}

fn mesh(t: &Towers, keys: &Keys, secret: &Path, tower: &KeyPair) -> MeshConfig {
    MeshConfig {
        sub_address: t.sub.clone(),
        pub_address: t.pub_.clone(),
        bind: "tcp://127.0.0.1:*".into(),
        interval: 100,
        timeout: 1000,
        security: SecurityConfig {
            enabled: true,
            secret_key_file: path(secret),
            authorized_keys: path(&keys.allowlist()),
            tower_keys: tower.public.clone(),
        },
        ..Default::default()
    }
}

fn read_lines(p: &mut Proc) -> Vec<String> {
    assert!(p.wait(TIMEOUT).success(), "the reader exits 0");
    p.stdout.try_iter().collect()
}

#[test]
fn a_secure_cluster_works_and_an_unknown_key_gets_nothing() {
    let keys = Keys::new();
    let (ts, tk) = keys.pair("tower");
    let (ss, sk) = keys.pair("store");
    let (ps, pk) = keys.pair("producer");
    let (cs, ck) = keys.pair("consumer");
    let (xs, _xk) = keys.pair("stranger");
    keys.authorize(&[&tk, &sk, &pk, &ck]);
    let (_tower, t) = secure_tower(&secure(&keys, &ts, &tk));
    let (_s, _db) = secure_store(&t, &secure(&keys, &ss, &tk));

    let lines = numbered("secret", 50);
    let mut p = spawn(
        "dafka_console_producer",
        &["payroll"],
        Some(&t),
        &secure(&keys, &ps, &tk),
    );
    p.write_lines(&lines);
    p.close_stdin();
    assert!(p.wait(TIMEOUT).success(), "every record ACKed over CURVE");
    let args = ["--from-beginning", "--timeout-ms", "3000", "payroll"];
    let got = read_lines(&mut spawn(
        "dafka_console_consumer",
        &args,
        Some(&t),
        &secure(&keys, &cs, &tk),
    ));
    assert_eq!(got, lines);

    // A stranger knows the tower's address and key, but its own key is
    // in no allowlist: refused at the handshake, it learns of no peer.
    let stranger = spawn(
        "dafka_console_consumer",
        &args,
        Some(&t),
        &secure(&keys, &xs, &tk),
    );
    stranger.await_stderr("refused this node's key", TIMEOUT);
    _tower.await_stderr("refused a connection", TIMEOUT);
    let mut stranger = stranger;
    stranger.kill();
    assert_eq!(stranger.stdout.try_iter().count(), 0, "not one record");
}

#[test]
fn plaintext_and_curve_do_not_mix_and_a_wrong_tower_key_is_named() {
    let keys = Keys::new();
    let (ts, tk) = keys.pair("tower");
    let (ns, nk) = keys.pair("node");
    let (_, other) = keys.pair("other");
    keys.authorize(&[&tk, &nk]);
    let (_tower, t) = secure_tower(&secure(&keys, &ts, &tk));
    let args = ["--from-beginning", "jobs"];

    let mut plain_node = spawn("dafka_console_consumer", &args, Some(&t), &plain());
    plain_node.await_stderr("requires security", TIMEOUT);
    plain_node.kill();

    let mut wrong = secure(&keys, &ns, &tk);
    wrong[3].1 = other.public.clone();
    let mut misled = spawn("dafka_console_consumer", &args, Some(&t), &wrong);
    misled.await_stderr("security.tower_keys", TIMEOUT);
    misled.kill();

    let (_plain_tower, pt) = secure_tower(&plain());
    let mut secure_node = spawn(
        "dafka_console_consumer",
        &args,
        Some(&pt),
        &secure(&keys, &ns, &tk),
    );
    secure_node.await_stderr("runs without security", TIMEOUT);
    secure_node.kill();
}

#[test]
fn bad_security_settings_get_one_line_each() {
    let keys = Keys::new();
    let (_, tk) = keys.pair("tower");
    let (ns, _) = keys.pair("node");
    keys.authorize(&[&tk]);
    let missing = keys.dir.path().join("missing.secret");
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (secure(&keys, &missing, &tk), "missing.secret"),
        (
            {
                let mut e = secure(&keys, &ns, &tk);
                e[3].1 = "not-a-key".into();
                e
            },
            "security.tower_keys",
        ),
        (
            vec![("DAFKA_SECURITY__ENABLED".into(), "true".into())],
            "security.secret_key_file",
        ),
    ];
    for (env, names) in cases {
        let mut p = spawn("dafka_console_producer", &["jobs"], None, &env);
        let status = p.wait(TIMEOUT);
        let err: Vec<String> = p.stderr.try_iter().collect();
        assert_eq!(status.code(), Some(1), "{err:?}");
        assert_eq!(err.len(), 1, "one line: {err:?}");
        assert!(err[0].contains(names), "{err:?}");
    }
}

#[test]
fn a_key_removed_from_the_allowlist_is_cut_off() {
    let keys = Keys::new();
    let (ts, tk) = keys.pair("tower");
    let (ss, sk) = keys.pair("store");
    let (ps, pk) = keys.pair("producer");
    let (cs, ck) = keys.pair("consumer");
    keys.authorize(&[&tk, &sk, &pk, &ck]);
    let (_tower, t) = secure_tower(&secure(&keys, &ts, &tk));
    let (s, _db) = secure_store(&t, &secure(&keys, &ss, &tk));
    let mut p = spawn(
        "dafka_console_producer",
        &["--min-acks", "1", "--timeout-ms", "3000", "jobs"],
        Some(&t),
        &secure(&keys, &ps, &tk),
    );
    let before = numbered("before", 10);
    p.write_lines(&before);
    let args = ["--from-beginning", "jobs"];
    let c = spawn(
        "dafka_console_consumer",
        &args,
        Some(&t),
        &secure(&keys, &cs, &tk),
    );
    assert_eq!(c.stdout_lines(10, TIMEOUT), before);

    // SIGHUP asks for a reload; it does not stop a daemon (they serve on
    // below).
    for node in [&s, &_tower] {
        kill(Pid::from_raw(node.pid() as i32), Signal::SIGHUP).expect("SIGHUP");
    }
    // The producer's key goes; every node reads the file again.
    keys.authorize(&[&tk, &sk, &ck]);
    for node in [&s, &c, &_tower] {
        node.await_stderr("1 key(s) removed", TIMEOUT);
    }
    p.write_lines(numbered("after", 10));
    p.close_stdin();
    assert!(
        !p.wait(TIMEOUT).success(),
        "no store ACKs a removed key's records"
    );
    let fresh = ["--from-beginning", "--timeout-ms", "3000", "jobs"];
    let stored = read_lines(&mut spawn(
        "dafka_console_consumer",
        &fresh,
        Some(&t),
        &secure(&keys, &cs, &tk),
    ));
    assert_eq!(stored, before, "nothing after the removal was stored");
    let mut c = c;
    c.kill();
    assert_eq!(c.stdout.try_iter().count(), 0, "nor delivered");
}

/// An authorized node that lies: it publishes a RECORD for another
/// producer's partition, and ACKs in the name of a store that is not it.
#[test]
fn a_spoofed_record_or_ack_from_an_authorized_node_is_not_believed() {
    let keys = Keys::new();
    let (ts, tk) = keys.pair("tower");
    let (ss, sk) = keys.pair("store");
    let (ps, pk) = keys.pair("producer");
    let (cs, ck) = keys.pair("consumer");
    let (ms, mk) = keys.pair("mallory");
    keys.authorize(&[&tk, &sk, &pk, &ck, &mk]);
    let (_tower, t) = secure_tower(&secure(&keys, &ts, &tk));

    // Before any store runs: an ACK in an invented store's name.
    let cfg = ProducerConfig {
        min_acks: 1,
        ..Default::default()
    };
    let producer = Producer::new("ledger", &cfg, &mesh(&t, &keys, &ps, &tk)).expect("producer");
    let mut mallory = TestPeer::join(Role::Store, &mesh(&t, &keys, &ms, &tk)).expect("mallory");
    let ack_key = routing::node_key(MessageId::Ack, &producer.partition());
    mallory
        .expect_subscriber(TIMEOUT, &ack_key)
        .expect("the producer listens for ACKs");
    producer.publish("real-0").expect("publish");
    let forged_ack = Message::Ack(Ack {
        topic: "ledger".into(),
        partition: producer.partition(),
        offset: 0,
        store: dafka::NodeId([0xee; 16]),
    });
    mallory.send(&forged_ack).expect("send");
    let stats = producer.stats();
    poll_until(
        "the producer drops the forged ACK",
        || match dafka::NodeStats::get(&stats.impostors) {
            0 => Err("not yet".to_string()),
            _ => Ok(()),
        },
    );
    assert_eq!(producer.unacked(), 1, "the forged ACK did not count");

    // A real store ACKs; then a RECORD in the producer's name, one
    // offset ahead, from Mallory's key.
    let (s, _db) = secure_store(&t, &secure(&keys, &ss, &tk));
    assert!(producer.flush(TIMEOUT), "the real store ACKs");
    let mut mallory = TestPeer::join(Role::Producer, &mesh(&t, &keys, &ms, &tk)).expect("mallory");
    mallory
        .expect_subscriber(TIMEOUT, b"R")
        .expect("the store listens");
    let forged = Message::Record(Record {
        topic: "ledger".into(),
        partition: producer.partition(),
        offset: 1,
        content: bytes::Bytes::from_static(b"forged"),
        ..Default::default()
    });
    mallory.send(&forged).expect("send");
    s.await_stderr("not sent with the key of the node it claims", TIMEOUT);
    for i in 1..10 {
        producer.publish(format!("real-{i}")).expect("publish");
    }
    assert!(producer.flush(TIMEOUT), "the real records are ACKed");
    let fresh = ["--from-beginning", "--timeout-ms", "3000", "ledger"];
    let stored = read_lines(&mut spawn(
        "dafka_console_consumer",
        &fresh,
        Some(&t),
        &secure(&keys, &cs, &tk),
    ));
    assert_eq!(stored, numbered("real", 10));
}
