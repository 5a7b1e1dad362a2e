//! dafka_perf_consumer: consumer receive rate, live or replaying a store.

use clap::Parser;
use dafka::{Consumer, OffsetReset};
use dafka_cli::perf::{Progress, Report};
use dafka_cli::{init_logging, main_with, parse, NodeArgs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Receive COUNT records of a topic and time them: the clock starts at the
/// first record and stops at the COUNT-th. Prints `mean throughput: N [msg/s]`.
///
/// Records are read from offset 0 of each partition (from the stores when
/// they are older than the consumer): start it before the producer to time
/// the live path, after to time a replay.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_consumer", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// The topic to read
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Give up after this long without a record, in ms
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    timeout_ms: u64,
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Records to receive (at least 2)
    count: u64,
    /// Bytes per record (checked)
    size: usize,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_consumer");
    init_logging(cli.node.verbose);
    main_with("dafka_perf_consumer", || {
        let mut cfg = cli.node.config()?;
        cfg.consumer.offset_reset = OffsetReset::Earliest;
        cfg.validate()?;
        anyhow::ensure!(cli.count >= 2, "COUNT must be at least 2");
        let timeout = Duration::from_millis(cli.timeout_ms);
        let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
        consumer.subscribe(&cli.topic)?;
        let first = consumer
            .recv_timeout(timeout)
            .ok_or_else(|| anyhow::anyhow!("no record within {timeout:?}"))?;
        let start = Instant::now();
        let mut got = 1;
        let mut wrong = u64::from(first.content.len() != cli.size);
        let mut progress = Progress::new("records received", cli.count);
        while got < cli.count {
            let Some(r) = consumer.recv_timeout(timeout) else {
                anyhow::bail!(
                    "{got} of {} records, then nothing for {timeout:?}",
                    cli.count
                );
            };
            wrong += u64::from(r.content.len() != cli.size);
            got += 1;
            if got % 4096 == 0 {
                progress.tick(got);
            }
        }
        let took = start.elapsed();
        anyhow::ensure!(wrong == 0, "{wrong} records were not {} bytes", cli.size);
        Report::throughput("perf_consumer", cli.count - 1, cli.size, took).print(cli.json);
        consumer.close();
        Ok(ExitCode::SUCCESS)
    })
}
