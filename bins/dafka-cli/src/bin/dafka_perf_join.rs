//! dafka_perf_join: how soon a new consumer gets its first record.

use clap::Parser;
use dafka::Section;
use dafka::{Consumer, OffsetReset, Producer};
use dafka_cli::perf::Report;
use dafka_cli::{init_logging, main_with, parse, NodeArgs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time from starting a consumer to its first record: live (a producer
/// publishes every millisecond) and from a store (a topic whose producer
/// has gone). Each is measured ROUNDS times; median and max are printed.
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_join", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// Measurements of each kind
    #[arg(allow_negative_numbers = true, long, default_value_t = 5)]
    rounds: usize,
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_join");
    init_logging(cli.node.verbose);
    main_with("dafka_perf_join", || {
        let cfg = cli.node.config(
            "dafka_perf_join",
            &[Section::Beacon, Section::Producer, Section::Consumer],
        )?;
        cfg.validate()?;
        let topic_live = format!("join-live-{}", std::process::id());
        let topic_stored = format!("join-stored-{}", std::process::id());

        let stored = Producer::new(&topic_stored, &cfg.producer, &cfg.beacon)?;
        for i in 0..100u32 {
            stored.publish(i.to_string())?;
        }
        anyhow::ensure!(
            stored.flush(Duration::from_secs(30)),
            "no store ACKed: is one running?"
        );
        stored.close();

        let stop = Arc::new(AtomicBool::new(false));
        let live = {
            let (stop, cfg, topic) = (stop.clone(), cfg.clone(), topic_live.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let p = Producer::new(&topic, &cfg.producer, &cfg.beacon)?;
                while !stop.load(Relaxed) {
                    p.publish("tick")?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                p.close();
                Ok(())
            })
        };
        let mut live_ms = Vec::new();
        let mut stored_ms = Vec::new();
        for _ in 0..cli.rounds {
            live_ms.push(first_record(&cfg, &topic_live, OffsetReset::Latest)?);
            stored_ms.push(first_record(&cfg, &topic_stored, OffsetReset::Earliest)?);
        }
        stop.store(true, Relaxed);
        live.join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))??;
        let (lm, lx) = median_max(&mut live_ms);
        let (sm, sx) = median_max(&mut stored_ms);
        Report::new("perf_join")
            .field("rounds", cli.rounds as f64)
            .field("live_ms_median", lm)
            .field("live_ms_max", lx)
            .field("store_ms_median", sm)
            .field("store_ms_max", sx)
            .print(cli.json);
        Ok(ExitCode::SUCCESS)
    })
}

fn first_record(cfg: &dafka::Config, topic: &str, reset: OffsetReset) -> anyhow::Result<f64> {
    let mut ccfg = cfg.consumer.clone();
    ccfg.offset_reset = reset;
    let start = Instant::now();
    let c = Consumer::new(&ccfg, &cfg.beacon)?;
    c.subscribe(topic)?;
    c.recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow::anyhow!("no record of {topic} within 30 s"))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    c.close();
    Ok(ms)
}

fn median_max(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    (median, v.last().copied().unwrap_or(0.0))
}
