//! Steps of consumer groups: a consumer in a group, and scripted members
//! whose beacons name the group.

use super::{named_id, Mesh};
use cucumber::{given, then, when};
use dafka::{Consumer, GroupEvent, OffsetReset};
use dafka_proto::{NodeId, Role};
use dafka_testkit::TestPeer;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[given(expr = "a consumer in group {string} with offset reset {word}")]
fn a_group_member(w: &mut Mesh, group: String, reset: String) {
    let mut cfg = w.config();
    cfg.consumer.group = group;
    cfg.consumer.offset_reset = match reset.as_str() {
        "earliest" => OffsetReset::Earliest,
        _ => OffsetReset::Latest,
    };
    w.consumer = Some(Consumer::new(&cfg.consumer, &cfg.beacon).expect("consumer starts"));
}

/// Waits for the consumer's next group event; pumps the scripted members
/// meanwhile (their beacons go out when they are polled).
fn next_event(w: &mut Mesh) -> GroupEvent {
    let deadline = Instant::now() + super::timeout();
    loop {
        for peer in w.nodes.values_mut() {
            peer.pump(Duration::ZERO).expect("pump");
        }
        match w
            .consumer()
            .events()
            .recv_timeout(Duration::from_millis(20))
        {
            Ok(e) => return e,
            Err(_) if Instant::now() < deadline => {}
            Err(e) => panic!("no group event: {e}"),
        }
    }
}

fn the_partition(w: &Mesh) -> Vec<(String, NodeId)> {
    vec![("hello".to_string(), w.partition)]
}

#[then("the consumer says the partition is assigned to it")]
fn assigned(w: &mut Mesh) {
    let want = the_partition(w);
    assert_eq!(next_event(w), GroupEvent::Assigned(want));
}

#[then("the consumer says the partition is revoked")]
fn revoked(w: &mut Mesh) {
    let want = the_partition(w);
    assert_eq!(next_event(w), GroupEvent::Revoked(want));
}

#[when(expr = "a member of group {string} that ranks the partition first joins")]
fn a_member_joins(w: &mut Mesh, group: String) {
    let me = w.consumer().id();
    let partitions: BTreeSet<(String, NodeId)> = the_partition(w).into_iter().collect();
    // A member id that wins the partition over the consumer.
    let id = (0..1000)
        .map(|i| named_id(&format!("member-{i}")))
        .find(|m| {
            dafka_consumer::assign(&[me, *m], &partitions)
                .values()
                .all(|o| o == m)
        })
        .expect("some id outranks the consumer");
    let cfg = w.config().beacon;
    let mut peer = TestPeer::join_as(id, Role::Consumer, &cfg).expect("member joins");
    peer.announce(&group, dafka_consumer::topics_hash(["hello"].into_iter()));
    w.nodes.insert("member".into(), peer);
}
