//! dafka_console_consumer: prints the records of a topic, one per line.

use clap::Parser;
use crossbeam_channel::{after, never, select};
use dafka::Section;
use dafka::{Consumer, OffsetReset, Record};
use dafka_cli::console::{
    json_record, separator, write_text, PrintOptions, StartAt, DEFAULT_SEPARATOR,
};
use dafka_cli::{init_logging, interrupted, main_with, parse, stdout_closed, NodeArgs, Silence};
use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Print the records of TOPIC to standard output, one per line.
///
/// Content is written as is, byte for byte, after the fields chosen with
/// --print-* (Kafka's order: timestamp, partition, offset, headers, key).
/// --format json prints one JSON object a line instead, with every field;
/// bytes that are not UTF-8 appear as {"base64": "..."}. With --timeout-ms it exits once
/// nothing has arrived for that long: 0 if it delivered everything it knows
/// of, 3 (and a line per partition on stderr) if records it knows exist
/// could not be had, for instance because the stores that hold them cannot
/// read them.
#[derive(Parser, Debug)]
#[command(name = "dafka_console_consumer", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// Start from the first record the stores hold, not from now
    /// (partitions without a committed position, with --name)
    #[arg(long)]
    from_beginning: bool,
    /// Read only this partition (a UUID, as --format json prints it)
    #[arg(long, value_name = "UUID", value_parser = dafka_cli::console::parse_partition)]
    partition: Option<dafka::NodeId>,
    /// Where to start: earliest, latest, or an offset (with --partition).
    /// An offset past the end waits for new records
    #[arg(long, value_name = "earliest|latest|N", value_parser = dafka_cli::console::parse_offset)]
    offset: Option<dafka_cli::console::StartAt>,
    /// Start each partition at its first record at or after this time:
    /// milliseconds since the Unix epoch or RFC 3339
    /// (2026-11-30T09:00:00Z, 2026-11-30T10:00:00+01:00). The stores find
    /// it in their time index; partitions they do not hold start as
    /// --offset or --from-beginning say
    #[arg(long, value_name = "TIME", value_parser = dafka_cli::console::parse_time, conflicts_with = "offset")]
    from_time: Option<u64>,
    /// Commit positions under this name (like Kafka's group.id): a
    /// restarted consumer with the same name, on any machine, resumes
    /// after the last line it wrote out
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Share the topic's partitions with every consumer of this group
    /// (like Kafka's consumer groups, without a coordinator): each
    /// partition is read by one member, positions are committed under the
    /// group's name, and a member's partitions move to the others when it
    /// stops or dies. Run with -v to see the assignment change
    #[arg(long, value_name = "NAME", conflicts_with_all = ["partition", "from_time"])]
    group: Option<String>,
    /// Serve Prometheus metrics (/metrics: position, head, lag and
    /// committed position per partition) and /healthz on HOST:PORT
    #[arg(long, value_name = "HOST:PORT|off", default_value = "off",
        value_parser = dafka_cli::metrics::parse_metrics)]
    metrics: dafka_cli::metrics::MetricsAddr,
    /// Exit after this many records
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    max_messages: Option<u64>,
    /// Exit (0) once every record that existed is printed: each partition
    /// the stores hold (and any seen live) up to its end
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Exit if no record arrives for this long, in ms
    #[arg(allow_negative_numbers = true, long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print the topic before each record (tab-separated)
    #[arg(long)]
    print_topic: bool,
    /// Print the partition before each record (tab-separated)
    #[arg(long)]
    print_partition: bool,
    /// Print the offset before each record (tab-separated)
    #[arg(long)]
    print_offset: bool,
    /// Print the timestamp before each record: CreateTime:<ms since the
    /// epoch> (or NO_TIMESTAMP), tab-separated
    #[arg(long)]
    print_timestamp: bool,
    /// Print the headers before each record: name:value,... (or
    /// NO_HEADERS), tab-separated
    #[arg(long)]
    print_headers: bool,
    /// Print the key (or null) before each record, then the key separator
    #[arg(long)]
    print_key: bool,
    /// What follows the key with --print-key (\t means a tab)
    #[arg(long, value_name = "SEP", default_value = DEFAULT_SEPARATOR, hide_default_value = true)]
    key_separator: String,
    /// Output format: text (the content, after any --print-* fields) or
    /// json (one object a line: topic, partition, offset, timestamp, key,
    /// headers, value)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The topic to read
    topic: String,
}

