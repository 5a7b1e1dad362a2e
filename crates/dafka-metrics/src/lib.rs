//! Prometheus metrics and a health check over HTTP for Dafka nodes.
//!
//! [`MetricsServer`] serves two routes on a thread of its own:
//! `GET /metrics` (the OpenMetrics text of a [`Registry`], encoded by
//! `prometheus-client`) and `GET /healthz` (`200 ok`, or `503` and the
//! reason while the node is unhealthy). Anything else is a 404; a request
//! that is not HTTP gets tiny_http's 400 and the server goes on.
//!
//! Values are read when scraped: collectors ([`NodeCollector`] and the
//! roles' own) look at the counters nodes keep anyway, so metrics cost the
//! data path nothing.

use dafka_proto::{DecodeError, MessageId};
use dafka_protocol::stats::{LatencyBuckets, NodeStats};
use prometheus_client::encoding::{EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use thiserror::Error;

pub use prometheus_client::collector::Collector;
/// What a [`Collector`] writes its metrics to.
pub type DescriptorEncoder<'a> = prometheus_client::encoding::DescriptorEncoder<'a>;
pub use prometheus_client::registry::Registry;

/// Why the metrics server could not start.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// The address does not parse or cannot be bound (in use, not ours).
    #[error("cannot serve metrics on {addr}: {reason}")]
    Bind {
        /// The address given.
        addr: String,
        /// Why, in words.
        reason: String,
    },
}

