//! Test hosts: Linux network namespaces joined by veth pairs to one bridge,
//! each with its own address in a private range that exists only while
//! the test runs. Nodes on different hosts reach each other through the
//! kernel's network stack with real addresses, and a test can cut a host
//! off, split two hosts, or make every link lossy and slow.
//!
//! Needs root and `ip` (and `tc` with netem for lossy links); where they
//! are missing, [`Net::new`] says why and returns `None`, and the test
//! skips. Everything made is removed when the `Net` drops.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test host.
pub struct Host {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// Its address on the test bridge.
    pub addr: String,
    /// The root-namespace end of its veth pair.
    veth: String,
}

/// A set of test hosts on one bridge.
pub struct Net {
    bridge: String,
    hosts: Vec<Host>,
}

/// Runs `ip ARGS`; the error names the command.
fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why test hosts cannot be made here, if they cannot.
fn unavailable() -> Option<String> {
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        return Some("not root (network namespaces need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command (Debian: iproute2)".into());
    }
    None
}

/// Removes namespaces and bridges an earlier test process left (killed
/// before its `Net` dropped): names carry the process id in hex.
fn remove_stale() {
    let Ok(out) = Command::new("ip")
        .args(["-o", "link", "show", "type", "bridge"])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let names = text
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string());
    let netns = Command::new("ip").args(["netns", "list"]).output();
    let ns_text = netns
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let all = names.chain(
        ns_text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from),
    );
    for name in all.collect::<Vec<_>>() {
        let Some(pid) = name.strip_prefix("dk").and_then(|r| r.split('x').next()) else {
            continue;
        };
        let Ok(pid) = u32::from_str_radix(pid, 16) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
            let _ = ip(&["link", "del", &name]);
        }
    }
}

impl Net {
    /// `n` hosts on a new bridge, or `None` (said on stderr) where this
    /// machine cannot make them.
    pub fn new(n: usize) -> Option<Net> {
        if let Some(why) = unavailable() {
            eprintln!("skipped: test hosts need network namespaces: {why}");
            return None;
        }
        remove_stale();
        match Net::make(n) {
            Ok(net) => Some(net),
            Err(e) => {
                eprintln!("skipped: cannot make test hosts: {e}");
                None
            }
        }
    }

    fn make(n: usize) -> Result<Net, String> {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        // 10.213.K.0/24: a private range, one per net of this process.
        let subnet = 10 + (std::process::id() % 20) * 10 + k % 10;
        let base = format!("dk{:x}x{k}", std::process::id());
        let mut net = Net {
            bridge: format!("{base}b"),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for i in 0..n {
            // Kept before it is made, so a failure half-way is cleaned up.
            net.hosts.push(Host {
                ns: format!("{base}n{i}"),
                addr: format!("10.213.{subnet}.{}", i + 1),
                veth: format!("{base}v{i}"),
            });
            let host = &net.hosts[i];
            let inner = "eth0";
            ip(&["netns", "add", &host.ns])?;
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &host.veth, "type", "veth", "peer", "name", inner, "netns", &host.ns,
            ])?;
            ip(&["link", "set", &host.veth, "master", &net.bridge])?;
            ip(&["link", "set", &host.veth, "up"])?;
            let cidr = format!("{}/24", host.addr);
            ip(&["-n", &host.ns, "addr", "add", &cidr, "dev", inner])?;
            ip(&["-n", &host.ns, "link", "set", inner, "up"])?;
        }
        Ok(net)
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Cuts host `i` off from every other (its cable pulled).
    pub fn isolate(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].veth, "down"]).expect("link down");
    }

    /// Plugs host `i` back in.
    pub fn rejoin(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].veth, "up"]).expect("link up");
    }

    /// Hosts `a` and `b` can no longer reach each other; both still reach
    /// everyone else. Packets between them vanish silently.
    pub fn split(&self, a: usize, b: usize) {
        self.blackholes("add", a, b);
    }

    /// Undoes [`Net::split`].
    pub fn unsplit(&self, a: usize, b: usize) {
        self.blackholes("del", a, b);
    }

    /// Adds or deletes (`op`) a blackhole route to each of `a` and `b` on
    /// the other.
    fn blackholes(&self, op: &str, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let dst = format!("{}/32", self.hosts[to].addr);
            let ns = &self.hosts[from].ns;
            ip(&["-n", ns, "route", op, "blackhole", &dst]).expect("blackhole route");
        }
    }

    /// Every host's outgoing packets: `loss` per cent lost, delayed by
    /// `delay_ms` ± `jitter_ms`. `Err` (why) where tc or its netem
    /// discipline is missing (some kernels are built without it).
    pub fn lossy(&self, loss: u32, delay_ms: u32, jitter_ms: u32) -> Result<(), String> {
        for h in &self.hosts {
            let (loss, delay, jitter) = (
                format!("{loss}%"),
                format!("{delay_ms}ms"),
                format!("{jitter_ms}ms"),
            );
            run(
                "ip",
                &[
                    "netns", "exec", &h.ns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                    "loss", &loss, "delay", &delay, &jitter,
                ],
            )?;
        }
        Ok(())
    }

    /// Where netem is missing: every host's outgoing traffic limited to
    /// `mbit` with at most `latency_ms` of queue, past which packets are
    /// dropped (congestion loss and queueing delay, not random loss).
    pub fn throttle(&self, mbit: u32, latency_ms: u32) -> Result<(), String> {
        for h in &self.hosts {
            let (rate, latency) = (format!("{mbit}mbit"), format!("{latency_ms}ms"));
            run(
                "ip",
                &[
                    "netns", "exec", &h.ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                    "rate", &rate, "burst", "32kbit", "latency", &latency,
                ],
            )?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.ns]);
            let _ = ip(&["link", "del", &h.veth]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
