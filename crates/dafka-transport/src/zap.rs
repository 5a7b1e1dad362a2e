//! The ZAP handler: who may connect to a CURVE server of this node.
//!
//! libzmq asks, for each CURVE handshake on a server socket, the socket
//! bound at `inproc://zeromq.zap.01` in the same context (ZeroMQ RFC 27).
//! Ours admits the client keys in the allowlist, names the key as the
//! connection's `User-Id` (every message read from it carries it), and
//! refuses the others, counting and logging each refusal at a rate limit.
//! It runs on a thread of its own so a handshake never waits for a node's
//! driver to finish a turn.

use crate::mesh::{new_socket, zerr, MeshError};
use crate::security::Allowlist;
use dafka_protocol::tuning::WARN_PERIOD;
use dafka_protocol::{NodeStats, RateLimit};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// How often the handler looks at the allowlist's file when no handshake
/// asks: a removed key is cut off within about this long.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// A running ZAP handler; dropping it stops the thread.
pub struct Zap {
    stop: zmq::Socket,
    thread: Option<JoinHandle<()>>,
}

impl Zap {
    /// Binds the handler in `ctx` (before any server socket binds) and
    /// starts its thread.
    pub fn start(
        ctx: &zmq::Context,
        allow: Arc<Allowlist>,
        stats: Arc<NodeStats>,
    ) -> Result<Zap, MeshError> {
        let rep = new_socket(ctx, zmq::REP, "zap")?;
        rep.bind(ZAP_ENDPOINT).map_err(zerr("bind", ZAP_ENDPOINT))?;
        let stop_at = format!("inproc://dafka-zap-stop-{:p}", Arc::as_ptr(&allow));
        let stop = new_socket(ctx, zmq::PAIR, "zap stop")?;
        stop.bind(&stop_at).map_err(zerr("bind", &stop_at))?;
        let told = new_socket(ctx, zmq::PAIR, "zap stop")?;
        told.connect(&stop_at).map_err(zerr("connect", &stop_at))?;
        let thread = std::thread::Builder::new()
            .name("dafka-zap".into())
            .spawn(move || Handler::new(allow, stats).run(&rep, &told))
            .map_err(MeshError::Thread)?;
        Ok(Zap {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Zap {
    fn drop(&mut self) {
        let _ = self.stop.send(&b""[..], 0);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Handler {
    allow: Arc<Allowlist>,
    stats: Arc<NodeStats>,
    warn: RateLimit,
}

impl Handler {
    fn new(allow: Arc<Allowlist>, stats: Arc<NodeStats>) -> Self {
        Handler {
            allow,
            stats,
            warn: RateLimit::new(WARN_PERIOD),
        }
    }

    fn run(mut self, rep: &zmq::Socket, stop: &zmq::Socket) {
        loop {
            let mut items = [
                rep.as_poll_item(zmq::POLLIN),
                stop.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, CHECK_EVERY.as_millis() as i64) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(_) => return,
            }
            if items[1].is_readable() {
                return;
            }
            self.allow.reload_if_changed();
            if items[0].is_readable() {
                let Ok(request) = rep.recv_multipart(zmq::DONTWAIT) else {
                    continue;
                };
                let reply = self.answer(&request);
                let _ = rep.send_multipart(reply, 0);
            }
        }
    }

    /// The reply to one request: version, request id, status, text,
    /// user id, metadata.
    fn answer(&mut self, req: &[Vec<u8>]) -> Vec<Vec<u8>> {
        // version, id, domain, address, routing id, mechanism, credentials
        let id = req.get(1).cloned().unwrap_or_default();
        let reply = |code: &str, text: &str, user: &str| {
            vec![
                b"1.0".to_vec(),
                id.clone(),
                code.as_bytes().to_vec(),
                text.as_bytes().to_vec(),
                user.as_bytes().to_vec(),
                Vec::new(),
            ]
        };
        let curve = req.len() == 7 && req[0] == b"1.0" && req[5] == b"CURVE";
        let key = curve
            .then(|| <&[u8; 32]>::try_from(&req[6][..]).ok())
            .flatten()
            .and_then(|k| zmq::z85_encode(k).ok());
        let address = req.get(3).map(|a| String::from_utf8_lossy(a).into_owned());
        match key {
            Some(k) if self.allow.allows(&k) => reply("200", "OK", &k),
            Some(k) => {
                self.refused(&k, address.as_deref().unwrap_or("?"));
                reply("400", "key not authorized", "")
            }
            None => reply("400", "CURVE only", ""),
        }
    }

    fn refused(&mut self, key: &str, address: &str) {
        NodeStats::bump(&self.stats.keys_refused);
        if let Some(suppressed) = self.warn.allow(Instant::now()) {
            tracing::warn!(%key, peer = %address, file = %self.allow.path().display(), suppressed,
                "refused a connection: its key is not in the authorized keys");
        }
    }
}