/// Whether the node is well: `Err(why)` makes `/healthz` answer 503.
pub type HealthCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A running metrics endpoint; stops when dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl MetricsServer {
    /// Serves `registry` and `health` on `addr` (`HOST:PORT`; port 0 picks
    /// a free one: see [`MetricsServer::addr`]).
    pub fn start(
        addr: &str,
        registry: Registry,
        health: HealthCheck,
    ) -> Result<Self, MetricsError> {
        let bind_err = |reason: String| MetricsError::Bind {
            addr: addr.to_string(),
            reason,
        };
        let sock: SocketAddr = addr
            .parse()
            .map_err(|_| bind_err("not an address like 127.0.0.1:7581 or [::1]:7581".into()))?;
        let server = tiny_http::Server::http(sock).map_err(|e| bind_err(e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| bind_err("not an IP socket".into()))?;
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("dafka-metrics".into())
            .spawn(move || serve(&serving, &registry, &health))
            .map_err(|e| bind_err(format!("no thread: {e}")))?;
        Ok(MetricsServer {
            server,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, registry: &Registry, health: &HealthCheck) {
    for req in server.incoming_requests() {
        let get = *req.method() == tiny_http::Method::Get;
        let path = req.url().split('?').next().unwrap_or_default().to_string();
        let (status, body, kind) = match (get, path.as_str()) {
            (true, "/metrics") => {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, registry) {
                    Ok(()) => (200, text, OPENMETRICS),
                    Err(_) => (500, "could not encode the metrics\n".into(), "text/plain"),
                }
            }
            (true, "/healthz") => match health() {
                Ok(()) => (200, "ok\n".into(), "text/plain"),
                Err(why) => (503, format!("unhealthy: {why}\n"), "text/plain"),
            },
            (true, _) => (404, "try /metrics or /healthz\n".into(), "text/plain"),
            (false, _) => (405, "GET only\n".into(), "text/plain"),
        };
        let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", kind) {
            resp = resp.with_header(h);
        }
        // A client that went away is its business.
        let _ = req.respond(resp);
    }
}

/// Writes one counter.
pub fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Writes a counter with one value per value of the label `label`.
pub fn counter_family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in values {
        ConstCounter::new(v).encode(family.encode_family(&[(label, l)])?)?;
    }
    Ok(())
}

/// Writes one gauge.
pub fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Writes a gauge with one value per label set.
pub fn gauge_family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (&'a [(&'a str, String)], i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in values {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a latency histogram in seconds.
pub fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &LatencyBuckets,
) -> Result<(), std::fmt::Error> {
    let (buckets, sum, count) = h.snapshot();
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

/// The counters every node keeps (messages, FETCHes, malformed input,
/// peers), for any role.
#[derive(Debug)]
pub struct NodeCollector {
    nodes: Vec<Arc<NodeStats>>,
}

impl NodeCollector {
    /// Reads `stats` at each scrape.
    pub fn new(stats: Arc<NodeStats>) -> Self {
        Self::summed(vec![stats])
    }

    /// Reads the sum of several nodes' counters at each scrape (the nodes
    /// of a producer's partitions); `dafka_peers` is then their sum too.
    pub fn summed(nodes: Vec<Arc<NodeStats>>) -> Self {
        NodeCollector { nodes }
    }

    fn totals(&self) -> NodeStats {
        let total = NodeStats::default();
        self.nodes.iter().for_each(|n| total.absorb(n));
        total
    }
}

impl NodeCollector {
    fn records(s: &NodeStats, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let get = NodeStats::get;
        for (name, help, c) in [
            (
                "dafka_records_received",
                "Records received, live and repaired",
                &s.records_in,
            ),
            (
                "dafka_record_bytes_received",
                "Content bytes of the records received",
                &s.record_bytes_in,
            ),
            (
                "dafka_records_repaired",
                "Records received in answer to FETCHes (gaps repaired)",
                &s.records_repaired,
            ),
            (
                "dafka_records_sent",
                "Records sent, live and in answer to FETCHes",
                &s.records_out,
            ),
            (
                "dafka_record_bytes_sent",
                "Content bytes of the records sent",
                &s.record_bytes_out,
            ),
        ] {
            counter(enc, name, help, get(c))?;
        }
        Ok(())
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        let s = &totals;
        let get = NodeStats::get;
        let by_id = |c: &[std::sync::atomic::AtomicU64]| {
            MessageId::ALL
                .into_iter()
                .map(|id| (id.name(), get(&c[id.index()])))
                .collect::<Vec<_>>()
        };
        counter_family(
            &mut enc,
            "dafka_messages_received",
            "Valid messages received, by kind (a run of records is one message)",
            "kind",
            by_id(&s.received_by_kind),
        )?;
        counter_family(
            &mut enc,
            "dafka_messages_sent",
            "Messages sent, by kind",
            "kind",
            by_id(&s.sent_by_kind),
        )?;
        Self::records(s, &mut enc)?;
        counter(
            &mut enc,
            "dafka_fetches_sent",
            "FETCHes sent: gaps found and asked for",
            get(&s.fetches),
        )?;
        let malformed = DecodeError::KINDS
            .into_iter()
            .zip(&s.malformed_by_kind)
            .map(|(k, c)| (k, get(c)));
        counter_family(
            &mut enc,
            "dafka_malformed_messages",
            "Messages dropped because they did not decode, by what was wrong",
            "kind",
            malformed,
        )?;
        counter(
            &mut enc,
            "dafka_subscriptions_refused",
            "Peer subscriptions refused (unknown shape or past the limit)",
            get(&s.subscriptions_refused),
        )?;
        counter(
            &mut enc,
            "dafka_keys_refused",
            "Connections refused: key not in the authorized keys (security on)",
            get(&s.keys_refused),
        )?;
        counter(
            &mut enc,
            "dafka_impostor_messages",
            "Messages dropped: not sent with the key of the node they claim to come from (security on)",
            get(&s.impostors),
        )?;
        counter(
            &mut enc,
            "dafka_twin_beacons",
            "Beacons of another node carrying this node's id",
            get(&s.twins),
        )?;
        let peers = i64::try_from(s.peers()).unwrap_or(i64::MAX);
        gauge(&mut enc, "dafka_peers", "Peers connected now", peers)
    }
}
