//! dafka_towerd: the discovery tower. Forwards beacons, never records.

use clap::Parser;
use dafka::{Section, Tower, TowerConfig};
use dafka_cli::{
    init_daemon_logging, interrupted, load_config, main_with, metrics, parse, with_default,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a Dafka tower: nodes find each other through it; no record passes through it.
#[derive(Parser, Debug)]
#[command(name = "dafka_towerd", version)]
struct Cli {
    #[arg(long = "sub", value_name = "ENDPOINT",
        help = with_default("Where nodes publish their beacons (bind)", TowerConfig::default().sub_address))]
    sub: Option<String>,
    #[arg(long = "pub", value_name = "ENDPOINT",
        help = with_default("Where nodes hear about each other (bind)", TowerConfig::default().pub_address))]
    pub_: Option<String>,
    /// A TOML config file ([tower] section). Every key can also be set as
    /// DAFKA_TOWER__<KEY>; the README lists them all. Flags win over both
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log what the tower does
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Serve Prometheus metrics (/metrics) and a health check (/healthz)
    /// on HOST:PORT, or off
    #[arg(long, value_name = "HOST:PORT|off", default_value = dafka_cli::metrics::TOWER_METRICS,
        value_parser = dafka_cli::metrics::parse_metrics)]
    metrics: metrics::MetricsAddr,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_towerd");
    init_daemon_logging(cli.verbose);
    main_with("dafka_towerd", || {
        let mut cfg = load_config("dafka_towerd", cli.config.as_deref(), &[Section::Tower])?;
        if let Some(s) = cli.sub {
            cfg.tower.sub_address = s;
        }
        if let Some(p) = cli.pub_ {
            cfg.tower.pub_address = p;
        }
        cfg.validate()?;
        let stop = interrupted();
        let tower = Tower::start(&cfg.tower)?;
        let (input, output) = tower.endpoints();
        eprintln!("dafka_towerd: beacons in on {input}, out on {output}");
        let _metrics = match &cli.metrics.0 {
            Some(addr) => {
                let registry = metrics::node_registry(tower.stats());
                Some(metrics::serve(
                    "dafka_towerd",
                    addr,
                    registry,
                    Box::new(|| Ok(())),
                )?)
            }
            None => None,
        };
        let _ = stop.recv();
        tower.stop();
        Ok(ExitCode::SUCCESS)
    })
}
