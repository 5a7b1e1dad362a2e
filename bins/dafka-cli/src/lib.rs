//! What the Dafka command-line tools share: flags, config layering, logging,
//! one-line errors and Ctrl-C.

use clap::Parser;

/// Every tool allocates through mimalloc (the `global_allocator` of the
/// binaries that link this crate).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crossbeam_channel::Receiver;
use dafka::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags every node tool takes (the tower takes its own `--sub`/`--pub`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// The towers' beacon input(s), comma-separated [default: tcp://127.0.0.1:5556]
    #[arg(long = "sub", value_name = "ENDPOINT")]
    pub sub: Option<String>,
    /// The towers' beacon output(s), comma-separated [default: tcp://127.0.0.1:5557]
    #[arg(long = "pub", value_name = "ENDPOINT")]
    pub pub_: Option<String>,
    /// A TOML config file (see the README for its keys)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log what the node does (RUST_LOG overrides)
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl NodeArgs {
    /// Loads the config (defaults, file, `DAFKA_*`), then applies the flags.
    pub fn config(&self) -> Result<Config, dafka::ConfigError> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(s) = &self.sub {
            cfg.beacon.sub_address = s.clone();
        }
        if let Some(p) = &self.pub_ {
            cfg.beacon.pub_address = p.clone();
        }
        Ok(cfg)
    }
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
            // clap's first paragraph says what is wrong; the rest is usage.
            let text = e.render().to_string();
            let para: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let what = para.join(" ");
            let what = what.strip_prefix("error: ").unwrap_or(&what);
            eprintln!("{tool}: {what} (try --help)");
            std::process::exit(2);
        }
    }
}

/// Sets up logging to stderr: warnings by default, `debug` with
/// `--verbose`, or whatever `RUST_LOG` says.
pub fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A channel that yields once on Ctrl-C or SIGTERM.
pub fn interrupted() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let _ = ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    });
    rx
}

/// Runs a tool's body; an error becomes one line on stderr and exit 1.
pub fn main_with(tool: &str, body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    match body() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{tool}: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

pub mod perf;
