//! What the benchmark tools share: one result line in the C tools' words,
//! an optional JSON line for scripts, and progress on stderr.

use crate::NodeArgs;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The arguments of the throughput tools (`dafka_perf_store`,
/// `dafka_perf_consumer`).
#[derive(clap::Args, Debug)]
pub struct ThroughputArgs {
    #[command(flatten)]
    /// Towers, config file, logging.
    pub node: NodeArgs,
    /// The topic
    #[arg(long, default_value = "perf")]
    pub topic: String,
    /// Give up after this long without progress, in ms
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "MS",
        default_value_t = 30_000
    )]
    pub timeout_ms: u64,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Records (at least 2)
    #[arg(allow_negative_numbers = true)]
    pub count: u64,
    /// Bytes per record
    #[arg(allow_negative_numbers = true)]
    pub size: usize,
}

impl ThroughputArgs {
    /// The progress timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A benchmark result: named numbers, printed as one line.
#[derive(Debug, Default)]
pub struct Report {
    tool: &'static str,
    fields: Vec<(&'static str, f64)>,
}

impl Report {
    /// A report from `tool`.
    pub fn new(tool: &'static str) -> Self {
        Report {
            tool,
            fields: Vec::new(),
        }
    }

    /// Adds a number.
    pub fn field(mut self, name: &'static str, value: f64) -> Self {
        self.fields.push((name, value));
        self
    }

    /// A throughput report for `count` records of `size` bytes in `took`.
    pub fn throughput(tool: &'static str, count: u64, size: usize, took: Duration) -> Self {
        let secs = took.as_secs_f64().max(1e-9);
        let rate = count as f64 / secs;
        Report::new(tool)
            .field("count", count as f64)
            .field("size", size as f64)
            .field("seconds", secs)
            .field("msg_per_s", rate)
            .field("mb_per_s", rate * size as f64 / 1e6)
    }

    fn get(&self, name: &str) -> Option<f64> {
        self.fields.iter().find(|f| f.0 == name).map(|f| f.1)
    }

    /// Prints the result: the C tools' `mean throughput` line when there is
    /// a rate, then every field, or one JSON object with `json`.
    pub fn print(&self, json: bool) {
        // Written, not println!ed: a reader that went away (`| head -1`)
        // must not turn a finished benchmark into a panic.
        let _ = std::io::stdout()
            .lock()
            .write_all(self.render(json).as_bytes());
    }

    fn render(&self, json: bool) -> String {
        let mut s = String::new();
        if json {
            let _ = write!(s, "{{\"tool\":\"{}\"", self.tool);
            for (k, v) in &self.fields {
                let _ = write!(s, ",\"{k}\":{v}");
            }
            s.push_str("}\n");
            return s;
        }
        if let Some(rate) = self.get("msg_per_s") {
            let _ = writeln!(s, "mean throughput: {rate:.0} [msg/s]");
        }
        let rest: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={}", trim(*v)))
            .collect();
        let _ = writeln!(s, "{}: {}", self.tool, rest.join(" "));
        s
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Prints progress to stderr at most once a second.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    total: u64,
    last: Instant,
}

impl Progress {
    /// Progress of `total` units of `what`.
    pub fn new(what: &'static str, total: u64) -> Self {
        Progress {
            what,
            total,
            last: Instant::now(),
        }
    }

    /// Reports `done` if a second has passed since the last report.
    pub fn tick(&mut self, done: u64) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            eprintln!("  .. {done} of {} {}", self.total, self.what);
        }
    }
}
