//! dafka_perf_metrics: how long a store's `/metrics` takes to answer when
//! it holds many partitions.

use clap::Parser;
use dafka::{Bytes, Config, NodeId, Record, Store};
use dafka_cli::metrics::{node_registry, StoreCollector};
use dafka_cli::perf::Report;
use dafka_cli::{main_with, parse};
use dafka_metrics::MetricsServer;
use dafka_store::{RocksStorage, Storage, SyncPolicy, WalRecovery};
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Write one record to each of PARTITIONS partitions of a new store
/// database, start a store on it (no tower needed) with its metrics
/// endpoint, wait until it reports every partition, and time SCRAPES
/// `GET /metrics` over loopback.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_metrics", version)]
struct Cli {
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Scrapes to time
    #[arg(long, default_value_t = 50)]
    scrapes: u32,
    /// Partitions the store holds
    #[arg(allow_negative_numbers = true)]
    partitions: u32,
}

fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: perf\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_metrics");
    main_with("dafka_perf_metrics", || {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("db");
        {
            let mut s = RocksStorage::open(&dir, SyncPolicy::Never, WalRecovery::PointInTime)?;
            let batch: Vec<Record> = (0..cli.partitions)
                .map(|i| {
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&i.to_be_bytes());
                    Record {
                        topic: format!("topic-{}", i % 100).into(),
                        partition: NodeId(id),
                        offset: 0,
                        content: Bytes::from_static(b"x"),
                        ..Default::default()
                    }
                })
                .collect();
            s.write(&batch)?;
            s.flush()?;
        }
        let mut cfg = Config::default();
        cfg.store.db = dir;
        let store = Store::start(&cfg.store, &cfg.beacon)?;
        let seen = store.observed();
        let mut registry = node_registry(store.stats());
        registry.register_collector(Box::new(StoreCollector::new(seen.clone())));
        let server =
            MetricsServer::start("127.0.0.1:0", registry, Box::new(move || seen.health()))?;
        let addr = server.addr().to_string();
        let want = cli.partitions as usize;
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut bytes = 0;
        for _ in 0..cli.scrapes {
            let t0 = Instant::now();
            let text = scrape(&addr)?;
            hist.saturating_record(t0.elapsed().as_micros() as u64);
            let heads = text
                .lines()
                .filter(|l| l.starts_with("dafka_store_partition_head{"))
                .count();
            anyhow::ensure!(
                heads == want,
                "the store reported {heads} of {want} partitions"
            );
            bytes = text.len();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Report::new("dafka_perf_metrics")
            .field("partitions", f64::from(cli.partitions))
            .field("scrapes", f64::from(cli.scrapes))
            .field("body_bytes", bytes as f64)
            .field("p50_ms", ms(hist.value_at_quantile(0.5)))
            .field("max_ms", ms(hist.max()))
            .print(cli.json);
        drop(server);
        store.stop();
        Ok(ExitCode::SUCCESS)
    })
}
