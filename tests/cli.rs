//! The command line: help, bad flags, bad config, unusable directories.

mod support;

use std::process::Command;
use support::{bin, Proc, TIMEOUT};

const TOOLS: [&str; 4] = [
    "dafka_towerd",
    "dafka_stored",
    "dafka_console_producer",
    "dafka_console_consumer",
];

fn run(tool: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin(tool)).args(args).output().expect("run");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Runs `tool`, checks it failed with exit 1 and one line on stderr, and
/// returns that line.
fn one_error_line(tool: &str, args: &[&str]) -> String {
    let (code, _, err) = run(tool, args);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn every_tool_has_help() {
    for tool in TOOLS {
        let (code, out, _) = run(tool, &["--help"]);
        assert_eq!(code, 0, "{tool} --help");
        assert!(
            out.contains("Usage:") && out.contains("--sub") && out.contains("--pub"),
            "{tool}: {out}"
        );
        // Where the rest of the settings are: a file, variables, the README.
        assert!(
            out.contains("--config") && out.contains("DAFKA_") && out.contains("README"),
            "{tool}: {out}"
        );
    }
}

/// Help names the defaults the tools really use: they come from the
/// config's `Default`, the one place defaults live.
#[test]
fn help_shows_the_configured_defaults() {
    let beacon = dafka::MeshConfig::default();
    let (_, out, _) = run("dafka_console_consumer", &["--help"]);
    assert!(
        out.contains(&format!("[default: {}]", beacon.sub_address)),
        "{out}"
    );
    let (_, out, _) = run("dafka_stored", &["--help"]);
    let store = dafka::StoreConfig::default();
    let want = format!("[default: {}]", store.fsync_interval);
    assert!(out.contains(&want), "{out}");
    let (_, out, _) = run("dafka_towerd", &["--help"]);
    let want = format!("[default: {}]", dafka::TowerConfig::default().pub_address);
    assert!(out.contains(&want), "{out}");
}

#[test]
fn a_bad_flag_is_one_line_and_exit_2() {
    for tool in TOOLS {
        let (code, _, err) = run(tool, &["--no-such-flag"]);
        assert_eq!(code, 2, "{tool}");
        assert_eq!(err.lines().count(), 1, "{tool}: {err}");
        assert!(
            err.starts_with(&format!("{tool}: unexpected argument")),
            "{err}"
        );
    }
}

#[test]
fn a_bad_start_time_is_one_line_and_exit_2() {
    let (code, _, err) = run(
        "dafka_console_consumer",
        &["--from-time", "2026-11-30 09:00", "t"],
    );
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not a time"), "{err}");
}

#[test]
fn a_bad_retention_value_is_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    let f = file.to_str().expect("utf-8");
    for (text, key, what) in [
        (
            "[store]\nretention_ms = -5\n",
            "store.retention_ms",
            "is not a duration",
        ),
        (
            "[store]\nretention_bytes = \"10 parsecs\"\n",
            "store.retention_bytes",
            "is not a size",
        ),
        (
            "[[store.topic]]\nname = \"logs\"\nretention_ms = \"soon\"\n",
            "store.topic.retention_ms",
            "is not a duration",
        ),
    ] {
        std::fs::write(&file, text).expect("write");
        let err = one_error_line("dafka_stored", &["-c", f]);
        assert!(err.contains(key) && err.contains(what), "{err}");
    }
}

#[test]
fn a_missing_topic_is_one_line() {
    let (code, _, err) = run("dafka_console_consumer", &[]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_bad_config_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[beacon]\ninterval = 0\n").expect("write");
    let f = file.to_str().expect("utf-8");
    let (code, _, err) = run("dafka_stored", &["-c", f]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "dafka_stored: error: beacon.interval: must be at least 1 ms"
    );

    let (code, _, err) = run("dafka_towerd", &["-c", "/nonexistent.toml"]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "dafka_towerd: error: config file /nonexistent.toml: not found"
        )
    );

    let (code, _, err) = run("dafka_console_consumer", &["--sub", "localhost:5556", "t"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("beacon.sub_address: 'localhost:5556': not an endpoint"),
        "{err}"
    );
}

#[test]
fn bad_environment_values_are_reported() {
    let out = Command::new(bin("dafka_stored"))
        .env("DAFKA_STORE__FSYNC", "sometimes")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("dafka_stored: error:") && err.contains("sometimes"),
        "{err}"
    );
}

