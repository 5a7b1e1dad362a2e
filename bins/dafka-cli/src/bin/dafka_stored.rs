//! dafka_stored: a store. Persists every partition in RocksDB.

use clap::Parser;
use dafka::Section;
use dafka::{Fsync, Store, StoreConfig, WalRecoveryMode};
use dafka_cli::{
    init_daemon_logging, interrupted, main_with, metrics, parse, with_default, NodeArgs,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a Dafka store: keeps every partition it hears of in RocksDB and serves it to consumers.
#[derive(Parser, Debug)]
#[command(name = "dafka_stored", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    #[arg(long, value_name = "DIR",
        help = with_default("The database directory", StoreConfig::default().db.display()))]
    db: Option<PathBuf>,
    /// When writes reach the disk: always (before every ACK), interval (at
    /// most every --fsync-interval ms) or never
    #[arg(long, value_name = "POLICY", value_parser = ["always", "interval", "never"])]
    fsync: Option<String>,
    #[arg(allow_negative_numbers = true, long, value_name = "MS",
        help = with_default("Milliseconds between syncs under --fsync interval",
            StoreConfig::default().fsync_interval))]
    fsync_interval: Option<u64>,
    /// At start-up, when the write-ahead log ends in damage: point-in-time
    /// (keep what precedes it, log what was dropped) or refuse (exit)
    #[arg(long, value_name = "MODE", value_parser = ["point-in-time", "refuse"])]
    wal_recovery: Option<String>,
    /// Give this store a new id instead of the one kept in its database:
    /// for a copy of another store's directory, which must not count as
    /// that store when producers count ACKs
    #[arg(long)]
    new_id: bool,
    /// Serve Prometheus metrics (/metrics) and a health check (/healthz,
    /// 503 while writes fail) on HOST:PORT, or off
    #[arg(long, value_name = "HOST:PORT|off", default_value = dafka_cli::metrics::STORE_METRICS,
        value_parser = dafka_cli::metrics::parse_metrics)]
    metrics: metrics::MetricsAddr,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_stored");
    init_daemon_logging(cli.node.verbose);
    main_with("dafka_stored", || {
        let mut cfg = cli
            .node
            .config("dafka_stored", &[Section::Beacon, Section::Store])?;
        if let Some(db) = cli.db {
            cfg.store.db = db;
        }
        if let Some(f) = cli.fsync.as_deref() {
            cfg.store.fsync = match f {
                "never" => Fsync::Never,
                "interval" => Fsync::Interval,
                _ => Fsync::Always,
            };
        }
        if let Some(ms) = cli.fsync_interval {
            cfg.store.fsync_interval = ms;
        }
        if let Some(m) = cli.wal_recovery.as_deref() {
            cfg.store.wal_recovery = match m {
                "refuse" => WalRecoveryMode::Refuse,
                _ => WalRecoveryMode::PointInTime,
            };
        }
        cfg.validate()?;
        let stop = interrupted();
        let store = Store::start_with(&cfg.store, &cfg.beacon, cli.new_id)?;
        eprintln!(
            "dafka_stored: store {} serving {}",
            store.id(),
            cfg.store.db.display()
        );
        let _metrics = match &cli.metrics.0 {
            Some(addr) => {
                let seen = store.observed();
                let mut registry = metrics::node_registry(store.stats());
                registry.register_collector(Box::new(metrics::StoreCollector::new(seen.clone())));
                let health = Box::new(move || seen.health());
                Some(metrics::serve("dafka_stored", addr, registry, health)?)
            }
            None => None,
        };
        let _ = stop.recv();
        store.stop();
        Ok(ExitCode::SUCCESS)
    })
}
