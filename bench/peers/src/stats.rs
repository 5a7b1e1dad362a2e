//! Latency samples: a timestamp in the payload, percentiles at the end.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch: sender and receiver run on one
/// machine, so the wall clock is shared and needs no sync.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A payload of `size` bytes that starts with the send time, `T<ns>:`,
/// padded with `x`: printable, so it also survives a line-based pipe.
pub fn stamped(size: usize) -> Vec<u8> {
    let mut p = format!("T{}:", now_ns()).into_bytes();
    p.resize(size.max(p.len()), b'x');
    p
}

/// The send time inside a payload made by [`stamped`], found anywhere in
/// it (console consumers print other fields before the content; the padding
/// holds no `T`, so the last one is the stamp).
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    let start = payload.iter().rposition(|&b| b == b'T')? + 1;
    let digits = payload[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// One JSON line of percentiles, in microseconds, from latencies in ns.
pub fn latency_line(mut ns: Vec<u64>) -> String {
    ns.sort_unstable();
    let at = |q: f64| -> f64 {
        if ns.is_empty() {
            return 0.0;
        }
        let i = ((ns.len() as f64 * q).ceil() as usize).clamp(1, ns.len()) - 1;
        ns[i] as f64 / 1000.0
    };
    format!(
        "{{\"count\":{},\"p50_us\":{:.0},\"p99_us\":{:.0},\"p999_us\":{:.0},\"max_us\":{:.0}}}",
        ns.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_a_prefix() {
        let p = stamped(40);
        assert_eq!(p.len(), 40);
        let mut line = b"topic 1234-uuid ".to_vec();
        line.extend_from_slice(&p);
        assert_eq!(stamp_of(&line), stamp_of(&p));
        assert!(stamp_of(b"no stamp").is_none());
    }
}