#[test]
fn an_unusable_store_directory_is_one_line_and_exit_1() {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let path = file.path().to_str().expect("utf-8");
    let (code, _, err) = run(
        "dafka_stored",
        &[
            "--db",
            path,
            "--sub",
            "tcp://127.0.0.1:1",
            "--pub",
            "tcp://127.0.0.1:2",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dafka_stored: error: cannot open store database at"),
        "{err}"
    );
}

#[test]
fn a_corrupt_store_directory_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A database whose manifest pointer names garbage.
    std::fs::write(dir.path().join("CURRENT"), "MANIFEST-garbage\n").expect("write");
    std::fs::write(dir.path().join("IDENTITY"), "x").expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let args = [
        "--db",
        path,
        "--sub",
        "tcp://127.0.0.1:1",
        "--pub",
        "tcp://127.0.0.1:2",
    ];
    let err = one_error_line("dafka_stored", &args);
    assert!(
        err.starts_with("dafka_stored: error: cannot open store database at"),
        "{err}"
    );
}

#[test]
fn a_producer_state_directory_of_another_topic_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("partition"),
        "0123456789abcdef0123456789abcdef other\n",
    )
    .expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let args = [
        "--state-dir",
        path,
        "--sub",
        "tcp://127.0.0.1:1",
        "--pub",
        "tcp://127.0.0.1:2",
        "mine",
    ];
    let err = one_error_line("dafka_console_producer", &args);
    assert!(err.contains("belongs to"), "{err}");
}

#[test]
fn a_producer_id_without_a_state_directory_is_one_line_and_exit_1() {
    let args = ["--id", "0123456789abcdef0123456789abcdef", "mine"];
    let err = one_error_line("dafka_console_producer", &args);
    assert!(err.contains("producer.id"), "{err}");
}

#[test]
fn a_taken_port_is_one_line_and_exit_1() {
    let (mut tower, t) = support::tower();
    let (code, _, err) = run(
        "dafka_towerd",
        &["--sub", &t.sub, "--pub", "tcp://127.0.0.1:*"],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("dafka_towerd: error: bind tcp://127.0.0.1:"),
        "{err}"
    );
    assert!(
        tower.interrupt().success(),
        "Ctrl-C stops the tower with exit 0"
    );
}

