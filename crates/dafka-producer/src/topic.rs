//! A producer of several partitions of one topic.
//!
//! Each partition is a [`Producer`] of its own: its own id, offsets,
//! spool and node on the mesh, so stores and consumers see N ordinary
//! single-writer partitions and nothing in the protocol changes. What this
//! adds is the choice of partition: by the record's key (a stable hash, so
//! one key's records stay in one partition and in order) or round robin.
//! The cost of the design is a thread and four sockets per partition.

use crate::config::ProducerConfig;
use crate::handle::{CloseReport, Producer, ProducerError, ProducerProbe};
use crate::record::ProducerRecord;
use crate::Content;
use dafka_proto::NodeId;
use dafka_protocol::{ConfigError, MeshConfig, NodeStats};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The partition.
    pub partition: NodeId,
    /// Its offset there.
    pub offset: u64,
}

/// The partition a key goes to among `n`: FNV-1a (64 bit) of the key's
/// bytes, modulo `n`. Fixed forever: a key must land in the same
/// partition on every run and every machine.
pub fn partition_for_key(key: &[u8], n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

/// A producer owning `producer.partitions` partitions of one topic.
///
/// ```no_run
/// use dafka_producer::{ProducerConfig, ProducerRecord, TopicProducer};
/// use dafka_protocol::MeshConfig;
/// let cfg = ProducerConfig { partitions: 8, ..Default::default() };
/// let p = TopicProducer::new("jobs", &cfg, &MeshConfig::default())?;
/// let sent = p.send(ProducerRecord::new("resize a.png").key("a.png"))?;
/// println!("partition {} offset {}", sent.partition, sent.offset);
/// assert_eq!(p.close().unacked, 0);
/// # Ok::<(), dafka_producer::ProducerError>(())
/// ```
pub struct TopicProducer {
    topic: String,
    parts: Vec<Producer>,
    next: AtomicUsize,
}

impl TopicProducer {
    /// Starts the producer's partitions. With `producer.state_dir`, each
    /// partition keeps its spool in a subdirectory (`p0`, `p1`, …; with one
    /// partition, the directory itself, as a [`Producer`] does), and a
    /// restart resumes every one of them.
    pub fn new(
        topic: &str,
        cfg: &ProducerConfig,
        mesh: &MeshConfig,
    ) -> Result<TopicProducer, ProducerError> {
        cfg.validate()?;
        let dirs = partition_dirs(&cfg.state_dir, cfg.partitions)?;
        let mut parts = Vec::with_capacity(cfg.partitions);
        for dir in dirs {
            let one = ProducerConfig {
                state_dir: dir,
                partitions: 1,
                ..cfg.clone()
            };
            parts.push(Producer::new(topic, &one, mesh)?);
        }
        Ok(TopicProducer {
            topic: topic.to_string(),
            parts,
            next: AtomicUsize::new(0),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partitions, in the order keys are hashed over.
    pub fn partitions(&self) -> Vec<NodeId> {
        self.parts.iter().map(Producer::partition).collect()
    }

    /// The partition a record goes to: its key's, or the next in turn.
    fn route(&self, record: &ProducerRecord) -> usize {
        match &record.key {
            Some(k) => partition_for_key(k, self.parts.len()),
            None => self.next.fetch_add(1, Relaxed) % self.parts.len(),
        }
    }

    /// Publishes a record (see [`Producer::send`]) to its partition.
    pub fn send(&self, record: ProducerRecord) -> Result<Sent, ProducerError> {
        let p = &self.parts[self.route(&record)];
        let offset = p.send(record)?;
        Ok(Sent {
            partition: p.partition(),
            offset,
        })
    }

    /// Publishes `content` with no key: round robin over the partitions.
    pub fn publish(&self, content: impl Content) -> Result<Sent, ProducerError> {
        self.send(ProducerRecord::new(content))
    }

    /// Waits until every record published so far, in every partition, is
    /// ACKed by `min_acks` stores; says whether that happened in `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.parts
            .iter()
            .all(|p| p.flush(deadline.saturating_duration_since(Instant::now())))
    }

    /// Records published and not yet ACKed by a quorum, over all partitions.
    pub fn unacked(&self) -> u64 {
        self.parts.iter().map(Producer::unacked).sum()
    }

    /// Each partition's node counters.
    pub fn stats(&self) -> Vec<Arc<NodeStats>> {
        self.parts.iter().map(Producer::stats).collect()
    }

    /// The fewest peers any partition's node is connected to.
    pub fn peers(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.stats().peers())
            .min()
            .unwrap_or(0)
    }

    /// Handles to read each partition's progress from any thread.
    pub fn probes(&self) -> Vec<ProducerProbe> {
        self.parts.iter().map(Producer::probe).collect()
    }

    /// Closes every partition at once (each waits up to
    /// `producer.close_timeout` for its ACKs) and adds up what was left.
    pub fn close(self) -> CloseReport {
        let reports: Vec<CloseReport> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .parts
                .into_iter()
                .map(|p| s.spawn(move || p.close()))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        CloseReport {
            published: reports.iter().map(|r| r.published).sum(),
            unacked: reports.iter().map(|r| r.unacked).sum(),
        }
    }
}

/// The state directory of each of `n` partitions: `dir` itself for one
/// (what a single-partition producer has always used), `dir/p0`… for
/// more. A directory laid out for another count is refused: the keys'
/// partitions would change, and a partition left out would keep its
/// unACKed records to itself.
fn partition_dirs(dir: &str, n: usize) -> Result<Vec<String>, ProducerError> {
    if dir.is_empty() {
        return Ok(vec![String::new(); n]);
    }
    let root = Path::new(dir);
    let held = held_partitions(root);
    let single = root.join("partition").exists();
    let refuse = |has: String| {
        ProducerError::Config(ConfigError::new(
            "producer.state_dir",
            format!("{dir} holds {has}, and producer.partitions is {n}: use the count it was made with, or another directory"),
        ))
    };
    if n == 1 {
        return match held {
            0 => Ok(vec![dir.to_string()]),
            k => Err(refuse(format!("{k} partitions"))),
        };
    }
    if single {
        return Err(refuse("one partition".into()));
    }
    if held != 0 && held != n {
        return Err(refuse(format!("{held} partitions")));
    }
    Ok((0..n)
        .map(|i| sub(root, i).to_string_lossy().into_owned())
        .collect())
}

fn sub(root: &Path, i: usize) -> PathBuf {
    root.join(format!("p{i}"))
}

/// How many partition subdirectories (`p0`, `p1`, …, in sequence) `root`
/// holds.
fn held_partitions(root: &Path) -> usize {
    (0..).take_while(|i| sub(root, *i).is_dir()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_goes_to_the_same_partition_and_keys_spread() {
        // Pinned: changing the hash would move every key.
        assert_eq!(
            partition_for_key(b"a.png", 8),
            partition_for_key(b"a.png", 8)
        );
        assert_eq!(
            partition_for_key(b"", 8),
            (0xcbf2_9ce4_8422_2325u64 % 8) as usize
        );
        let mut counts = [0usize; 8];
        for i in 0..8000 {
            counts[partition_for_key(format!("job-{i}").as_bytes(), 8)] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn a_state_directory_keeps_its_partition_count() {
        let d = tempfile::tempdir().expect("dir");
        let dir = d.path().to_str().expect("utf-8");
        let eight = partition_dirs(dir, 8).expect("a new directory");
        assert_eq!(eight.len(), 8);
        assert!(eight[3].ends_with("p3"));
        for p in &eight {
            std::fs::create_dir_all(p).expect("mkdir");
        }
        assert_eq!(partition_dirs(dir, 8).expect("same count"), eight);
        let e = partition_dirs(dir, 4).expect_err("another count");
        assert!(e.to_string().contains("holds 8 partitions"), "{e}");
        let e = partition_dirs(dir, 1).expect_err("one");
        assert!(e.to_string().contains("producer.partitions is 1"), "{e}");
    }
}
