use super::*;

const ME: NodeId = NodeId([0xee; 16]);
const TOWER: NodeId = NodeId([9; 16]);
const S1: NodeId = NodeId([1; 16]);
const S2: NodeId = NodeId([2; 16]);
const PRODUCER: NodeId = NodeId([3; 16]);

fn beacon(node: NodeId, role: Role, age_ms: u32) -> Beacon {
    Beacon {
        node,
        endpoint: format!("tcp://10.0.0.{}:4000", node.0[0]),
        role,
        age_ms,
        ..Default::default()
    }
}

fn hello(peers: Vec<Beacon>) -> Input<AdminCommand, Infallible> {
    Input::Message(Message::TowerHello {
        tower: TOWER,
        peers,
    })
}

fn ask(question: Question) -> Input<AdminCommand, Infallible> {
    Input::Command(AdminCommand {
        question,
        timeout: Duration::from_secs(5),
    })
}

fn state(topic: &str, head: u64) -> PartitionState {
    PartitionState {
        topic: topic.into(),
        partition: PRODUCER,
        head,
        log_start: 0,
        bytes: 10,
        conflict_at: None,
    }
}

fn answer(
    store: NodeId,
    partitions: Vec<PartitionState>,
    more: bool,
) -> Input<AdminCommand, Infallible> {
    Input::Message(Message::DirectPartitions {
        to: ME,
        store,
        partitions,
        more,
    })
}

fn sent(m: &mut AdminMachine) -> (Vec<Message>, Option<Report>) {
    let mut out = Vec::new();
    m.drain(&mut out);
    let mut msgs = Vec::new();
    let mut report = None;
    for o in out {
        match o {
            Output::Send(msg) => msgs.push(msg),
            Output::Deliver(r) => report = Some(r),
            _ => {}
        }
    }
    (msgs, report)
}

#[test]
fn peers_come_from_the_tower_with_their_age() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(ask(Question::Peers), t);
    assert!(sent(&mut m).1.is_none(), "waits for the tower");
    let peers = vec![
        beacon(PRODUCER, Role::Producer, 300),
        beacon(S1, Role::Store, 100),
        beacon(ME, Role::Admin, 0),
    ];
    m.handle(hello(peers), t + Duration::from_millis(10));
    let (_, report) = sent(&mut m);
    let report = report.expect("one tower configured, one answered");
    assert!(report.is_complete());
    assert!(report.silent_stores().is_empty(), "stores are not asked");
    assert_eq!(report.towers, vec![TOWER]);
    let got: Vec<(NodeId, u64)> = report.peers.iter().map(|p| (p.id, p.age_ms)).collect();
    assert_eq!(
        got,
        vec![(S1, 100), (PRODUCER, 300)],
        "stores first, me left out"
    );
    assert!(m.is_done());
}

#[test]
fn a_silent_second_tower_costs_the_grace_period_only() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 2, t);
    m.handle(ask(Question::Peers), t);
    m.handle(hello(vec![]), t);
    assert_eq!(m.next_timeout(), Some(t + TOWER_GRACE));
    m.on_timeout(t + TOWER_GRACE);
    let report = sent(&mut m).1.expect("answered after the grace");
    assert!(!report.is_complete(), "one of two towers");
    assert!(!report.timed_out);
}

#[test]
fn no_tower_means_a_timed_out_report() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(ask(Question::Peers), t);
    assert_eq!(m.next_timeout(), Some(t + Duration::from_secs(5)));
    m.on_timeout(t + Duration::from_secs(5));
    let report = sent(&mut m).1.expect("a report at the deadline");
    assert!(report.timed_out && report.towers.is_empty());
}

#[test]
fn stores_are_asked_until_each_answers_in_full() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(ask(Question::Partitions { topic: None }), t);
    m.handle(
        hello(vec![beacon(S1, Role::Store, 0), beacon(S2, Role::Store, 0)]),
        t,
    );
    let (msgs, _) = sent(&mut m);
    assert!(
        matches!(
            &msgs[..],
            [Message::GetPartitions {
                sender: ME,
                topic: None
            }]
        ),
        "{msgs:?}"
    );
    // S1 answers in two messages; S2 holds nothing.
    m.handle(answer(S1, vec![state("a", 5)], true), t);
    m.handle(answer(S1, vec![state("b", 6)], false), t);
    assert!(sent(&mut m).0.is_empty(), "not before ASK_AGAIN");
    m.on_timeout(t + ASK_AGAIN);
    assert_eq!(sent(&mut m).0.len(), 1, "asked again: S2 has not answered");
    // A repeated answer from S1 is not counted twice.
    m.handle(answer(S1, vec![state("a", 5)], false), t);
    m.handle(answer(S2, vec![], false), t + ASK_AGAIN);
    let report = sent(&mut m).1.expect("everyone answered");
    assert!(report.is_complete());
    let held: Vec<usize> = report
        .stores
        .iter()
        .map(|s| s.partitions.as_ref().map_or(99, Vec::len))
        .collect();
    assert_eq!(held, vec![2, 0]);
}

#[test]
fn a_store_that_never_answers_is_reported_silent() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(
        ask(Question::Partitions {
            topic: Some("a".into()),
        }),
        t,
    );
    m.handle(hello(vec![beacon(S1, Role::Store, 0)]), t);
    m.on_timeout(t + Duration::from_secs(5));
    let report = sent(&mut m).1.expect("a report at the deadline");
    assert!(report.timed_out);
    assert_eq!(report.silent_stores(), vec![S1]);
}

#[test]
fn positions_are_asked_over_every_topic_held() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(
        ask(Question::Positions {
            name: "billing".into(),
        }),
        t,
    );
    m.handle(hello(vec![beacon(S1, Role::Store, 0)]), t);
    m.handle(answer(S1, vec![state("b", 5), state("a", 5)], false), t);
    let (msgs, _) = sent(&mut m);
    let topics = msgs.iter().find_map(|msg| match msg {
        Message::GetPositions { name, topics, .. } if name == "billing" => Some(topics.clone()),
        _ => None,
    });
    assert_eq!(topics, Some(vec!["a".to_string(), "b".to_string()]));
    let reply = |topics: Vec<String>, offset| {
        Input::Message(Message::DirectPositions {
            to: ME,
            store: S1,
            name: "billing".into(),
            topics,
            positions: vec![Position {
                topic: "a".into(),
                partition: PRODUCER,
                offset,
            }],
            more: false,
            from_time_ms: None,
        })
    };
    // An answer to another question is ignored.
    m.handle(reply(vec!["x".into()], 1), t);
    assert!(sent(&mut m).1.is_none());
    m.handle(reply(vec!["a".into(), "b".into()], 3), t);
    let report = sent(&mut m).1.expect("answered");
    assert_eq!(report.stores[0].positions.as_ref().map(Vec::len), Some(1));
    assert!(report.silent_stores().is_empty());
}

#[test]
fn a_leaving_store_is_not_waited_for() {
    let t = Instant::now();
    let mut m = AdminMachine::new(ME, 1, t);
    m.handle(ask(Question::Peers), t);
    let mut bye = beacon(S1, Role::Store, 0);
    m.handle(
        Input::Message(Message::Beacon(beacon(S1, Role::Store, 0))),
        t,
    );
    bye.leaving = true;
    m.handle(Input::Message(Message::Beacon(bye)), t);
    m.handle(hello(vec![]), t);
    let report = sent(&mut m).1.expect("answered");
    assert!(report.peers.is_empty());
}
