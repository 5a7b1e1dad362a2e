//! What the Dafka command-line tools share: flags, config layering, logging,
//! one-line errors and Ctrl-C.

use clap::Parser;

/// Every tool allocates through mimalloc (the `global_allocator` of the
/// binaries that link this crate).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crossbeam_channel::Receiver;
use dafka::{Config, Section};
use std::path::PathBuf;
use std::process::ExitCode;

/// Help text that ends in a default taken from the config's own defaults
/// (`Default` of each section, the one place they live), so `--help` never
/// disagrees with what a tool does when the flag is left out.
pub fn with_default(text: &str, value: impl std::fmt::Display) -> String {
    format!("{text} [default: {value}]")
}

fn beacon() -> dafka::MeshConfig {
    dafka::MeshConfig::default()
}

/// Flags every node tool takes (the tower takes its own `--sub`/`--pub`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeArgs {
    // Flags without a clap default: left out, the config file and the
    // environment decide; their help names the built-in default.
    /// The towers' beacon input(s).
    #[arg(long = "sub", value_name = "ENDPOINT",
        help = with_default("The towers' beacon input(s), comma-separated", beacon().sub_address))]
    pub sub: Option<String>,
    /// The towers' beacon output(s).
    #[arg(long = "pub", value_name = "ENDPOINT",
        help = with_default("The towers' beacon output(s), comma-separated", beacon().pub_address))]
    pub pub_: Option<String>,
    /// Where this node's data socket listens (peers connect to it).
    #[arg(long, value_name = "ENDPOINT",
        help = with_default("Where this node's data socket listens (peers connect to it)", format!("{} (every interface, a free port)", beacon().bind)))]
    pub bind: Option<String>,
    /// The host peers should connect to, when the address the tower sees
    /// is not it (NAT, containers) [default: that address]
    #[arg(long, value_name = "HOST")]
    pub advertise_host: Option<String>,
    /// A TOML config file. Every key can also be set as an environment
    /// variable DAFKA_<SECTION>__<KEY> (DAFKA_BEACON__INTERVAL=500); the
    /// README lists them all. Flags win over both
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log what the node does (RUST_LOG overrides)
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl NodeArgs {
    /// Loads the sections `uses` of the config (defaults, file, `DAFKA_*`),
    /// then applies the flags.
    pub fn config(&self, tool: &str, uses: &[Section]) -> Result<Config, dafka::ConfigError> {
        let mut cfg = load_config(tool, self.config.as_deref(), uses)?;
        let b = &mut cfg.beacon;
        for (flag, key) in [
            (&self.sub, &mut b.sub_address),
            (&self.pub_, &mut b.pub_address),
            (&self.bind, &mut b.bind),
            (&self.advertise_host, &mut b.advertise_host),
        ] {
            if let Some(v) = flag {
                *key = v.clone();
            }
        }
        Ok(cfg)
    }
}

/// Loads what a tool uses of the config, first warning (once, on stderr)
/// about `DAFKA_` variables that look like a mistyped key.
pub fn load_config(
    tool: &str,
    file: Option<&std::path::Path>,
    uses: &[Section],
) -> Result<Config, dafka::ConfigError> {
    for w in Config::env_warnings() {
        eprintln!("{tool}: warning: {w}");
    }
    Config::load_for(file, uses)
}

/// Parses the command line. `--help` and `--version` print and exit 0; any
/// other problem prints one line and exits 2.
pub fn parse<T: Parser>(tool: &str) -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!(
                "{tool}: {} (try --help)",
                clap_error_line(&e.render().to_string())
            );
            std::process::exit(2);
        }
    }
}

/// clap's error as one line: what is wrong, and its tip ("a similar
/// argument exists: '--min-acks'") when it has one; not the usage.
fn clap_error_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        // A line ending in ':' introduces the next ("not provided: <TOPIC>").
        let sep = if out.is_empty() {
            ""
        } else if out.ends_with(':') {
            " "
        } else {
            "; "
        };
        out.push_str(sep);
        out.push_str(line.strip_prefix("error: ").unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clap_error_line, error_line};

    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "File exists (os error 17)",
        );
        let e = anyhow::Error::new(io)
            .context("producer state directory /x: File exists (os error 17)");
        assert_eq!(
            error_line(&e),
            "producer state directory /x: File exists (os error 17)"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&e), "outer: inner");
    }

    #[test]
    fn a_clap_error_keeps_its_tip_and_drops_the_usage() {
        let text = "error: unexpected argument '--min-ack' found\n\n  tip: a similar argument exists: '--min-acks'\n\nUsage: dafka_console_producer --min-acks <N> <TOPIC>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_error_line(text),
            "unexpected argument '--min-ack' found; tip: a similar argument exists: '--min-acks'"
        );
        let text = "error: the following required arguments were not provided:\n  <TOPIC>\n\nUsage: x <TOPIC>\n";
        assert_eq!(
            clap_error_line(text),
            "the following required arguments were not provided: <TOPIC>"
        );
    }
}

