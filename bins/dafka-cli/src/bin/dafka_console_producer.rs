//! dafka_console_producer: one record per line of standard input.

use clap::Parser;
use crossbeam_channel::select;
use dafka::proto::limits::MAX_CONTENT_LEN;
use dafka::Section;
use dafka::{ProducerConfig, ProducerError, TopicProducer};
use dafka_cli::console::{parse_header, parse_property, LineFormat, Property};
use dafka_cli::{init_logging, interrupted, main_with, parse, with_default, NodeArgs, Silence};
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Publish each line of standard input as a record of TOPIC.
///
/// A line is every byte up to a newline, as is (no character set is
/// assumed; a carriage return stays). With `--property parse.key=true` a
/// line is KEY, the key separator (a tab unless `--property
/// key.separator=SEP`), then the content. `--header NAME=VALUE` puts a header
/// on every record. Every record carries the time it was read (ms since the
/// Unix epoch).
///
/// On end of input or Ctrl-C it waits for the store(s) to acknowledge every
/// record (up to --timeout-ms) and exits 0 only if they did, 3 if not. A
/// line over the 64 MiB record limit stops it (exit 1), and a line without
/// the key separator under parse.key (exit 2), nothing from that line on
/// published, unless --skip-bad-lines.
///
/// With --partitions N it owns N partitions of the topic: a line with a
/// key goes to the partition its key hashes to (one key's lines stay in
/// order), a line without one to the next partition in turn.
///
/// With --state-dir, records are spooled there until acknowledged and
/// survive a crash of the producer (kill -9 included); they survive a power
/// cut only with producer.spool_fsync = "always" or "interval" in the
/// config file (or DAFKA_PRODUCER__SPOOL_FSYNC).
#[derive(Parser, Debug)]
#[command(name = "dafka_console_producer", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// Stores that must acknowledge a record before it counts as delivered
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    min_acks: Option<usize>,
    #[arg(allow_negative_numbers = true, long, value_name = "MS",
        help = with_default("How long to wait for acknowledgements when closing, in ms",
            ProducerConfig::default().close_timeout))]
    timeout_ms: Option<u64>,
    /// Spool records here until ACKed; a restart with the same directory
    /// continues the same partition and re-offers what was not ACKed
    #[arg(long, value_name = "DIR")]
    state_dir: Option<String>,
    /// The partition (a UUID) to produce to; needs --state-dir. A new state
    /// directory asks the stores where the partition stands and continues
    /// after its last record
    #[arg(long, value_name = "UUID")]
    id: Option<String>,
    /// Skip (with a warning naming it) a line over the record size limit,
    /// or without the key separator under parse.key, instead of stopping
    /// there
    #[arg(long)]
    skip_bad_lines: bool,
    /// Serve Prometheus metrics (/metrics: records published, ACKed and
    /// waiting for ACKs, records and messages sent) and /healthz on
    /// HOST:PORT
    #[arg(long, value_name = "HOST:PORT|off", default_value = "off",
        value_parser = dafka_cli::metrics::parse_metrics)]
    metrics: dafka_cli::metrics::MetricsAddr,
    /// Partitions to own of the topic, each with its own id, offsets and
    /// spool (a restart with the same --state-dir resumes them all)
    #[arg(long, value_name = "N",
        help = with_default("Partitions to own of the topic; keyed lines go to their key's partition, others in turn",
            ProducerConfig::default().partitions))]
    partitions: Option<usize>,
    /// A Kafka console producer property: parse.key=true (lines are KEY,
    /// separator, content) or key.separator=SEP (a tab by default; \t also
    /// means a tab). Repeatable
    #[arg(long = "property", value_name = "NAME=VALUE", value_parser = parse_property)]
    properties: Vec<Property>,
    /// A header to put on every record. Repeatable; order is kept
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The topic to publish to
    topic: String,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_console_producer");
    init_logging(cli.node.verbose);
    main_with("dafka_console_producer", || {
        let mut cfg = cli.node.config(
            "dafka_console_producer",
            &[Section::Beacon, Section::Producer],
        )?;
        if let Some(n) = cli.min_acks {
            cfg.producer.min_acks = n;
        }
        if let Some(t) = cli.timeout_ms {
            cfg.producer.close_timeout = t;
        }
        if let Some(n) = cli.partitions {
            cfg.producer.partitions = n;
        }
        if let Some(d) = cli.state_dir.clone() {
            cfg.producer.state_dir = d;
        }
        if let Some(id) = cli.id.clone() {
            cfg.producer.id = id;
        }
        cfg.validate()?;
        let stop = interrupted();
        let producer = TopicProducer::new(&cli.topic, &cfg.producer, &cfg.beacon)?;
        let standing = dafka_cli::metrics::ProducerCollector::new(producer.probes());
        let _metrics = dafka_cli::metrics::serve_client(
            "dafka_console_producer",
            &cli.metrics,
            producer.stats(),
            Box::new(standing),
        )?;
        let lines = read_lines();
        let format = LineFormat::new(&cli.properties, &cli.headers);
        let mut bad_line = None;
        let mut interrupted_once = false;
        let mut silence = Silence::new("dafka_console_producer", "store or consumer", &cfg.beacon);
        let tick = crossbeam_channel::tick(Duration::from_millis(500));
        loop {
            select! {
                recv(lines) -> line => match line {
                    Ok(Ok(Line::Record { number, bytes })) => match format.record(bytes) {
                        Ok(r) => match producer.send(r) {
                            Ok(_) => {}
                            Err(ProducerError::TooLarge(e)) => {
                                let what = format!("line {number}: {e}");
                                if bad(&what, cli.skip_bad_lines) { bad_line = Some(1); break }
                            }
                            Err(e) => return Err(e.into()),
                        },
                        Err(why) => {
                            let what = format!("line {number} {why}");
                            if bad(&what, cli.skip_bad_lines) { bad_line = Some(2); break }
                        }
                    },
                    Ok(Ok(Line::TooLong { number, len })) => {
                        let what = format!("line {number} is {len} bytes, over the {MAX_CONTENT_LEN}-byte record limit");
                        if bad(&what, cli.skip_bad_lines) { bad_line = Some(1); break }
                    }
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => break, // end of input
                },
                recv(stop) -> _ => { interrupted_once = true; break }
                recv(tick) -> _ => silence.check(producer.peers()),
            }
        }
        await_acks(&producer, &cfg, &stop, interrupted_once, &mut silence);
        let report = producer.close();
        if report.unacked > 0 {
            eprintln!(
                "dafka_console_producer: {} of {} records not acknowledged by {} store(s) within {} ms",
                report.unacked, report.published, cfg.producer.min_acks, cfg.producer.close_timeout
            );
            return Ok(ExitCode::from(3));
        }
        Ok(bad_line.map_or(ExitCode::SUCCESS, ExitCode::from))
    })
}

