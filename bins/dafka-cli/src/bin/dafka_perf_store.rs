//! dafka_perf_store: producer throughput until every record is ACKed.

use bytes::Bytes;
use clap::Parser;
use dafka::Producer;
use dafka_cli::perf::{Progress, Report};
use dafka_cli::{init_logging, main_with, parse, NodeArgs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Publish COUNT records of SIZE bytes and time them until the store(s) have
/// ACKed every one.
///
/// The clock starts when record 0 is ACKed (so discovery is not timed) and
/// stops when the last one is. Prints `mean throughput: N [msg/s]`.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_store", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// The topic to publish to
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Stores that must ACK each record
    #[arg(long, value_name = "N")]
    min_acks: Option<usize>,
    /// Give up after this long without progress, in ms
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    timeout_ms: u64,
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Records to publish (at least 2)
    count: u64,
    /// Bytes per record
    size: usize,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_store");
    init_logging(cli.node.verbose);
    main_with("dafka_perf_store", || {
        let mut cfg = cli.node.config()?;
        if let Some(n) = cli.min_acks {
            cfg.producer.min_acks = n;
        }
        cfg.validate()?;
        anyhow::ensure!(cli.count >= 2, "COUNT must be at least 2");
        let timeout = Duration::from_millis(cli.timeout_ms);
        let producer = Producer::new(&cli.topic, &cfg.producer, &cfg.beacon)?;
        let payload = Bytes::from(vec![b'x'; cli.size]);
        producer.publish(payload.clone())?;
        anyhow::ensure!(
            producer.flush(timeout),
            "record 0 not ACKed within {timeout:?}: is a store running?"
        );
        let start = Instant::now();
        let mut progress = Progress::new("records published", cli.count - 1);
        for i in 1..cli.count {
            producer.publish(payload.clone())?;
            if i % 4096 == 0 {
                progress.tick(i);
            }
        }
        let mut acked = producer.acked();
        while !producer.flush(timeout) {
            let now = producer.acked();
            anyhow::ensure!(now > acked, "{} records not ACKed", producer.unacked());
            acked = now;
        }
        let took = start.elapsed();
        Report::throughput("perf_store", cli.count - 1, cli.size, took).print(cli.json);
        producer.close();
        Ok(ExitCode::SUCCESS)
    })
}
