//! dafka_perf_store: producer throughput until every record is ACKed.

use clap::Parser;
use dafka::Section;
use dafka::{Producer, ProducerRecord};
use dafka_cli::perf::{Progress, Report, ThroughputArgs};
use dafka_cli::{init_logging, main_with, parse};
use std::process::ExitCode;
use std::time::Instant;

/// Publish COUNT records of SIZE bytes and time them until the store(s) have
/// ACKed every one.
///
/// The clock starts when record 0 is ACKed (so discovery is not timed) and
/// stops when the last one is. Prints `mean throughput: N [msg/s]`.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_store", version)]
struct Cli {
    #[command(flatten)]
    run: ThroughputArgs,
    /// Stores that must ACK each record
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    min_acks: Option<usize>,
    /// Give every record a key of this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    key_bytes: usize,
    /// Give every record this many headers (names h0, h1, ...; 8-byte values)
    #[arg(long, value_name = "N", default_value_t = 0)]
    headers: usize,
    /// Before the first record, wait until this many stores and consumers
    /// are connected, so that a consumer started first reads the run live
    /// instead of fetching what was sent before it connected (the C tool
    /// pauses 1 s for the same reason)
    #[arg(long, value_name = "N", default_value_t = 0)]
    peers: usize,
}

/// The record every publish sends: content of `size` bytes, and the key and
/// headers asked for (none by default: `publish` of the content alone).
fn record(cli: &Cli) -> ProducerRecord {
    let mut r = ProducerRecord::new(vec![b'x'; cli.run.size]);
    if cli.key_bytes > 0 {
        r = r.key(vec![b'k'; cli.key_bytes]);
    }
    for i in 0..cli.headers {
        r = r.header(format!("h{i}"), vec![b'v'; 8]);
    }
    r
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_store");
    init_logging(cli.run.node.verbose);
    main_with("dafka_perf_store", || {
        let mut cfg = cli
            .run
            .node
            .config("dafka_perf_store", &[Section::Beacon, Section::Producer])?;
        if let Some(n) = cli.min_acks {
            cfg.producer.min_acks = n;
        }
        cfg.validate()?;
        anyhow::ensure!(cli.run.count >= 2, "COUNT must be at least 2");
        let timeout = cli.run.timeout();
        let producer = Producer::new(&cli.run.topic, &cfg.producer, &cfg.beacon)?;
        let payload = record(&cli);
        anyhow::ensure!(
            producer.wait_for_peers(cli.peers, timeout),
            "fewer than {} stores and consumers connected within {timeout:?}",
            cli.peers
        );
        producer.send(payload.clone())?;
        anyhow::ensure!(
            producer.flush(timeout),
            "record 0 not ACKed within {timeout:?}: is a store running?"
        );
        let start = Instant::now();
        let mut progress = Progress::new("records published", cli.run.count - 1);
        for i in 1..cli.run.count {
            producer.send(payload.clone())?;
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
        Report::throughput("perf_store", cli.run.count - 1, cli.run.size, took).print(cli.run.json);
        producer.close();
        Ok(ExitCode::SUCCESS)
    })
}