/// Sets up logging to stderr for a client tool: warnings by default,
/// `debug` with `--verbose`, or whatever `RUST_LOG` says.
pub fn init_logging(verbose: bool) {
    init_logging_at(verbose, "warn");
}

/// Sets up logging for a daemon: `info` by default (nodes joining and
/// leaving, partitions opened, gaps repaired, rate-limited), so an operator
/// sees what it does; `debug` with `--verbose`; `RUST_LOG` overrides.
pub fn init_daemon_logging(verbose: bool) {
    init_logging_at(verbose, "info");
}

fn init_logging_at(verbose: bool, quiet: &str) {
    let default = if verbose { "debug" } else { quiet };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal, not in a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// A channel that yields once on Ctrl-C or SIGTERM. SIGHUP reads the
/// authorized keys again (`[security]`) instead of stopping the tool.
pub fn interrupted() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let _ = ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    });
    // After ctrlc, which claims SIGHUP too.
    if let Err(e) = dafka::reload_on_sighup() {
        tracing::warn!(error = %e, "SIGHUP will not reload the authorized keys");
    }
    rx
}

/// A channel that yields once when standard output is a pipe or socket
/// whose reader has gone (`| head -1` done): a tool waiting for input to
/// print can then stop at once, as Unix tools do, rather than at its next
/// write. Never yields for a terminal or a file.
pub fn stdout_closed() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let watch = move || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let out = std::io::stdout();
        // No events asked: poll reports only errors and hang-ups, which a
        // pipe gives once its reader is gone, and a file or terminal never.
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::empty())];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    let gone = PollFlags::POLLERR | PollFlags::POLLHUP;
                    if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                        let _ = tx.try_send(());
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    };
    let _ = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(watch);
    rx
}

/// Runs a tool's body; an error becomes one line on stderr and exit 1.
pub fn main_with(tool: &str, body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    no_huge_pages();
    dafka_sockopt::keep_freed_c_memory();
    match body() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{tool}: error: {}", error_line(&e));
            ExitCode::from(1)
        }
    }
}

/// Turns transparent huge pages off for this process (and what it starts).
/// mimalloc asks the kernel for huge pages for its arenas and hands freed
/// memory back after 10 ms, so each new touch of that memory faults in and
/// zeroes a whole 2 MiB page. Once the machine had been idle for a few
/// seconds (when the kernel has huge pages to give), that zeroing took 28 %
/// of a store's CPU, and a 300,000-record burst of 100 B records ran at
/// 0.63-0.87 M msg/s instead of 1.13-1.43 M (README, Benchmarks). Best
/// effort: a kernel without the flag keeps its default.
fn no_huge_pages() {
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// Says once, on stderr, that a node has found no peer a few seconds after
/// it started: most often no tower runs at the addresses given, or the
/// peers it needs have not started, and otherwise it would wait in silence.
pub struct Silence {
    tool: &'static str,
    peers: &'static str,
    since: std::time::Instant,
    warned: bool,
    towers: String,
}

/// How long a tool runs without any peer before it says so.
pub const SILENCE_WARNING: std::time::Duration = std::time::Duration::from_secs(3);

impl Silence {
    /// For `tool`, whose peers are `peers` ("store or consumer").
    pub fn new(tool: &'static str, peers: &'static str, cfg: &dafka::MeshConfig) -> Self {
        Silence {
            tool,
            peers,
            since: std::time::Instant::now(),
            warned: false,
            towers: format!("{} / {}", cfg.sub_address, cfg.pub_address),
        }
    }

    /// Warns if it is time and the node still has no peer.
    pub fn check(&mut self, peers: u64) {
        if self.warned || self.since.elapsed() < SILENCE_WARNING || peers > 0 {
            return;
        }
        self.warned = true;
        eprintln!(
            "{}: no {} found in {} s (towers: {}); is a tower running there? still waiting",
            self.tool,
            self.peers,
            SILENCE_WARNING.as_secs(),
            self.towers
        );
    }
}

/// An error and its causes on one line, each cause said once: many errors
/// already name their source in their own text ("DIR: File exists"), and
/// repeating it ("File exists: File exists") reads like two problems.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

pub mod admin;
pub mod console;
pub mod metrics;
pub mod perf;
