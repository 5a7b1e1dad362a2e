//! Running the real Dafka binaries in tests.
//!
//! Every process gets ephemeral loopback ports (the tower binds
//! `tcp://127.0.0.1:*` and prints what it got), fast timers through
//! `DAFKA_*` variables, and is killed when its handle drops. Waiting is for
//! events (a line of output, an exit) under a timeout; only `poll_until`
//! pauses, for state that sends no event.
#![allow(dead_code)]

pub mod hosts;

use crossbeam_channel::{unbounded, Receiver};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Generous: a debug build on a loaded 2-core machine is slow.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn bin(name: &str) -> &'static str {
    match name {
        "dafka_towerd" => env!("CARGO_BIN_EXE_dafka_towerd"),
        "dafka_stored" => env!("CARGO_BIN_EXE_dafka_stored"),
        "dafka_console_producer" => env!("CARGO_BIN_EXE_dafka_console_producer"),
        "dafka_console_consumer" => env!("CARGO_BIN_EXE_dafka_console_consumer"),
        "dafka_perf_zmq" => env!("CARGO_BIN_EXE_dafka_perf_zmq"),
        "dafka_perf_store" => env!("CARGO_BIN_EXE_dafka_perf_store"),
        "dafka_admin" => env!("CARGO_BIN_EXE_dafka_admin"),
        "dafka_keygen" => env!("CARGO_BIN_EXE_dafka_keygen"),
        "file_sync" => example("file_sync"),
        other => panic!("no binary {other}"),
    }
}

/// An example of the `dafka` crate, built by `cargo test --all-targets`
/// next to this test's own binary (target/debug/examples).
fn example(name: &str) -> &'static str {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples too (cargo test --workspace --all-targets)",
        path.display()
    );
    Box::leak(path.display().to_string().into_boxed_str())
}

/// A running process of ours.
pub struct Proc {
    pub name: String,
    pid: u32,
    stdin: Option<ChildStdin>,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    exit: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    /// The threads reading its stdout and stderr: joined once it exited,
    /// so that every line it wrote is in `stdout` and `stderr` by then.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The tower's endpoints, to hand to every other process.
#[derive(Clone, Debug)]
pub struct Towers {
    pub sub: String,
    pub pub_: String,
}

fn lines<R: std::io::Read + Send + 'static>(
    r: R,
    echo: Option<String>,
) -> (Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = unbounded();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(name) = &echo {
                eprintln!("[{name}] {line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], towers: Option<&Towers>) -> Proc {
        Proc::spawn_env(name, args, towers, &[])
    }

    /// [`Proc::spawn`] with environment changes after the tests' own: a
    /// variable set to "" is removed (`("RUST_LOG", "")`: the tool's own
    /// default log level).
    pub fn spawn_env(
        name: &str,
        args: &[&str],
        towers: Option<&Towers>,
        env: &[(&str, &str)],
    ) -> Proc {
        Proc::spawn_on(None, name, args, towers, env)
    }

    /// [`Proc::spawn_env`] on a test host (see `hosts`): inside its
    /// network namespace, bound to its address.
    pub fn spawn_on(
        host: Option<&hosts::Host>,
        name: &str,
        args: &[&str],
        towers: Option<&Towers>,
        env: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = match host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &h.ns, bin(name)]);
                c
            }
            None => Command::new(bin(name)),
        };
        if let Some(t) = towers {
            cmd.args(["--sub", &t.sub, "--pub", &t.pub_]);
        }
        // Daemons serve metrics on a fixed port by default; tests run many
        // at once, so each takes a free one.
        let daemon = matches!(name, "dafka_stored" | "dafka_towerd");
        if daemon && !args.contains(&"--metrics") {
            cmd.args(["--metrics", "127.0.0.1:0"]);
        }
        cmd.args(args)
            .env("DAFKA_BEACON__INTERVAL", "100")
            .env("DAFKA_BEACON__TIMEOUT", "1000")
            .env("DAFKA_BEACON__BIND", "tcp://127.0.0.1:*")
            .env("DAFKA_PRODUCER__HEAD_INTERVAL", "100")
            .env("DAFKA_CONSUMER__FETCH_RETRY", "200")
            .env("DAFKA_STORE__FETCH_RETRY", "200")
            .env("DAFKA_CONSUMER__HEADS_REFRESH", "500")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in secure_env() {
            cmd.env(k, v);
        }
        if let Some(h) = host {
            cmd.env("DAFKA_BEACON__BIND", format!("tcp://{}:*", h.addr));
        }
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child: Child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (stdout, out_reader) = lines(child.stdout.take().expect("stdout"), None);
        let (stderr, err_reader) =
            lines(child.stderr.take().expect("stderr"), Some(name.to_string()));
        let stdin = child.stdin.take();
        let pid = child.id();
        let (tx, exit) = unbounded();
        std::thread::spawn(move || {
            if let Ok(s) = child.wait() {
                let _ = tx.send(s);
            }
        });
        Proc {
            name: name.into(),
            pid,
            stdin,
            stdout,
            stderr,
            exit,
            status: None,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Writes lines to the process's standard input.
    pub fn write_lines<S: AsRef<str>>(&mut self, lines: impl IntoIterator<Item = S>) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        for l in lines {
            writeln!(stdin, "{}", l.as_ref()).expect("write stdin");
        }
        stdin.flush().expect("flush stdin");
    }

    /// Writes raw bytes to the process's standard input.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Closes standard input (end of input for a producer).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let s = self
            .exit
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("{} did not exit within {timeout:?}", self.name));
        self.status = Some(s);
        // Its pipes closed when it exited: the readers end at once, and
        // then everything it wrote is in the channels.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        s
    }

    /// Waits for a line on stderr containing `needle`; returns it.
    pub fn await_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "{}: no stderr line with {needle:?} within {timeout:?}",
                    self.name
                ),
            }
        }
    }

    /// Waits for one stderr line containing each of `needles`, in any order
    /// (lines from different threads race); returns them in `needles`'
    /// order.
    pub fn await_stderr_all(&self, needles: &[&str], timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(l) = self.stderr.recv_timeout(left) else {
                panic!("{}: no stderr lines with all of {needles:?} within {timeout:?}; found {found:?}", self.name);
            };
            if let Some(i) =
                (0..needles.len()).find(|&i| found[i].is_none() && l.contains(needles[i]))
            {
                found[i] = Some(l);
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Collects `n` lines of stdout, failing after `timeout`.
    pub fn stdout_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => panic!(
                    "{}: {} of {n} lines within {timeout:?}; last: {:?}",
                    self.name,
                    out.len(),
                    out.last()
                ),
            }
        }
        out
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid as i32), sig);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        self.wait(TIMEOUT);
    }

    /// Ctrl-C, then waits for a clean exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.ctrl_c();
        self.wait(TIMEOUT)
    }

    /// Ctrl-C, without waiting.
    pub fn ctrl_c(&self) {
        self.signal(Signal::SIGINT);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() && self.exit.try_recv().is_err() {
            self.signal(Signal::SIGKILL);
        }
    }
}

