//! dafka_perf_consumer: consumer receive rate, live or replaying a store.

use clap::Parser;
use dafka::Section;
use dafka::{Consumer, NodeStats, OffsetReset};
use dafka_cli::perf::{Progress, Report, ThroughputArgs};
use dafka_cli::{init_logging, main_with, parse};
use std::process::ExitCode;
use std::time::Instant;

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
    run: ThroughputArgs,
    /// Read under this consumer name, auto-committing each record as the
    /// next is taken (what committing costs)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_consumer");
    init_logging(cli.run.node.verbose);
    main_with("dafka_perf_consumer", || {
        let mut cfg = cli
            .run
            .node
            .config("dafka_perf_consumer", &[Section::Beacon, Section::Consumer])?;
        cfg.consumer.offset_reset = OffsetReset::Earliest;
        if let Some(n) = &cli.name {
            cfg.consumer.name = n.clone();
        }
        cfg.validate()?;
        anyhow::ensure!(cli.run.count >= 2, "COUNT must be at least 2");
        let timeout = cli.run.timeout();
        let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
        consumer.subscribe(&cli.run.topic)?;
        let first = consumer
            .recv_timeout(timeout)
            .map_err(|_| anyhow::anyhow!("no record within {timeout:?}"))?;
        let start = Instant::now();
        let mut got = 1;
        let mut wrong = u64::from(first.content.len() != cli.run.size);
        let mut progress = Progress::new("records received", cli.run.count);
        while got < cli.run.count {
            let Ok(r) = consumer.recv_timeout(timeout) else {
                anyhow::bail!(
                    "{got} of {} records, then nothing for {timeout:?}",
                    cli.run.count
                );
            };
            wrong += u64::from(r.content.len() != cli.run.size);
            got += 1;
            if got % 4096 == 0 {
                progress.tick(got);
            }
        }
        let took = start.elapsed();
        anyhow::ensure!(
            wrong == 0,
            "{wrong} records were not {} bytes",
            cli.run.size
        );
        Report::throughput("perf_consumer", cli.run.count - 1, cli.run.size, took)
            .print(cli.run.json);
        // Records that came by FETCH rather than live: a gap was repaired
        // (ZeroMQ dropped what a full queue could not take).
        let stats = consumer.stats();
        let repaired = NodeStats::get(&stats.records_repaired);
        if repaired > 0 {
            eprintln!("dafka_perf_consumer: {repaired} records came by FETCH (gap repair)");
        }
        consumer.close();
        Ok(ExitCode::SUCCESS)
    })
}
