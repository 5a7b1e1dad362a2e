//! CURVE on a node's or tower's sockets: its keys, the allowlist, and
//! which side of each connection is the server.
//!
//! Every connection has a CURVE server (the side that binds) and a client
//! (the side that connects and must know the server's public key). The
//! server asks its ZAP handler ([`crate::zap`]) whether the client's key
//! is allowed, and every message it then reads from that connection
//! carries the client's key as its `User-Id`. That is why a node's data
//! socket that *receives* is the one that binds: each message read names
//! its sender's key, which the mesh compares with what the message claims.

use crate::keys::{read_authorized, read_pair, KeyError, KeyPair};
use crate::mesh::{zerr, MeshError};
use dafka_protocol::SecurityConfig;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use dafka_sockopt::{reload_on_sighup, request_reload};

/// A node's CURVE identity and whom it lets in.
#[derive(Debug)]
pub struct Curve {
    /// This node's key pair.
    pub pair: KeyPair,
    secret: Vec<u8>,
    /// The towers' public keys, in the order of the towers' endpoints.
    pub towers: Vec<String>,
    /// The public keys allowed to connect.
    pub allow: Arc<Allowlist>,
}

impl Curve {
    /// Reads the key files `cfg` names; `None` when security is off.
    /// Warnings (a secret key others may read) are logged.
    pub fn load(cfg: &SecurityConfig) -> Result<Option<Curve>, KeyError> {
        if !cfg.enabled {
            return Ok(None);
        }
        let mut warnings = Vec::new();
        let pair = read_pair(Path::new(&cfg.secret_key_file), &mut warnings)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let secret = zmq::z85_decode(&pair.secret).unwrap_or_default();
        let allow = Allowlist::load(PathBuf::from(&cfg.authorized_keys))?;
        Ok(Some(Curve {
            pair,
            secret,
            towers: cfg.tower_keys(),
            allow: Arc::new(allow),
        }))
    }

    /// Makes `s` the CURVE server of its connections (set before `bind`).
    pub fn serve(&self, s: &zmq::Socket) -> Result<(), MeshError> {
        s.set_curve_server(true)
            .and_then(|()| s.set_curve_secretkey(&self.secret))
            .and_then(|()| s.set_zap_domain(ZAP_DOMAIN))
            .map_err(zerr("set", "curve server"))
    }

    /// Makes `s` a CURVE client; [`Curve::expect`] names each server's key.
    pub fn client(&self, s: &zmq::Socket) -> Result<(), MeshError> {
        let public = zmq::z85_decode(&self.pair.public).unwrap_or_default();
        s.set_curve_publickey(&public)
            .and_then(|()| s.set_curve_secretkey(&self.secret))
            .map_err(zerr("set", "curve client"))
    }

    /// The server key the next `connect` on `s` must find (libzmq takes
    /// it when connecting, so each connection can have its own).
    pub fn expect(s: &zmq::Socket, server_key: &str) -> Result<(), MeshError> {
        let key = zmq::z85_decode(server_key).map_err(|_| MeshError::BadKey(server_key.into()))?;
        s.set_curve_serverkey(&key)
            .map_err(zerr("set", "curve server key"))
    }
}

/// The ZAP domain Dafka's servers ask about (one handler answers all).
const ZAP_DOMAIN: &str = "dafka";

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: i64,
    modified_ns: i64,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.mtime(),
        modified_ns: m.mtime_nsec(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// The public keys allowed in: an `authorized_keys` file, read again when
/// it changes or on [`request_reload`].
#[derive(Debug)]
pub struct Allowlist {
    path: PathBuf,
    state: Mutex<ListState>,
    generation: AtomicU64,
}

#[derive(Debug)]
struct ListState {
    keys: Arc<HashSet<String>>,
    stamp: Option<Stamp>,
    reloads: u64,
}

impl Allowlist {
    /// Reads `path`; an unreadable or malformed file is an error.
    pub fn load(path: PathBuf) -> Result<Allowlist, KeyError> {
        let stamp = stamp(&path);
        let keys = read_authorized(&path)?;
        Ok(Allowlist {
            path,
            state: Mutex::new(ListState {
                keys: Arc::new(keys),
                stamp,
                reloads: dafka_sockopt::reloads(),
            }),
            generation: AtomicU64::new(0),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `key` (Z85) may connect.
    pub fn allows(&self, key: &str) -> bool {
        self.snapshot().1.contains(key)
    }

    /// The keys now, with a number that changes whenever they may have.
    pub fn snapshot(&self) -> (u64, Arc<HashSet<String>>) {
        let keys = match self.state.lock() {
            Ok(s) => s.keys.clone(),
            Err(p) => p.into_inner().keys.clone(),
        };
        (self.generation.load(Ordering::Acquire), keys)
    }

    /// The number [`Allowlist::snapshot`] returns, alone (cheap).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the file again if it changed or a reload was requested.
    /// A file that has become unreadable or malformed keeps the old list,
    /// said once per change of the file.
    pub fn reload_if_changed(&self) {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let now = stamp(&self.path);
        let asked = dafka_sockopt::reloads();
        if now == st.stamp && asked == st.reloads {
            return;
        }
        st.stamp = now;
        st.reloads = asked;
        match read_authorized(&self.path) {
            Ok(keys) => {
                let (added, removed) = (
                    keys.difference(&st.keys).count(),
                    st.keys.difference(&keys).count(),
                );
                let count = keys.len();
                // In force before it is said: whoever reads the log line
                // may rely on it.
                st.keys = Arc::new(keys);
                self.generation.fetch_add(1, Ordering::Release);
                let file = self.path.display();
                if removed > 0 {
                    tracing::warn!(%file, keys = count, added,
                        "authorized keys read again: {removed} key(s) removed, their connections are cut");
                } else {
                    tracing::info!(%file, keys = count, added, "authorized keys read again");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "authorized keys not read again: keeping the {} keys read before", st.keys.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;

    #[test]
    fn an_allowlist_follows_its_file_and_keeps_the_old_keys_when_it_breaks() {
        let d = tempfile::tempdir().expect("dir");
        let path = d.path().join("authorized_keys");
        let (a, b) = (generate().expect("a"), generate().expect("b"));
        std::fs::write(&path, format!("{}\n{}\n", a.public, b.public)).expect("write");
        let list = Allowlist::load(path.clone()).expect("load");
        assert!(list.allows(&a.public) && list.allows(&b.public));
        let g = list.generation();
        list.reload_if_changed();
        assert_eq!(list.generation(), g, "unchanged file: not read again");
        std::fs::write(&path, format!("# b removed\n{}\n", a.public)).expect("write");
        list.reload_if_changed();
        assert!(list.allows(&a.public) && !list.allows(&b.public));
        assert!(list.generation() > g);
        let g = list.generation();
        request_reload();
        list.reload_if_changed();
        assert!(
            list.generation() > g,
            "a requested reload reads the file even unchanged"
        );
        std::fs::write(&path, "garbage\n").expect("write");
        list.reload_if_changed();
        assert!(list.allows(&a.public), "a broken file keeps the old list");
    }
}