/// With `DAFKA_TEST_SECURE` set, every process runs with `[security]`
/// on: CURVE everywhere, one key pair for all (made once per run) that the
/// allowlist and the tower key name. CI runs the end-to-end tests of
/// records and repair this way too.
pub fn secure_env() -> &'static [(String, String)] {
    static ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        if std::env::var_os("DAFKA_TEST_SECURE").is_none() {
            return Vec::new();
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("secure-keys");
        std::fs::create_dir_all(&dir).expect("key dir");
        let base = dir.join("all");
        let (secret, public) = dafka_transport::keys::key_files(&base);
        if !secret.exists() || !public.exists() {
            let _ = std::fs::remove_file(&secret);
            let _ = std::fs::remove_file(&public);
            let pair = dafka_transport::keys::generate().expect("CURVE");
            dafka_transport::keys::write_pair(&base, &pair).expect("keys");
        }
        let key = std::fs::read_to_string(&public).expect("public key");
        let allowed = dir.join("authorized_keys");
        std::fs::write(&allowed, &key).expect("authorized keys");
        let path = |p: &Path| p.to_str().expect("utf-8").to_string();
        vec![
            ("DAFKA_SECURITY__ENABLED".into(), "true".into()),
            ("DAFKA_SECURITY__SECRET_KEY_FILE".into(), path(&secret)),
            ("DAFKA_SECURITY__AUTHORIZED_KEYS".into(), path(&allowed)),
            ("DAFKA_SECURITY__TOWER_KEYS".into(), key.trim().to_string()),
        ]
    })
}