#[test]
fn an_invalid_topic_is_rejected() {
    let long = "x".repeat(300);
    let (code, _, err) = run(
        "dafka_console_consumer",
        &[
            "--sub",
            "tcp://127.0.0.1:1",
            "--pub",
            "tcp://127.0.0.1:2",
            &long,
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("invalid topic"), "{err}");
}

/// A consumer that reads nothing (`--max-messages 0`) under `env`: exit
/// code and stderr.
fn consumer_env(env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(bin("dafka_console_consumer"))
        .args(["--max-messages", "0", "t"])
        .envs(env.iter().copied())
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn only_dafka_section_key_variables_are_config_and_only_where_used() {
    let (code, err) = consumer_env(&[
        ("DAFKA_HOME", "/opt/dafka"),
        ("DAFKA_SIM_SEEDS", "100"),
        ("DAFKA_STORE__FSYNC", "sometimes"),
        ("DAFKA_CONSUMER__OFFSET_RESET", "Earliest"),
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, err) = consumer_env(&[("DAFKA_BEACON_INTERVAL", "5")]);
    assert_eq!(code, 0);
    assert_eq!(
        err.trim(),
        "dafka_console_consumer: warning: ignoring DAFKA_BEACON_INTERVAL: a config key takes two underscores after the section, DAFKA_BEACON__INTERVAL"
    );
    let (code, err) = consumer_env(&[("DAFKA_BEACON__INTERVALL", "5")]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "dafka_console_consumer: error: environment variable DAFKA_BEACON__INTERVALL: "
        ),
        "{err}"
    );
}

#[test]
fn bad_values_on_the_command_line_are_named() {
    let err = one_error_line("dafka_console_consumer", &["--sub", "tcp://h:99999", "t"]);
    assert!(
        err.contains("'tcp://h:99999': port 99999 is out of range"),
        "{err}"
    );
    let (code, _, err) = run("dafka_console_producer", &["--min-ack", "2", "t"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("tip: a similar argument exists: '--min-acks'"),
        "{err}"
    );
    let (code, _, err) = run("dafka_console_producer", &["--min-acks", "-1", "t"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value '-1' for '--min-acks <N>'"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let err = one_error_line("dafka_stored", &["-c", dir.path().to_str().expect("utf-8")]);
    assert!(
        err.ends_with(": is a directory, not a TOML file\n"),
        "{err}"
    );
}

/// `dafka_console_consumer TOPIC | head -1` on a quiet topic: once the
/// reader is gone the consumer exits at once, quietly, with no record to
/// write first.
#[test]
fn a_consumer_whose_reader_is_gone_exits_quietly() {
    let (_tower, t) = support::tower();
    let mut child = Command::new(bin("dafka_console_consumer"))
        .args(["--sub", &t.sub, "--pub", &t.pub_, "quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(support::TIMEOUT)
        .expect("the consumer exits once its reader is gone")
        .expect("output");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A producer waiting for acknowledgements that cannot come (no store):
/// it says so after a few seconds; a first Ctrl-C says what it waits for, a
/// second quits at once with exit code 3 and the count, long before its
/// ten-minute close timeout.
#[test]
fn a_second_ctrl_c_quits_a_waiting_producer_at_once() {
    let (_tower, t) = support::tower();
    let args = ["--timeout-ms", "600000", "nostore"];
    let mut p = support::Proc::spawn("dafka_console_producer", &args, Some(&t));
    p.write_lines(support::numbered("x", 5));
    p.await_stderr("no store or consumer found in 3 s", support::TIMEOUT);
    // Lines are read on their own thread: once the warning is out, all
    // five were published (it waits on end of input or Ctrl-C).
    p.ctrl_c();
    p.await_stderr(
        "stopped reading; waiting up to 600000 ms for 5 record(s)",
        support::TIMEOUT,
    );
    p.ctrl_c();
    p.await_stderr(
        "interrupted again: 5 record(s) not acknowledged",
        support::TIMEOUT,
    );
    assert_eq!(p.wait(support::TIMEOUT).code(), Some(3));
}

/// Daemons log, at their default level, what an operator wants to see:
/// the tower each node joining and leaving, the store each partition it
/// opens; without colour codes when stderr is not a terminal.
#[test]
fn daemons_say_what_they_do_at_their_default_level() {
    use support::Proc;
    let own_level = [("RUST_LOG", "")];
    let (tower, t) = support::tower_env(&own_level);
    let db = tempfile::tempdir().expect("db");
    let db_arg = ["--db", db.path().to_str().expect("utf-8")];
    let mut store = Proc::spawn_env("dafka_stored", &db_arg, Some(&t), &own_level);
    let joined = tower.await_stderr("node joined", support::TIMEOUT);
    assert!(
        joined.contains("role=Store") && !joined.contains('\x1b'),
        "{joined}"
    );
    assert!(support::produce(&t, "logged", &support::numbered("x", 3), &[]).success());
    let opened = store.await_stderr("partition opened", support::TIMEOUT);
    assert!(opened.contains("topic=logged"), "{opened}");
    assert_eq!(store.interrupt().code(), Some(0));
    tower.await_stderr("role=Store", support::TIMEOUT);
}

/// A loopback endpoint nobody listens on: a port taken from the system,
/// then released.
fn free_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    format!("tcp://127.0.0.1:{}", l.local_addr().expect("addr").port())
}

/// A node with no tower at its addresses says so after a few seconds (at
/// the default log level) and keeps trying.
#[test]
fn a_node_without_a_tower_says_so() {
    let (sub, pub_) = (free_endpoint(), free_endpoint());
    let args = ["--sub", sub.as_str(), "--pub", pub_.as_str(), "alone"];
    let p = support::Proc::spawn_env("dafka_console_consumer", &args, None, &[("RUST_LOG", "")]);
    // Two threads say it (the node's driver and the tool): in either order.
    let lines = p.await_stderr_all(
        &[
            "no tower has answered in 3 s",
            "dafka_console_consumer: no producer or store found in 3 s",
        ],
        support::TIMEOUT,
    );
    let line = &lines[0];
    assert!(line.contains(&sub) && line.contains(&pub_), "{line}");
}

/// `dafka_perf_store --peers N` starts only once N stores and consumers
/// are connected, and says so when they do not come.
#[test]
fn a_producer_benchmark_waiting_for_peers_that_never_come_says_so() {
    let (sub, pub_) = (free_endpoint(), free_endpoint());
    let out = Command::new(bin("dafka_perf_store"))
        .args(["--sub", &sub, "--pub", &pub_, "--peers", "2"])
        .args(["--timeout-ms", "300", "10", "100"])
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("fewer than 2 stores and consumers connected within 300ms"),
        "{err}"
    );
}

/// The latency floor `make bench` prints: bare ZeroMQ paced at a rate
/// reports percentiles (a short run; no timing is asserted).
#[test]
fn the_raw_zeromq_latency_mode_reports_percentiles() {
    let (code, out, err) = run("dafka_perf_zmq", &["--rate", "2000", "--json", "200", "16"]);
    assert_eq!(code, 0, "{err}");
    for field in ["\"p50_us\":", "\"p99_us\":", "\"p999_us\":", "\"max_us\":"] {
        assert!(out.contains(field), "{out}");
    }
    let (code, _, err) = run("dafka_perf_zmq", &["--rate", "0", "10", "16"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn bad_record_flags_are_one_line_and_exit_2() {
    for (tool, args, want) in [
        (
            "dafka_console_producer",
            &["--header", "novalue", "t"][..],
            "'novalue' is not NAME=VALUE",
        ),
        (
            "dafka_console_producer",
            &["--property", "parse.key=yes", "t"][..],
            "true or false",
        ),
        (
            "dafka_console_producer",
            &["--property", "print.key=true", "t"][..],
            "unknown property",
        ),
        (
            "dafka_console_consumer",
            &["--format", "xml", "t"][..],
            "invalid value 'xml'",
        ),
        (
            "dafka_console_consumer",
            &["--offset", "x", "t"][..],
            "not earliest, latest or an offset",
        ),
        (
            "dafka_console_consumer",
            &["--partition", "p1", "t"][..],
            "not a partition id",
        ),
        (
            "dafka_console_consumer",
            &["--offset", "5", "t"][..],
            "--offset N needs --partition",
        ),
    ] {
        let (code, _, err) = run(tool, args);
        assert_eq!(code, 2, "{tool} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn keygen_writes_a_pair_once_and_keeps_the_secret_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("dir");
    let base = d.path().join("node1");
    let base = base.to_str().expect("utf-8");
    let mut p = Proc::spawn("dafka_keygen", &[base], None);
    assert!(p.wait(TIMEOUT).success());
    let public: Vec<String> = p.stdout.try_iter().collect();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].len(), 40, "a Z85 key: {public:?}");
    let on_disk = std::fs::read_to_string(format!("{base}.public")).expect("public file");
    assert_eq!(on_disk.trim(), public[0]);
    let mode = std::fs::metadata(format!("{base}.secret"))
        .expect("secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut again = Proc::spawn("dafka_keygen", &[base], None);
    assert_eq!(again.wait(TIMEOUT).code(), Some(1));
    let err: Vec<String> = again.stderr.try_iter().collect();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("refusing to overwrite"), "{err:?}");
}
