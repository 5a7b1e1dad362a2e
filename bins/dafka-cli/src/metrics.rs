//! The daemons' `--metrics`: what a store and a tower report, served by
//! `dafka-metrics`.

use dafka_metrics::{
    gauge, gauge_family, histogram, Collector, DescriptorEncoder, HealthCheck, MetricsServer,
    NodeCollector, Registry,
};
use dafka_store::Observed;
use std::path::Path;
use std::sync::Arc;

/// Where `dafka_stored` serves metrics unless told otherwise.
pub const STORE_METRICS: &str = "127.0.0.1:7581";
/// Where `dafka_towerd` serves metrics unless told otherwise.
pub const TOWER_METRICS: &str = "127.0.0.1:7580";

/// Where to serve metrics: an address, or none (`off`).
#[derive(Clone, Debug)]
pub struct MetricsAddr(pub Option<String>);

/// `--metrics ADDR`: an address, or `off` (a clap value parser).
pub fn parse_metrics(s: &str) -> Result<MetricsAddr, String> {
    if s == "off" {
        return Ok(MetricsAddr(None));
    }
    s.parse::<std::net::SocketAddr>()
        .map(|_| MetricsAddr(Some(s.to_string())))
        .map_err(|_| format!("'{s}' is not HOST:PORT (an IP address and a port, 0 for any) or off"))
}

/// Serves a node's metrics on `addr` and says where on stderr.
pub fn serve(
    tool: &str,
    addr: &str,
    registry: Registry,
    health: HealthCheck,
) -> anyhow::Result<MetricsServer> {
    let server = MetricsServer::start(addr, registry, health)?;
    eprintln!("{tool}: metrics on http://{}/metrics", server.addr());
    Ok(server)
}

/// A client tool's metrics, if `--metrics` asked for them: the counters
/// of `nodes` and one collector of the tool's own, always healthy.
pub fn serve_client(
    tool: &str,
    addr: &MetricsAddr,
    nodes: Vec<Arc<dafka::NodeStats>>,
    own: Box<dyn Collector>,
) -> anyhow::Result<Option<MetricsServer>> {
    let Some(addr) = &addr.0 else {
        return Ok(None);
    };
    let mut registry = nodes_registry(nodes);
    registry.register_collector(own);
    serve(tool, addr, registry, Box::new(|| Ok(()))).map(Some)
}

/// A registry with the node counters every role has.
pub fn node_registry(stats: Arc<dafka::NodeStats>) -> Registry {
    nodes_registry(vec![stats])
}

/// A registry with the summed counters of several nodes (a producer's
/// partitions).
pub fn nodes_registry(nodes: Vec<Arc<dafka::NodeStats>>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(NodeCollector::summed(nodes)));
    r
}

/// A producer's standing per partition: records published, ACKed by a
/// quorum, and not yet ACKed.
pub struct ProducerCollector {
    probes: Vec<dafka::ProducerProbe>,
}

impl ProducerCollector {
    /// Reads `probes` (one per partition) at each scrape.
    pub fn new(probes: Vec<dafka::ProducerProbe>) -> Self {
        ProducerCollector { probes }
    }
}

impl std::fmt::Debug for ProducerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerCollector")
            .field("partitions", &self.probes.len())
            .finish()
    }
}

impl Collector for ProducerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels: Vec<PartitionLabels> = self
            .probes
            .iter()
            .map(|p| partition_labels(p.topic(), p.partition()))
            .collect();
        let standing: Vec<(u64, u64)> = self
            .probes
            .iter()
            .map(|p| (p.published(), p.acked()))
            .collect();
        let rows = |f: fn(&(u64, u64)) -> u64| {
            labels
                .iter()
                .zip(&standing)
                .map(move |(l, s)| (&l[..], signed(f(s))))
        };
        let published = "Records published (the next offset)";
        gauge_family(
            &mut enc,
            "dafka_producer_published",
            published,
            rows(|s| s.0),
        )?;
        let acked = "Every offset below this is ACKed by min_acks stores";
        gauge_family(&mut enc, "dafka_producer_acked", acked, rows(|s| s.1))?;
        let unacked = "Records published and not yet ACKed by min_acks stores";
        gauge_family(
            &mut enc,
            "dafka_producer_unacked",
            unacked,
            rows(|s| s.0.saturating_sub(s.1)),
        )
    }
}