/// The `[security]` of [`secure_env`], for nodes a test runs in-process:
/// off unless `DAFKA_TEST_SECURE` is set.
pub fn security() -> dafka::SecurityConfig {
    let get = |name: &str| {
        secure_env()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    dafka::SecurityConfig {
        enabled: !secure_env().is_empty(),
        secret_key_file: get("DAFKA_SECURITY__SECRET_KEY_FILE"),
        authorized_keys: get("DAFKA_SECURITY__AUTHORIZED_KEYS"),
        tower_keys: get("DAFKA_SECURITY__TOWER_KEYS"),
    }
}

/// Starts a tower on ephemeral loopback ports.
pub fn tower() -> (Proc, Towers) {
    tower_env(&[])
}

/// [`tower`] with environment changes (see [`Proc::spawn_env`]).
pub fn tower_env(env: &[(&str, &str)]) -> (Proc, Towers) {
    let p = Proc::spawn_env(
        "dafka_towerd",
        &["--sub", "tcp://127.0.0.1:*", "--pub", "tcp://127.0.0.1:*"],
        None,
        env,
    );
    let line = p.await_stderr("beacons in on", TIMEOUT);
    // "dafka_towerd: beacons in on tcp://127.0.0.1:X, out on tcp://127.0.0.1:Y"
    let words: Vec<&str> = line.split_whitespace().collect();
    let sub = words[4].trim_end_matches(',').to_string();
    let pub_ = words[7].to_string();
    (p, Towers { sub, pub_ })
}

/// Starts a tower on the endpoints an earlier one had (a restart).
pub fn tower_at(t: &Towers) -> Proc {
    let p = Proc::spawn("dafka_towerd", &["--sub", &t.sub, "--pub", &t.pub_], None);
    p.await_stderr("beacons in on", TIMEOUT);
    p
}

/// Starts a store on `dir` and waits until it is serving.
pub fn store(towers: &Towers, dir: &Path) -> Proc {
    store_with(towers, dir, &[])
}

/// Starts a store on `dir` with extra flags and waits until it is serving.
pub fn store_with(towers: &Towers, dir: &Path, extra: &[&str]) -> Proc {
    let db = dir.to_str().expect("utf-8 path");
    let mut args = vec!["--db", db];
    args.extend_from_slice(extra);
    let p = Proc::spawn("dafka_stored", &args, Some(towers));
    p.await_stderr("serving", TIMEOUT);
    p
}

/// Runs a console producer over `lines` to the end; returns its exit status.
pub fn produce(towers: &Towers, topic: &str, lines: &[String], extra: &[&str]) -> ExitStatus {
    let mut args = extra.to_vec();
    args.push(topic);
    let mut p = Proc::spawn("dafka_console_producer", &args, Some(towers));
    p.write_lines(lines);
    p.close_stdin();
    p.wait(TIMEOUT)
}

/// Starts a console consumer.
pub fn consumer(towers: &Towers, topic: &str, extra: &[&str]) -> Proc {
    let mut args = extra.to_vec();
    args.push(topic);
    Proc::spawn("dafka_console_consumer", &args, Some(towers))
}

pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// One partition's records as a fresh consumer sees them: (offset, content).
pub type Partition = Vec<(u64, String)>;

/// Everything `topic` holds, read from the beginning by a new console
/// consumer that exits once nothing new has come for a few seconds.
pub fn read_all(t: &Towers, topic: &str) -> BTreeMap<String, Partition> {
    let args = [
        "--from-beginning",
        "--print-partition",
        "--print-offset",
        "--timeout-ms",
        "4000",
    ];
    let mut reader = consumer(t, topic, &args);
    assert!(reader.wait(Duration::from_secs(300)).success());
    let mut parts: BTreeMap<String, Partition> = BTreeMap::new();
    for l in reader.stdout.try_iter() {
        let f: Vec<&str> = l.splitn(3, '\t').collect();
        assert_eq!(f.len(), 3, "partition, offset, content: {l:?}");
        let offset = f[1].parse().expect("offset");
        parts
            .entry(f[0].into())
            .or_default()
            .push((offset, f[2].into()));
    }
    parts
}

/// The only partition of `topic`, checked to be offsets 0.. with `want`.
pub fn assert_exactly(parts: &BTreeMap<String, Partition>, want: &[String]) {
    assert_eq!(parts.len(), 1, "one partition");
    let got = parts.values().next().expect("a partition");
    assert_eq!(got.len(), want.len(), "record count");
    for (i, ((off, text), w)) in got.iter().zip(want).enumerate() {
        assert_eq!((*off, text), (i as u64, w), "record {i}");
    }
}

/// Probes until `probe` gives a value, every 100 ms, for at most
/// [`TIMEOUT`]; panics naming `what` with the last probe's words. For
/// state with no event to await (an HTTP endpoint, a directory's size);
/// the only place the tests pause.
pub fn poll_until<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
