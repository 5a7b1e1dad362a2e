//! dafka_perf_zmq: raw ZeroMQ PUB/SUB over loopback, the ceiling (and, with
//! `--rate`, the latency floor) to compare Dafka's numbers with.

use clap::Parser;
use dafka_cli::perf::Report;
use dafka_cli::{main_with, parse};
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::sync::mpsc;
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
    /// Send at this many messages per second and report latency
    /// percentiles instead of throughput (what dafka_perf_latency measures,
    /// without Dafka)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Messages to send
    #[arg(allow_negative_numbers = true)]
    count: u64,
    /// Bytes per message (at least 8 with --rate)
    #[arg(allow_negative_numbers = true)]
    size: usize,
}

/// What the subscriber measured.
enum Measured {
    Took(Duration),
    Latency(Box<Histogram<u64>>),
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_zmq");
    main_with("dafka_perf_zmq", || {
        let ctx = zmq::Context::new();
        let publisher = ctx.socket(zmq::XPUB)?;
        publisher.set_sndhwm(0)?;
        // The run ends when every message arrived; closing never waits.
        publisher.set_linger(0)?;
        publisher.bind("tcp://127.0.0.1:*")?;
        let endpoint = publisher
            .get_last_endpoint()?
            .map_err(|_| anyhow::anyhow!("endpoint is not UTF-8"))?;
        let (count, rate) = (cli.count, cli.rate);
        let period = rate.map(|r| Duration::from_secs_f64(1.0 / r as f64));
        // The paced run's start, told to the subscriber once it is known.
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        let sub_ctx = zmq::Context::new();
        let subscriber = std::thread::spawn(move || -> anyhow::Result<Measured> {
            let s = sub_ctx.socket(zmq::SUB)?;
            s.set_rcvhwm(0)?;
            s.connect(&endpoint)?;
            s.set_subscribe(b"")?;
            let mut msg = zmq::Message::new();
            let mut recv_one = || -> anyhow::Result<u64> {
                s.recv(&mut msg, 0)?;
                while s.get_rcvmore()? {
                    s.recv(&mut msg, 0)?;
                }
                let index = msg.get(..8).and_then(|b| b.try_into().ok());
                Ok(index.map_or(0, u64::from_le_bytes))
            };
            if let Some(period) = period {
                let t0 = start_rx.recv()?;
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                for _ in 0..count {
                    let i = recv_one()?;
                    let due = t0 + period * (i as u32);
                    hist.saturating_record(due.elapsed().as_micros() as u64);
                }
                return Ok(Measured::Latency(Box::new(hist)));
            }
            recv_one()?;
            let start = Instant::now();
            for _ in 1..count {
                recv_one()?;
            }
            Ok(Measured::Took(start.elapsed()))
        });
        // Wait for the subscription, so nothing is sent into the void.
        publisher.recv_bytes(0)?;
        let mut payload = vec![b'x'; cli.size];
        let (key, header) = (&b"Rperf\0"[..], &[0u8; 40][..]);
        let t0 = Instant::now() + Duration::from_millis(10);
        let _ = start_tx.send(t0);
        for i in 0..cli.count {
            if let Some(period) = period {
                pace(t0 + period * (i as u32));
                if let Some(head) = payload.get_mut(..8) {
                    head.copy_from_slice(&i.to_le_bytes());
                }
            }
            if cli.frames >= 3 {
                publisher.send(key, zmq::SNDMORE)?;
            }
            if cli.frames >= 2 {
                publisher.send(header, zmq::SNDMORE)?;
            }
            publisher.send(&payload[..], 0)?;
        }
        let measured = subscriber
            .join()
            .map_err(|_| anyhow::anyhow!("subscriber panicked"))??;
        let report = match measured {
            Measured::Took(took) => Report::throughput("perf_zmq", cli.count - 1, cli.size, took),
            Measured::Latency(hist) => Report::new("perf_zmq_latency")
                .field("rate", rate.unwrap_or(0) as f64)
                .field("count", cli.count as f64)
                .field("size", cli.size as f64)
                .field("p50_us", hist.value_at_quantile(0.5) as f64)
                .field("p99_us", hist.value_at_quantile(0.99) as f64)
                .field("p999_us", hist.value_at_quantile(0.999) as f64)
                .field("max_us", hist.max() as f64),
        };
        report.print(cli.json);
        Ok(ExitCode::SUCCESS)
    })
}

/// Sleeps until `due` (if it is still ahead).
fn pace(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}