/// A store's own metrics: per partition head, log start and bytes, write
/// latency, write health and the size of its directory.
#[derive(Debug)]
pub struct StoreCollector {
    seen: Arc<Observed>,
}

impl StoreCollector {
    /// Reads `seen` at each scrape.
    pub fn new(seen: Arc<Observed>) -> Self {
        StoreCollector { seen }
    }
}

/// Bytes in the files of `dir` (not its subdirectories).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    })
}

/// The labels of one partition's series.
type PartitionLabels = [(&'static str, String); 2];

fn partition_labels(topic: &str, partition: dafka::NodeId) -> PartitionLabels {
    [
        ("topic", topic.to_string()),
        ("partition", partition.to_string()),
    ]
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let parts = self.seen.partitions();
        let labels: Vec<PartitionLabels> = parts
            .iter()
            .map(|p| partition_labels(&p.topic, p.partition))
            .collect();
        let each = |f: fn(&dafka_store::StoredHead) -> u64| {
            labels
                .iter()
                .zip(&parts)
                .map(move |(l, p)| (&l[..], signed(f(p))))
        };
        gauge_family(
            &mut enc,
            "dafka_store_partition_head",
            "Highest offset stored, per partition",
            each(|p| p.offset),
        )?;
        gauge_family(
            &mut enc,
            "dafka_store_partition_log_start",
            "Lowest offset held (retention deleted what is below), per partition",
            each(|p| p.log_start),
        )?;
        gauge_family(
            &mut enc,
            "dafka_store_partition_bytes",
            "Bytes held, per partition",
            each(|p| p.bytes),
        )?;
        gauge(
            &mut enc,
            "dafka_store_partitions",
            "Partitions held",
            signed(parts.len() as u64),
        )?;
        histogram(
            &mut enc,
            "dafka_store_write_seconds",
            "Time to write a batch of records, fsync included",
            &self.seen.write_latency,
        )?;
        gauge(
            &mut enc,
            "dafka_store_healthy",
            "1 while writes succeed, 0 while they fail (nothing is ACKed then)",
            i64::from(self.seen.health().is_ok()),
        )?;
        gauge(
            &mut enc,
            "dafka_store_db_bytes",
            "Bytes in the database directory (RocksDB tables and logs)",
            signed(dir_bytes(&self.seen.db)),
        )
    }
}

/// A consumer's metrics: per partition the next offset it delivers, the
/// last known to exist, the lag between them, and (with a name) the
/// committed position. Asked of the consumer at each scrape.
#[derive(Debug)]
pub struct ConsumerCollector {
    probe: dafka::ConsumerProbe,
}

impl ConsumerCollector {
    /// Asks through `probe` at each scrape.
    pub fn new(probe: dafka::ConsumerProbe) -> Self {
        ConsumerCollector { probe }
    }
}

impl Collector for ConsumerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let parts = self
            .probe
            .positions(std::time::Duration::from_secs(1))
            .unwrap_or_default();
        let labels: Vec<PartitionLabels> = parts
            .iter()
            .map(|p| partition_labels(&p.topic, p.partition))
            .collect();
        let rows = |f: &dyn Fn(&dafka::PartitionPosition) -> Option<u64>| {
            labels
                .iter()
                .zip(&parts)
                .filter_map(|(l, p)| f(p).map(|v| (&l[..], signed(v))))
                .collect::<Vec<_>>()
        };
        gauge_family(
            &mut enc,
            "dafka_consumer_position",
            "Next offset the consumer delivers, per partition",
            rows(&|p| Some(p.position)),
        )?;
        gauge_family(
            &mut enc,
            "dafka_consumer_head",
            "Last offset known to exist, per partition",
            rows(&|p| p.head),
        )?;
        gauge_family(
            &mut enc,
            "dafka_consumer_lag",
            "Records known to exist and not yet delivered, per partition",
            rows(&|p| Some(p.lag())),
        )?;
        gauge_family(
            &mut enc,
            "dafka_consumer_committed",
            "Position committed under the consumer's name, per partition",
            rows(&|p| p.committed),
        )
    }
}
