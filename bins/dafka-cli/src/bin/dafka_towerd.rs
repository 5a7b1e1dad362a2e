//! dafka_towerd: the discovery tower. Forwards beacons, never records.

use clap::Parser;
use dafka::{Section, Tower};
use dafka_cli::{init_daemon_logging, interrupted, load_config, main_with, parse};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a Dafka tower: nodes find each other through it; no record passes through it.
#[derive(Parser, Debug)]
#[command(name = "dafka_towerd", version)]
struct Cli {
    /// Where nodes publish their beacons (bind) [default: tcp://*:5556]
    #[arg(long = "sub", value_name = "ENDPOINT")]
    sub: Option<String>,
    /// Where nodes hear about each other (bind) [default: tcp://*:5557]
    #[arg(long = "pub", value_name = "ENDPOINT")]
    pub_: Option<String>,
    /// A TOML config file ([tower] section). Every key can also be set as
    /// DAFKA_TOWER__<KEY>; the README lists them all. Flags win over both
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log what the tower does
    #[arg(short = 'v', long)]
    verbose: bool,
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
        let _ = stop.recv();
        tower.stop();
        Ok(ExitCode::SUCCESS)
    })
}
