//! Latency through a pair of console tools: stamped lines into a
//! producer's stdin at a fixed rate, read back from a consumer's stdout.
//! It measures any system whose only clients are its command-line tools
//! (the C Dafka has no latency tool) the same way as Dafka's own console
//! tools, pipes and stdio included on both sides.

use crate::{stats, Result, STALL};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `COUNT SIZE RATE -- PRODUCER ARGS... -- CONSUMER ARGS...`
pub fn latency(args: &[String]) -> Result<String> {
    let mut parts = args.split(|a| a == "--");
    let head = parts.next().unwrap_or_default();
    let (Some(producer), Some(consumer)) = (parts.next(), parts.next()) else {
        return Err("expected COUNT SIZE RATE -- PRODUCER... -- CONSUMER...".into());
    };
    let [count, size, rate] = head else {
        return Err("expected COUNT SIZE RATE".into());
    };
    let (count, size, rate): (u64, usize, u64) = (count.parse()?, size.parse()?, rate.parse()?);
    let mut cons = spawn(consumer, Stdio::null(), Stdio::piped())?;
    let mut prod = spawn(producer, Stdio::piped(), Stdio::null())?;
    let result = measure(&mut prod, &mut cons, count, size, rate.max(1));
    drop(prod.stdin.take()); // EOF: the producer flushes and exits
    let _ = wait_bounded(&mut prod);
    let _ = cons.kill();
    let _ = cons.wait();
    result
}

fn spawn(argv: &[String], stdin: Stdio, stdout: Stdio) -> Result<Child> {
    let (cmd, args) = argv.split_first().ok_or("an empty command")?;
    Ok(Command::new(cmd)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()?)
}

fn measure(
    prod: &mut Child,
    cons: &mut Child,
    count: u64,
    size: usize,
    rate: u64,
) -> Result<String> {
    let out = cons.stdout.take().ok_or("no consumer stdout")?;
    let (tx, rx) = mpsc::channel::<Option<u64>>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let stamp = stats::stamp_of(line.as_bytes()).map(|s| stats::now_ns().saturating_sub(s));
            if tx.send(stamp).is_err() {
                break;
            }
        }
    });
    let stdin = prod.stdin.as_mut().ok_or("no producer stdin")?;
    // Warm up until a line gets through: discovery takes a beacon
    // interval or more, and it is not what is measured here.
    let deadline = Instant::now() + STALL;
    loop {
        stdin.write_all(b"warmup\n")?;
        stdin.flush()?;
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err("no line came through the console pair".into());
        }
    }
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut line = stats::stamped(size.saturating_sub(1));
        line.push(b'\n');
        stdin.write_all(&line)?;
        stdin.flush()?;
    }
    let mut lat = Vec::with_capacity(count as usize);
    while (lat.len() as u64) < count {
        match rx.recv_timeout(STALL) {
            Ok(Some(ns)) => lat.push(ns),
            Ok(None) => {} // a late warm-up line
            Err(_) => return Err(format!("{} of {count} lines came through", lat.len()).into()),
        }
    }
    Ok(stats::latency_line(lat))
}

/// Waits up to a few seconds for `child` to exit, then kills it.
fn wait_bounded(child: &mut Child) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}
