//! dafka_perf_latency: end-to-end latency at a fixed rate, HDR percentiles.

use bytes::Bytes;
use clap::Parser;
use dafka::Section;
use dafka::{Consumer, OffsetReset, Producer};
use dafka_cli::perf::Report;
use dafka_cli::{init_logging, main_with, parse, NodeArgs};
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Publish records at a fixed rate and measure how long each takes to reach
/// a live consumer (both in this process, talking over the mesh).
///
/// Latency is measured from when each record was due to be sent, not from
/// when it was sent, so a stall in the sender counts against every record it
/// delays (corrected for coordinated omission). The first `--lead-in`
/// milliseconds of paced records are not timed: the run measures the steady
/// state at RATE, not the wake-up of idle threads.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_latency", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// The topic to use
    #[arg(long, default_value = "latency")]
    topic: String,
    /// Records per second
    #[arg(allow_negative_numbers = true, long, default_value_t = 10_000)]
    rate: u64,
    /// Milliseconds of paced, untimed records before the timed ones
    #[arg(long, default_value_t = 500)]
    lead_in: u64,
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Records to time
    #[arg(allow_negative_numbers = true)]
    count: u64,
    /// Bytes per record (at least 8)
    #[arg(allow_negative_numbers = true)]
    size: usize,
}

/// Content of warm-up records: not timed.
const WARMUP: u64 = u64::MAX;

fn payload(i: u64, size: usize) -> Bytes {
    let mut v = vec![0u8; size.max(8)];
    v[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(v)
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_latency");
    init_logging(cli.node.verbose);
    main_with("dafka_perf_latency", || {
        let mut cfg = cli.node.config(
            "dafka_perf_latency",
            &[Section::Beacon, Section::Producer, Section::Consumer],
        )?;
        cfg.consumer.offset_reset = OffsetReset::Latest;
        cfg.validate()?;
        anyhow::ensure!(
            cli.rate > 0 && cli.count > 0,
            "RATE and COUNT must be positive"
        );
        let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
        consumer.subscribe(&cli.topic)?;
        let producer = Producer::new(&cli.topic, &cfg.producer, &cfg.beacon)?;
        warm_up(&producer, &consumer, cli.size)?;

        // Only this run's partition is timed (the topic may hold others).
        let mine = producer.partition();
        let period = Duration::from_secs_f64(1.0 / cli.rate as f64);
        let t0 = Instant::now() + Duration::from_millis(10);
        let (count, size) = (cli.count, cli.size);
        // Records numbered below `first` are the lead-in.
        let first = cli.lead_in.saturating_mul(cli.rate) / 1000;
        let sender = std::thread::spawn(move || -> anyhow::Result<(Producer, Histogram<u64>)> {
            // How late each publish started: the sender's own share of the
            // latency (sleep overshoot, scheduling), not Dafka's.
            let mut late = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            for i in 0..first + count {
                let due = t0 + period * (i as u32);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if i >= first {
                    let started = Instant::now().saturating_duration_since(due);
                    late.saturating_record(started.as_micros() as u64);
                }
                producer.publish(payload(i, size))?;
            }
            Ok((producer, late))
        });
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut got = 0;
        while got < cli.count {
            let r = consumer
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| anyhow::anyhow!("{got} of {} records arrived", cli.count))?;
            let i = r.content.get(..8).map_or(WARMUP, |b| {
                u64::from_le_bytes(b.try_into().unwrap_or([0xFF; 8]))
            });
            if i == WARMUP || i < first || r.partition != mine {
                continue;
            }
            let due = t0 + period * (i as u32);
            hist.saturating_record(Instant::now().saturating_duration_since(due).as_micros() as u64);
            got += 1;
        }
        let (producer, late) = sender
            .join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))??;
        Report::new("perf_latency")
            .field("rate", cli.rate as f64)
            .field("count", cli.count as f64)
            .field("size", cli.size as f64)
            .field("p50_us", hist.value_at_quantile(0.5) as f64)
            .field("p99_us", hist.value_at_quantile(0.99) as f64)
            .field("p999_us", hist.value_at_quantile(0.999) as f64)
            .field("max_us", hist.max() as f64)
            .field("send_late_p99_us", late.value_at_quantile(0.99) as f64)
            .print(cli.json);
        producer.close();
        consumer.close();
        Ok(ExitCode::SUCCESS)
    })
}

/// Publishes warm-up records until the consumer receives one: both are
/// connected then, and discovery is not timed.
fn warm_up(producer: &Producer, consumer: &Consumer, size: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        producer.publish(payload(WARMUP, size))?;
        if consumer.recv_timeout(Duration::from_millis(50)).is_ok() {
            // Drain what else of the warm-up is on its way.
            while consumer.recv_timeout(Duration::from_millis(100)).is_ok() {}
            return Ok(());
        }
    }
    anyhow::bail!("the consumer never received a record: is a tower running?")
}
