//! `peer_bench`: the client side of `make bench-peers` for the systems Dafka
//! is compared with. Each mode prints one JSON line, in the same shape as
//! Dafka's own perf tools (`msg_per_s`, or `p50_us`/`p99_us`/`p999_us`), so
//! the script reads every peer the same way.
//!
//!   peer_bench nats-acked   URL SUBJECT COUNT SIZE
//!   peer_bench nats-live    URL SUBJECT COUNT SIZE   (prints "ready" on stderr)
//!   peer_bench nats-replay  URL SUBJECT COUNT SIZE
//!   peer_bench nats-latency URL SUBJECT COUNT SIZE RATE
//!   peer_bench redis-live   ADDR KEY COUNT SIZE      (prints "ready" on stderr)
//!   peer_bench redis-replay ADDR KEY COUNT SIZE
//!   peer_bench redis-latency ADDR KEY COUNT SIZE RATE
//!   peer_bench pipe-latency COUNT SIZE RATE -- PRODUCER... -- CONSUMER...
//!
//! Not a test and not part of the product: it asserts nothing.

mod nats;
mod pipe;
mod redis;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// How long any run may wait for its next message before it gives up:
/// a stalled peer ends its row with an error instead of hanging the bench.
pub const STALL: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peer_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<String> {
    let mode = args
        .first()
        .ok_or("usage: peer_bench MODE ARGS... (see the source)")?;
    let rest = &args[1..];
    match mode.as_str() {
        "pipe-latency" => pipe::latency(rest),
        m if m.starts_with("nats-") => nats::run(&m[5..], &Target::parse(rest)?),
        m if m.starts_with("redis-") => redis::run(&m[6..], &Target::parse(rest)?),
        other => Err(format!("unknown mode {other:?}").into()),
    }
}

/// The common arguments of the NATS and Redis modes.
pub struct Target {
    pub addr: String,
    pub name: String,
    pub count: u64,
    pub size: usize,
    pub rate: u64,
}

impl Target {
    fn parse(args: &[String]) -> Result<Self> {
        let [addr, name, count, size, more @ ..] = args else {
            return Err("expected ADDR NAME COUNT SIZE [RATE]".into());
        };
        let num = |s: &String, what: &str| -> Result<u64> {
            s.parse()
                .map_err(|_| format!("{what} must be a whole number, not {s:?}").into())
        };
        Ok(Self {
            addr: addr.clone(),
            name: name.clone(),
            count: num(count, "COUNT")?.max(1),
            size: num(size, "SIZE")?.max(16) as usize,
            rate: more
                .first()
                .map(|r| num(r, "RATE"))
                .transpose()?
                .unwrap_or(10_000)
                .max(1),
        })
    }
}

/// `{"msg_per_s":N}` for `count` messages over `secs`.
pub fn rate_line(count: u64, secs: f64) -> String {
    format!(
        "{{\"msg_per_s\":{:.0},\"count\":{count}}}",
        count as f64 / secs.max(1e-9)
    )
}