/// Says what is wrong with a line: skipped, or (returns true) where the
/// producer stops.
fn bad(what: &str, skip: bool) -> bool {
    if skip {
        eprintln!("dafka_console_producer: {what}; skipped");
    } else {
        eprintln!("dafka_console_producer: {what}; stopping before it (--skip-bad-lines to skip such lines)");
    }
    !skip
}

/// Waits (up to the close timeout) for the records still unacknowledged,
/// saying why when it waits long: after a first Ctrl-C, and when no peer
/// answered within a few seconds. A second Ctrl-C quits at once with exit
/// code 3 after naming what was not acknowledged (a --state-dir keeps those
/// records for the next start): the process exits from here, since closing
/// the producer would wait again.
fn await_acks(
    producer: &TopicProducer,
    cfg: &dafka::Config,
    stop: &crossbeam_channel::Receiver<()>,
    interrupted_once: bool,
    silence: &mut Silence,
) {
    let timeout = Duration::from_millis(cfg.producer.close_timeout);
    if interrupted_once && producer.unacked() > 0 {
        eprintln!(
            "dafka_console_producer: stopped reading; waiting up to {} ms for {} record(s) to be acknowledged (Ctrl-C again to quit now)",
            timeout.as_millis(),
            producer.unacked()
        );
    }
    let start = Instant::now();
    while producer.unacked() > 0 && start.elapsed() < timeout {
        silence.check(producer.peers());
        select! {
            recv(stop) -> _ => {
                eprintln!(
                    "dafka_console_producer: interrupted again: {} record(s) not acknowledged",
                    producer.unacked()
                );
                std::process::exit(3);
            }
            default(Duration::from_millis(20)) => {}
        }
    }
}

/// One line of input.
enum Line {
    /// Line `number` (from 1): its bytes, without the newline.
    Record { number: u64, bytes: Vec<u8> },
    /// Line `number` (from 1) is `len` bytes: too long to be a record.
    TooLong { number: u64, len: u64 },
}

/// Standard input, line by line, on its own thread so Ctrl-C is not stuck
/// behind a blocking read.
fn read_lines() -> crossbeam_channel::Receiver<std::io::Result<Line>> {
    let (tx, rx) = crossbeam_channel::bounded(1024);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut number = 0;
        loop {
            number += 1;
            let line = match next_line(&mut input, MAX_CONTENT_LEN) {
                Ok(None) => break,
                Ok(Some(Ok(bytes))) => Ok(Line::Record { number, bytes }),
                Ok(Some(Err(len))) => Ok(Line::TooLong { number, len }),
                Err(e) => Err(e),
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line's bytes (without its `\n`), or its length if it is over
/// `max`: such a line is read through but never held whole. `None` at the
/// end of input.
fn next_line(r: &mut impl BufRead, max: usize) -> std::io::Result<Option<Result<Vec<u8>, u64>>> {
    let mut buf = Vec::new();
    let (mut len, mut any) = (0u64, false);
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            // A last line without a newline still counts.
            return Ok(any.then_some(if len <= max as u64 { Ok(buf) } else { Err(len) }));
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        len += part.len() as u64;
        if len <= max as u64 {
            buf.extend_from_slice(part);
        } else {
            buf = Vec::new();
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            return Ok(Some(if len <= max as u64 { Ok(buf) } else { Err(len) }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_line;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, u64>> {
        let mut r = std::io::BufReader::with_capacity(4, input);
        std::iter::from_fn(|| next_line(&mut r, max).expect("read")).collect()
    }

    #[test]
    fn lines_are_bytes_with_every_byte_but_the_newline_kept() {
        let got = lines(b"a\r\n\xff\xfe\n\nlast", 100);
        let want: Vec<Result<Vec<u8>, u64>> = vec![
            Ok(b"a\r".to_vec()),
            Ok(b"\xff\xfe".to_vec()),
            Ok(vec![]),
            Ok(b"last".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_line_over_the_limit_is_reported_by_length_and_the_next_is_read() {
        let got = lines(b"ok\n0123456789\nnext\n", 5);
        assert_eq!(got, vec![Ok(b"ok".to_vec()), Err(10), Ok(b"next".to_vec())]);
    }
}
