//! dafka_perf_zmq: raw ZeroMQ PUB/SUB over loopback, the ceiling to compare
//! Dafka's numbers with.

use clap::Parser;
use dafka_cli::perf::Report;
use dafka_cli::{main_with, parse};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Send COUNT messages of SIZE bytes from a PUB socket to a SUB socket over
/// TCP loopback (one thread each, one frame per message, no drops) and time
/// them at the subscriber: what the network layer alone can do.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_zmq", version)]
struct Cli {
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
    /// Frames per message: 1 like the C baseline, 3 like a Dafka RECORD
    /// (a short key, a header, the content)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    frames: u8,
    /// Messages to send
    #[arg(allow_negative_numbers = true)]
    count: u64,
    /// Bytes per message
    #[arg(allow_negative_numbers = true)]
    size: usize,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_zmq");
    main_with("dafka_perf_zmq", || {
        let ctx = zmq::Context::new();
        let publisher = ctx.socket(zmq::XPUB)?;
        publisher.set_sndhwm(0)?;
        publisher.bind("tcp://127.0.0.1:*")?;
        let endpoint = publisher
            .get_last_endpoint()?
            .map_err(|_| anyhow::anyhow!("endpoint is not UTF-8"))?;
        let count = cli.count;
        let sub_ctx = zmq::Context::new();
        let subscriber = std::thread::spawn(move || -> anyhow::Result<Duration> {
            let s = sub_ctx.socket(zmq::SUB)?;
            s.set_rcvhwm(0)?;
            s.connect(&endpoint)?;
            s.set_subscribe(b"")?;
            let mut msg = zmq::Message::new();
            let mut recv_one = || -> anyhow::Result<()> {
                s.recv(&mut msg, 0)?;
                while s.get_rcvmore()? {
                    s.recv(&mut msg, 0)?;
                }
                Ok(())
            };
            recv_one()?;
            let start = Instant::now();
            for _ in 1..count {
                recv_one()?;
            }
            Ok(start.elapsed())
        });
        // Wait for the subscription, so nothing is sent into the void.
        publisher.recv_bytes(0)?;
        let payload = vec![b'x'; cli.size];
        let (key, header) = (&b"Rperf\0"[..], &[0u8; 40][..]);
        for _ in 0..cli.count {
            if cli.frames >= 3 {
                publisher.send(key, zmq::SNDMORE)?;
            }
            if cli.frames >= 2 {
                publisher.send(header, zmq::SNDMORE)?;
            }
            publisher.send(&payload[..], 0)?;
        }
        let took = subscriber
            .join()
            .map_err(|_| anyhow::anyhow!("subscriber panicked"))??;
        Report::throughput("perf_zmq", cli.count - 1, cli.size, took).print(cli.json);
        Ok(ExitCode::SUCCESS)
    })
}