/// How records are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_console_consumer");
    init_logging(cli.node.verbose);
    main_with("dafka_console_consumer", || {
        let mut cfg = cli.node.config(
            "dafka_console_consumer",
            &[Section::Beacon, Section::Consumer],
        )?;
        if cli.from_beginning {
            cfg.consumer.offset_reset = OffsetReset::Earliest;
        }
        let mut start = None;
        match (cli.offset, cli.partition) {
            (Some(StartAt::Earliest), _) => cfg.consumer.offset_reset = OffsetReset::Earliest,
            (Some(StartAt::Latest), _) => cfg.consumer.offset_reset = OffsetReset::Latest,
            (Some(StartAt::Offset(n)), Some(_)) => start = Some(n),
            (Some(StartAt::Offset(_)), None) => {
                eprintln!("dafka_console_consumer: --offset N needs --partition (or use --offset earliest|latest)");
                return Ok(ExitCode::from(2));
            }
            (None, _) => {}
        }
        if let Some(n) = &cli.name {
            cfg.consumer.name = n.clone();
        }
        if let Some(g) = &cli.group {
            cfg.consumer.group = g.clone();
        }
        if let Some(t) = cli.from_time {
            cfg.consumer.from_time = t;
        }
        // A line counts as processed once it is flushed to standard output
        // (commits follow the flushes below), not when it is taken.
        cfg.consumer.auto_commit = false;
        let named = !cfg.consumer.position_name().is_empty();
        cfg.validate()?;
        let stop = interrupted();
        let reader_gone = stdout_closed();
        let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
        let lag = dafka_cli::metrics::ConsumerCollector::new(consumer.probe());
        let _metrics = dafka_cli::metrics::serve_client(
            "dafka_console_consumer",
            &cli.metrics,
            vec![consumer.stats()],
            Box::new(lag),
        )?;
        match cli.partition {
            Some(p) => consumer.assign(&cli.topic, p, start)?,
            None => consumer.subscribe(&cli.topic)?,
        }
        let fields = PrintOptions {
            topic: cli.print_topic,
            timestamp: cli.print_timestamp,
            partition: cli.print_partition,
            offset: cli.print_offset,
            headers: cli.print_headers,
            key: cli.print_key,
            key_separator: separator(&cli.key_separator),
        };
        let mut out = BufWriter::new(std::io::stdout().lock());
        let mut count = 0u64;
        // Per partition, the last record written but not yet flushed:
        // committed once it is.
        let mut unflushed = std::collections::HashMap::new();
        let mut idle_exit = false;
        let mut silence = Silence::new("dafka_console_consumer", "producer or store", &cfg.beacon);
        let tick = crossbeam_channel::tick(Duration::from_millis(500));
        // With --exit-at-end, whether the end is reached is asked whenever
        // nothing is waiting to be printed.
        let end_check = if cli.exit_at_end {
            crossbeam_channel::tick(Duration::from_millis(50))
        } else {
            never()
        };
        // The idle timer runs from the last record, not from the last tick.
        let idle_after = cli.timeout_ms.map(Duration::from_millis);
        let mut idle = idle_after.map_or(never(), after);
        let commit_every = Duration::from_millis(cfg.consumer.commit_interval);
        let mut last_flush = Instant::now();
        'read: while cli.max_messages.is_none_or(|m| count < m) {
            let batch = select! {
                recv(consumer.batches()) -> b => match b { Ok(b) => b, Err(_) => break },
                recv(stop) -> _ => break,
                recv(reader_gone) -> _ => break,
                recv(tick) -> _ => { silence.check(consumer.stats().peers()); continue }
                recv(end_check) -> _ => {
                    // Asked with nothing waiting; the answer comes after any
                    // record delivered before it, so look again.
                    let empty = || consumer.batches().is_empty();
                    if empty() && consumer.at_end(Duration::from_secs(5)) == Some(true) && empty() {
                        break;
                    }
                    continue
                }
                recv(idle) -> _ => { idle_exit = true; break }
            };
            if let Some(d) = idle_after {
                idle = after(d);
            }
            let n = batch.len();
            for (i, rec) in batch.into_iter().enumerate() {
                if cli.max_messages.is_some_and(|m| count >= m) {
                    break 'read;
                }
                count += 1;
                // Flushed (and so committed) when it has caught up, and at
                // least every commit interval under a steady stream:
                // otherwise a consumer that never catches up would never
                // commit.
                let caught_up = i + 1 == n && consumer.batches().is_empty();
                let flush = caught_up || last_flush.elapsed() >= commit_every;
                if flush {
                    last_flush = Instant::now();
                }
                match print(cli.format, &fields, &mut out, &rec, flush) {
                    Ok(()) if named => {
                        unflushed.insert((rec.topic.clone(), rec.partition), rec);
                        if flush {
                            unflushed
                                .drain()
                                .try_for_each(|(_, r)| consumer.commit(&r))?;
                        }
                    }
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => break 'read,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if out.flush().is_ok() {
            unflushed
                .drain()
                .try_for_each(|(_, r)| consumer.commit(&r))?;
        }
        // Gone quiet with records known to exist and not delivered: say so
        // rather than pass for a reader that got everything.
        let missing = if idle_exit {
            consumer.gaps(Duration::from_secs(5)).unwrap_or_default()
        } else {
            Vec::new()
        };
        consumer.close();
        for g in &missing {
            let why = match &g.unreadable {
                Some((Some(store), reason)) => format!("store {store} cannot read them: {reason}"),
                Some((None, reason)) => format!("a store cannot read them: {reason}"),
                None => "no store or producer sent them".to_string(),
            };
            eprintln!(
                "dafka_console_consumer: partition {} of {}: offsets {} to {} not delivered ({why})",
                g.partition,
                g.topic,
                g.from,
                g.to - 1
            );
        }
        Ok(if missing.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        })
    })
}

fn print(
    format: Format,
    fields: &PrintOptions,
    out: &mut impl Write,
    r: &Record,
    flush: bool,
) -> std::io::Result<()> {
    match format {
        Format::Text => write_text(out, fields, r)?,
        Format::Json => writeln!(out, "{}", json_record(r))?,
    }
    // Flush when caught up, so a live reader sees each line at once, while a
    // replay of a million records is written in big blocks.
    if flush {
        out.flush()?;
    }
    Ok(())
}
