//! dafka_perf_group: a consumer group's total rate, and how long a dead
//! member's partitions go unread.

use clap::Parser;
use dafka::{Consumer, OffsetReset, ProducerRecord, Section, TopicProducer};
use dafka_cli::perf::{Report, ThroughputArgs};
use dafka_cli::{init_logging, main_with, parse};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two measurements of a group of MEMBERS consumers over a producer of
/// PARTITIONS partitions, on the towers given.
///
/// Rate: COUNT records of SIZE bytes are published and ACKed first; the
/// members (library consumers in this process) then read them from the
/// stores; the clock runs from the group's start to the last record.
///
/// Failover: MEMBERS `dafka_console_consumer --group` processes read while
/// records keep coming (about 2,000 a second); one is killed with SIGKILL,
/// and the time until every partition it was reading is read again by
/// another member is reported (expected: about `beacon.timeout`, plus a
/// commit round trip).
#[derive(Parser, Debug)]
#[command(name = "dafka_perf_group", version)]
struct Cli {
    #[command(flatten)]
    run: ThroughputArgs,
    /// Partitions of the producer
    #[arg(long, default_value_t = 8)]
    partitions: usize,
    /// Members of the group
    #[arg(long, default_value_t = 3)]
    members: usize,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_perf_group");
    init_logging(cli.run.node.verbose);
    main_with("dafka_perf_group", || {
        let cfg = cli.run.node.config(
            "dafka_perf_group",
            &[Section::Beacon, Section::Producer, Section::Consumer],
        )?;
        cfg.validate()?;
        anyhow::ensure!(cli.members >= 2, "--members must be at least 2");
        let took = rate(&cli, &cfg)?;
        let failover = failover(&cli, &cfg)?;
        Report::throughput("dafka_perf_group", cli.run.count, cli.run.size, took)
            .field("members", cli.members as f64)
            .field("partitions", cli.partitions as f64)
            .field("failover_s", failover.as_secs_f64())
            .print(cli.run.json);
        Ok(ExitCode::SUCCESS)
    })
}

fn producer(cli: &Cli, cfg: &dafka::Config, topic: &str) -> anyhow::Result<TopicProducer> {
    let mut p = cfg.producer.clone();
    p.partitions = cli.partitions;
    Ok(TopicProducer::new(topic, &p, &cfg.beacon)?)
}

/// Publishes COUNT records, then times the group reading them.
fn rate(cli: &Cli, cfg: &dafka::Config) -> anyhow::Result<Duration> {
    let topic = format!("{}-rate", cli.run.topic);
    let p = producer(cli, cfg, &topic)?;
    let content = vec![b'x'; cli.run.size];
    for _ in 0..cli.run.count {
        p.send(ProducerRecord::new(content.clone()))?;
    }
    anyhow::ensure!(p.flush(cli.run.timeout()), "the records were not ACKed");
    p.close();
    let mut c = cfg.consumer.clone();
    c.group = format!("{}-readers", cli.run.topic);
    c.offset_reset = OffsetReset::Earliest;
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let members: Vec<_> = (0..cli.members)
        .map(|_| {
            let consumer = Consumer::new(&c, &cfg.beacon)?;
            consumer.subscribe(&topic)?;
            let (got, stop) = (got.clone(), stop.clone());
            Ok(std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if consumer.recv_timeout(Duration::from_millis(50)).is_ok() {
                        got.fetch_add(1, Relaxed);
                    }
                }
                consumer.close();
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    let deadline = Instant::now() + cli.run.timeout() * 4;
    while got.load(Relaxed) < cli.run.count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    stop.store(true, Relaxed);
    members.into_iter().for_each(|m| {
        let _ = m.join();
    });
    let n = got.load(Relaxed);
    anyhow::ensure!(
        n >= cli.run.count,
        "the group read {n} of {} records",
        cli.run.count
    );
    Ok(took)
}

/// A console consumer in the failover group, and what it printed:
/// partition -> (when, offset) of its last line.
struct Member {
    child: Child,
    last: Arc<std::sync::Mutex<BTreeMap<String, (Instant, u64)>>>,
}

fn member(cli: &Cli, group: &str, topic: &str) -> anyhow::Result<Member> {
    let exe = std::env::current_exe()?;
    let console = exe.with_file_name("dafka_console_consumer");
    let b = &cli.run.node;
    let mut cmd = Command::new(console);
    for (flag, v) in [("--sub", &b.sub), ("--pub", &b.pub_), ("--bind", &b.bind)] {
        if let Some(v) = v {
            cmd.args([flag, v]);
        }
    }
    if let Some(c) = &b.config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .args([
            "--group",
            group,
            "--from-beginning",
            "--print-partition",
            "--print-offset",
        ])
        .arg(topic)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let last = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let seen = last.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut f = line.splitn(3, '\t');
            if let (Some(p), Some(Ok(o))) = (f.next(), f.next().map(str::parse)) {
                if let Ok(mut m) = seen.lock() {
                    m.insert(p.to_string(), (Instant::now(), o));
                }
            }
        }
    });
    Ok(Member { child, last })
}

/// Kills one member of a group reading a steady stream; returns how long
/// until each partition it read has a record read by another member.
fn failover(cli: &Cli, cfg: &dafka::Config) -> anyhow::Result<Duration> {
    let topic = format!("{}-failover", cli.run.topic);
    let group = format!("{}-workers", cli.run.topic);
    let p = Arc::new(producer(cli, cfg, &topic)?);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (p, stop) = (p.clone(), stop.clone());
        let content = vec![b'x'; cli.run.size];
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let _ = p.send(ProducerRecord::new(content.clone()));
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let mut members: Vec<Member> = (0..cli.members)
        .map(|_| member(cli, &group, &topic))
        .collect::<anyhow::Result<_>>()?;
    // Settled: every partition read in the last half second.
    let all = cli.partitions;
    wait_until(cli.run.timeout(), || {
        recent(&members, Duration::from_millis(500)).len() == all
    })?;
    let victim = members.remove(0);
    let theirs: BTreeSet<String> =
        recent(std::slice::from_ref(&victim), Duration::from_millis(500))
            .into_keys()
            .collect();
    let mut child = victim.child;
    let killed = Instant::now();
    child.kill()?;
    let _ = child.wait();
    wait_until(cli.run.timeout(), || {
        let now = recent(&members, killed.elapsed());
        theirs.iter().all(|p| now.contains_key(p))
    })?;
    let took = killed.elapsed();
    stop.store(true, Relaxed);
    let _ = publisher.join();
    for mut m in members {
        let _ = m.child.kill();
        let _ = m.child.wait();
    }
    if let Ok(p) = Arc::try_unwrap(p) {
        p.close();
    }
    Ok(took)
}

/// Partitions some member printed a line of within `within`, with the
/// newest offset.
fn recent(members: &[Member], within: Duration) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in members {
        if let Ok(last) = m.last.lock() {
            for (p, (at, o)) in last.iter() {
                if at.elapsed() <= within {
                    out.insert(p.clone(), *o);
                }
            }
        }
    }
    out
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the group did not settle within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
