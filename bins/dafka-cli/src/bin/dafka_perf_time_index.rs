//! dafka_perf_time_index: how long a store takes to find where a time
//! falls in a long partition (what `--from-time` asks), straight on the
//! store's RocksDB storage.

use clap::Parser;
use dafka::{Bytes, NodeId, Record};
use dafka_cli::perf::{Progress, Report};
use dafka_cli::{main_with, parse};
use dafka_store::{ReadLimit, RocksStorage, Storage, SyncPolicy, WalRecovery};
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Write COUNT records of 100 bytes to one partition of a new store
/// database (in batches of 2,000, timestamps 1 ms apart every 1,000
/// records: a producer at a million records a second), reopen it, and
/// time QUERIES lookups of random times, checking each answer against the
/// records around it.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_time_index", version)]
struct Cli {
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Lookups to time
    #[arg(long, default_value_t = 1000)]
    queries: u32,
    /// Database directory (default: a temporary one, deleted afterwards)
    #[arg(long, value_name = "DIR")]
    db: Option<std::path::PathBuf>,
    /// Records in the partition
    #[arg(allow_negative_numbers = true)]
    count: u64,
}

const TOPIC: &str = "perf-times";
const PARTITION: NodeId = NodeId([7; 16]);
const BATCH: u64 = 2000;
const PER_MS: u64 = 1000;
/// 2026-11-30T00:00:00Z.
const START_MS: u64 = 1_795_996_800_000;

fn stamp(offset: u64) -> u64 {
    START_MS + offset / PER_MS
}

fn record(offset: u64, content: &Bytes) -> Record {
    Record {
        topic: TOPIC.into(),
        partition: PARTITION,
        offset,
        timestamp_ms: i64::try_from(stamp(offset)).ok(),
        content: content.clone(),
        ..Default::default()
    }
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_time_index");
    main_with("dafka_perf_time_index", || {
        anyhow::ensure!(cli.count >= 1, "COUNT must be at least 1");
        let tmp = tempfile::tempdir()?;
        let dir = cli.db.clone().unwrap_or_else(|| tmp.path().join("db"));
        let open = || RocksStorage::open(&dir, SyncPolicy::Never, WalRecovery::PointInTime);
        let content = Bytes::from(vec![b'x'; 100]);
        let began = Instant::now();
        {
            let mut s = open()?;
            let mut progress = Progress::new("records written", cli.count);
            let mut batch = Vec::with_capacity(BATCH as usize);
            for start in (0..cli.count).step_by(BATCH as usize) {
                batch.clear();
                let end = (start + BATCH).min(cli.count);
                batch.extend((start..end).map(|o| record(o, &content)));
                s.write(&batch)?;
                progress.tick(end);
            }
            s.flush()?;
        }
        let wrote = began.elapsed();
        let s = open()?;
        let last = stamp(cli.count - 1);
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut first = Duration::ZERO;
        for q in 0..cli.queries {
            // xorshift: reproducible times spread over the partition.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let time = START_MS + rng % (last - START_MS + 2);
            let t0 = Instant::now();
            let found = s.offsets_at(TOPIC, time)?;
            let took = t0.elapsed();
            if q == 0 {
                first = took;
            }
            hist.saturating_record(took.as_micros() as u64);
            let offset = found.first().map(|p| p.offset);
            check(&s, time, offset, cli.count)?;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Report::new("dafka_perf_time_index")
            .field("count", cli.count as f64)
            .field("write_msg_per_s", cli.count as f64 / wrote.as_secs_f64())
            .field("queries", f64::from(cli.queries))
            .field("first_ms", first.as_secs_f64() * 1000.0)
            .field("p50_ms", ms(hist.value_at_quantile(0.5)))
            .field("p99_ms", ms(hist.value_at_quantile(0.99)))
            .field("max_ms", ms(hist.max()))
            .print(cli.json);
        Ok(ExitCode::SUCCESS)
    })
}

/// An answer is right when its record is at or after the time and the one
/// before it is not (timestamps only grow here); past the end, when the
/// last record is before the time.
fn check(s: &RocksStorage, time: u64, offset: Option<u64>, count: u64) -> anyhow::Result<()> {
    let offset = offset.ok_or_else(|| anyhow::anyhow!("no answer for {time}"))?;
    anyhow::ensure!(offset <= count, "answer {offset} past the end {count}");
    let ts_at = |o: u64| -> anyhow::Result<u64> {
        let r = s.read(TOPIC, &PARTITION, o, ReadLimit::records(1))?;
        let ts = r.first().and_then(|r| r.timestamp_ms);
        Ok(ts.and_then(|t| u64::try_from(t).ok()).unwrap_or(0))
    };
    if offset < count {
        anyhow::ensure!(ts_at(offset)? >= time, "{offset} is before {time}");
    }
    if offset > 0 {
        anyhow::ensure!(
            ts_at(offset - 1)? < time,
            "{} is not before {time}",
            offset - 1
        );
    }
    Ok(())
}
