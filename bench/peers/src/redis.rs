//! Redis Streams over a minimal RESP client on a plain TCP socket: XREAD
//! in batches for the live and replay rates, XADD one at a time for
//! latency. The durable write rate comes from redis-benchmark (pipelined
//! XADD), which the script runs itself.

use crate::{rate_line, stats, BoxError, Result, Target, STALL};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Entries asked for per XREAD: large batches, as a fast reader would.
const BATCH: usize = 10_000;

pub fn run(mode: &str, t: &Target) -> Result<String> {
    match mode {
        "live" => read(t, true),
        "replay" => read(t, false),
        "latency" => latency(t),
        other => Err(format!("unknown Redis mode {other:?}").into()),
    }
}

/// A RESP reply: only the shapes XADD and XREAD return.
enum Reply {
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
    Simple,
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Result<Self> {
        let w = TcpStream::connect(addr)?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(STALL))?;
        Ok(Self {
            r: BufReader::new(w.try_clone()?),
            w,
        })
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out)?;
        self.reply()
    }

    fn line(&mut self) -> Result<String> {
        let mut s = String::new();
        if self.r.read_line(&mut s)? == 0 {
            return Err("redis closed the connection".into());
        }
        Ok(s.trim_end().to_string())
    }

    fn reply(&mut self) -> Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        let n = || {
            rest.parse::<i64>()
                .map_err(|_| BoxError::from(format!("bad RESP line {line:?}")))
        };
        match kind {
            "+" | ":" => Ok(Reply::Simple),
            "-" => Err(format!("redis: {rest}").into()),
            "$" if n()? < 0 => Ok(Reply::Bulk(None)),
            "$" => {
                let mut buf = vec![0; n()? as usize + 2];
                std::io::Read::read_exact(&mut self.r, &mut buf)?;
                buf.truncate(buf.len() - 2);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" if n()? < 0 => Ok(Reply::Array(None)),
            "*" => (0..n()?)
                .map(|_| self.reply())
                .collect::<Result<Vec<_>>>()
                .map(|v| Reply::Array(Some(v))),
            _ => Err(format!("bad RESP line {line:?}").into()),
        }
    }
}

/// The entries of an XREAD reply for one stream: (id, last field value).
fn entries(reply: Reply) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Reply::Array(Some(streams)) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in streams {
        let Reply::Array(Some(mut kv)) = s else {
            continue;
        };
        let Some(Reply::Array(Some(items))) = kv.pop() else {
            continue;
        };
        for item in items {
            let Reply::Array(Some(mut parts)) = item else {
                continue;
            };
            let fields = parts.pop();
            let Some(Reply::Bulk(Some(id))) = parts.pop() else {
                continue;
            };
            let value = match fields {
                Some(Reply::Array(Some(mut f))) => match f.pop() {
                    Some(Reply::Bulk(Some(v))) => v,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            out.push((id, value));
        }
    }
    out
}

/// Reads `count` entries with XREAD, blocking while none is there.
fn read(t: &Target, live: bool) -> Result<String> {
    let mut c = Conn::open(&t.addr)?;
    // From the start in both modes: the key is new, so for the live run
    // that is every entry the concurrent writer adds, with no race
    // between this first read and the first write.
    let mut last = b"0-0".to_vec();
    if live {
        eprintln!("ready");
    }
    // A replay's clock starts with the first request: its first batch is
    // already most of the work. A live run's starts at the first entry.
    let (mut got, mut first) = (0u64, (!live).then(Instant::now));
    let batch = BATCH.to_string();
    let block = STALL.as_millis().to_string();
    while got < t.count {
        let reply = c.call(&[
            b"XREAD",
            b"COUNT",
            batch.as_bytes(),
            b"BLOCK",
            block.as_bytes(),
            b"STREAMS",
            t.name.as_bytes(),
            &last,
        ])?;
        let batch = entries(reply);
        let Some((id, _)) = batch.last() else {
            return Err(format!("no entry for {} s after {got}", STALL.as_secs()).into());
        };
        first.get_or_insert_with(Instant::now);
        last = id.clone();
        got += batch.len() as u64;
    }
    let secs = first
        .map(|f: Instant| f.elapsed().as_secs_f64())
        .unwrap_or_default();
    Ok(rate_line(got, secs))
}

/// XADDs stamped entries at `rate` from one thread while another reads
/// them with a blocking XREAD: latency from send to read.
fn latency(t: &Target) -> Result<String> {
    let mut reader = Conn::open(&t.addr)?;
    let mut writer = Conn::open(&t.addr)?;
    let (count, name) = (t.count, t.name.clone());
    let read = std::thread::spawn(move || -> Result<Vec<u64>> {
        let mut lat = Vec::with_capacity(count as usize);
        let mut last = b"0-0".to_vec(); // a new key: see `read`
        let block = STALL.as_millis().to_string();
        while (lat.len() as u64) < count {
            let reply = reader.call(&[
                b"XREAD",
                b"BLOCK",
                block.as_bytes(),
                b"STREAMS",
                name.as_bytes(),
                &last,
            ])?;
            let batch = entries(reply);
            let now = stats::now_ns();
            let Some((id, _)) = batch.last() else {
                return Err("no entry in time".into());
            };
            last = id.clone();
            lat.extend(
                batch
                    .iter()
                    .filter_map(|(_, v)| stats::stamp_of(v))
                    .map(|s| now.saturating_sub(s)),
            );
        }
        Ok(lat)
    });
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / t.rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        writer.call(&[
            b"XADD",
            t.name.as_bytes(),
            b"*",
            b"v",
            &stats::stamped(t.size),
        ])?;
    }
    let lat = read.join().map_err(|_| "the reader panicked")??;
    Ok(stats::latency_line(lat))
}
