//! dafka_console_producer: one record per line of standard input.

use clap::Parser;
use crossbeam_channel::select;
use dafka::Producer;
use dafka_cli::{init_logging, interrupted, main_with, parse, NodeArgs};
use std::io::BufRead;
use std::process::ExitCode;

/// Publish each line of standard input as a record of TOPIC.
///
/// On end of input or Ctrl-C it waits for the store(s) to acknowledge every
/// record (up to --timeout-ms) and exits 0 only if they did.
#[derive(Parser, Debug)]
#[command(name = "dafka_console_producer", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// Stores that must acknowledge a record before it counts as delivered
    #[arg(long, value_name = "N")]
    min_acks: Option<usize>,
    /// How long to wait for acknowledgements when closing, in ms [default: 30000]
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Spool records here until ACKed; a restart with the same directory
    /// continues the same partition and re-offers what was not ACKed
    #[arg(long, value_name = "DIR")]
    state_dir: Option<String>,
    /// The partition (a UUID) to produce to; needs --state-dir
    #[arg(long, value_name = "UUID")]
    id: Option<String>,
    /// The topic to publish to
    topic: String,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_console_producer");
    init_logging(cli.node.verbose);
    main_with("dafka_console_producer", || {
        let mut cfg = cli.node.config()?;
        if let Some(n) = cli.min_acks {
            cfg.producer.min_acks = n;
        }
        if let Some(t) = cli.timeout_ms {
            cfg.producer.close_timeout = t;
        }
        if let Some(d) = cli.state_dir.clone() {
            cfg.producer.state_dir = d;
        }
        if let Some(id) = cli.id.clone() {
            cfg.producer.id = id;
        }
        cfg.validate()?;
        let stop = interrupted();
        let producer = Producer::new(&cli.topic, &cfg.producer, &cfg.beacon)?;
        let lines = read_lines();
        loop {
            select! {
                recv(lines) -> line => match line {
                    Ok(Ok(l)) => { producer.publish(l)?; }
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => break, // end of input
                },
                recv(stop) -> _ => break,
            }
        }
        let report = producer.close();
        if report.unacked > 0 {
            eprintln!(
                "dafka_console_producer: {} of {} records not acknowledged by {} store(s) within {} ms",
                report.unacked, report.published, cfg.producer.min_acks, cfg.producer.close_timeout
            );
            return Ok(ExitCode::from(3));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Standard input, line by line, on its own thread so Ctrl-C is not stuck
/// behind a blocking read.
fn read_lines() -> crossbeam_channel::Receiver<std::io::Result<String>> {
    let (tx, rx) = crossbeam_channel::bounded(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
