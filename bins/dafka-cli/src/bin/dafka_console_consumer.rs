//! dafka_console_consumer: prints the records of a topic, one per line.

use clap::Parser;
use crossbeam_channel::{after, never, select};
use dafka::Section;
use dafka::{Consumer, OffsetReset, Record};
use dafka_cli::{init_logging, interrupted, main_with, parse, stdout_closed, NodeArgs, Silence};
use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Print the records of TOPIC to standard output, one per line.
///
/// Content is written as is, byte for byte. With --timeout-ms it exits once
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
    #[arg(long)]
    from_beginning: bool,
    /// Exit after this many records
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    max_messages: Option<u64>,
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
    /// The topic to read
    topic: String,
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
        cfg.validate()?;
        let stop = interrupted();
        let reader_gone = stdout_closed();
        let consumer = Consumer::new(&cfg.consumer, &cfg.beacon)?;
        consumer.subscribe(&cli.topic)?;
        let mut out = BufWriter::new(std::io::stdout().lock());
        let mut count = 0u64;
        let mut idle_exit = false;
        let mut silence = Silence::new("dafka_console_consumer", "producer or store", &cfg.beacon);
        let tick = crossbeam_channel::tick(Duration::from_millis(500));
        // The idle timer runs from the last record, not from the last tick.
        let idle_after = cli.timeout_ms.map(Duration::from_millis);
        let mut idle = idle_after.map_or(never(), after);
        while cli.max_messages.is_none_or(|m| count < m) {
            let rec = select! {
                recv(consumer.records()) -> r => match r { Ok(r) => r, Err(_) => break },
                recv(stop) -> _ => break,
                recv(reader_gone) -> _ => break,
                recv(tick) -> _ => { silence.check(&consumer.stats()); continue }
                recv(idle) -> _ => { idle_exit = true; break }
            };
            count += 1;
            if let Some(d) = idle_after {
                idle = after(d);
            }
            match print(&cli, &mut out, &rec, consumer.records().is_empty()) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e.into()),
            }
        }
        let _ = out.flush();
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

fn print(cli: &Cli, out: &mut impl Write, r: &Record, flush: bool) -> std::io::Result<()> {
    if cli.print_topic {
        write!(out, "{}\t", r.topic)?;
    }
    if cli.print_partition {
        write!(out, "{}\t", r.partition)?;
    }
    if cli.print_offset {
        write!(out, "{}\t", r.offset)?;
    }
    out.write_all(&r.content)?;
    out.write_all(b"\n")?;
    // Flush when caught up, so a live reader sees each line at once, while a
    // replay of a million records is written in big blocks.
    if flush {
        out.flush()?;
    }
    Ok(())
}
