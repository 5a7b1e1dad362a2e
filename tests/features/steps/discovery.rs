//! Steps of the tower scenarios.

use super::{timeout, Mesh};
use cucumber::{given, then, when};
use dafka_proto::{encode, Beacon, Message, Role};
use std::time::{Duration, Instant};

#[given(expr = "a scripted store {string}")]
#[when(expr = "a scripted store {string} joins")]
fn node(w: &mut Mesh, name: String) {
    let peer = w.join(Role::Store);
    w.nodes.insert(name, peer);
}

/// Lets every scripted node run until `done` holds, for at most the
/// event timeout.
fn pump_until(w: &mut Mesh, what: &str, mut done: impl FnMut(&Mesh) -> bool) {
    let deadline = Instant::now() + timeout();
    while !done(w) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {:?}",
            timeout()
        );
        for peer in w.nodes.values_mut() {
            peer.pump(Duration::from_millis(10)).expect("pump");
        }
    }
}

#[given(expr = "node {string} is connected to {int} peer(s)")]
#[then(expr = "node {string} is connected to {int} peer(s)")]
fn connected(w: &mut Mesh, name: String, n: usize) {
    pump_until(w, &format!("{name} has {n} peers"), |w| {
        w.nodes[&name].peers() == n
    });
}

#[given(expr = "node {string} has reached the tower")]
fn reached(w: &mut Mesh, _name: String) {
    let n = w.nodes.len();
    pump_until(w, "the tower knows every node", |w| {
        w.cluster.as_ref().map_or(0, |c| c.tower_peers()) >= n
    });
}

#[when(expr = "node {string} falls silent")]
fn silent(w: &mut Mesh, name: String) {
    w.nodes.remove(&name);
}

#[when(expr = "node {string} leaves")]
fn leaves(w: &mut Mesh, name: String) {
    if let Some(mut p) = w.nodes.remove(&name) {
        p.leave();
    }
}

/// A raw publisher into the tower's beacon input, once the tower listens.
fn raw_to_tower(w: &mut Mesh) -> (zmq::Context, zmq::Socket) {
    let input = w.config().beacon.sub_address;
    let ctx = zmq::Context::new();
    let sock = ctx.socket(zmq::XPUB).expect("socket");
    // Closing never waits on a beacon the tower did not take.
    sock.set_linger(0).expect("linger");
    sock.set_rcvtimeo(timeout().as_millis() as i32)
        .expect("rcvtimeo");
    sock.connect(&input).expect("connect");
    // The tower's subscription arriving means it will hear what we send.
    let sub = sock.recv_bytes(0).expect("the tower subscribes");
    assert_eq!(sub.first(), Some(&1));
    (ctx, sock)
}

fn send_beacon(sock: &zmq::Socket, name: &str, endpoint: &str) {
    let b = Beacon {
        node: super::named_id(name),
        endpoint: endpoint.into(),
        role: Role::Store,
        ..Default::default()
    };
    let f = encode(&Message::Beacon(b));
    sock.send_multipart([f.key, f.header], 0).expect("send");
}

#[when(expr = "garbage and then a beacon for a node {string} reach the tower")]
fn garbage_to_tower(w: &mut Mesh, name: String) {
    let (ctx, sock) = raw_to_tower(w);
    sock.send_multipart([&b"Zjunk"[..], &[0xDE, 0xAD][..]], 0)
        .expect("send");
    send_beacon(&sock, &name, "tcp://127.0.0.1:9");
    w.raw = Some((ctx, sock));
}

#[when(expr = "a beacon for a store {string} at {string} reaches the tower")]
fn odd_beacon(w: &mut Mesh, name: String, endpoint: String) {
    let (ctx, sock) = raw_to_tower(w);
    send_beacon(&sock, &name, &endpoint);
    w.raw = Some((ctx, sock));
}

#[then(expr = "node {string} is connected to at least {int} peer(s)")]
fn connected_at_least(w: &mut Mesh, name: String, n: usize) {
    pump_until(w, &format!("{name} has {n} or more peers"), |w| {
        w.nodes[&name].peers() >= n
    });
}

#[then(expr = "the tower has counted {int} malformed message(s)")]
fn tower_malformed(w: &mut Mesh, n: u64) {
    let stats = w
        .cluster
        .as_ref()
        .and_then(|c| c.tower_stats())
        .expect("tower");
    assert_eq!(
        stats.malformed.load(std::sync::atomic::Ordering::Relaxed),
        n
    );
}
