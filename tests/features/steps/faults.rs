//! Steps that send malformed input.

use super::{scripted::record, Mesh};
use cucumber::when;
use dafka_proto::{encode, encode_run, routing, Message, MessageId};

/// Frames of a RECORD for offset 999 of "hello", damaged as `fault` says.
fn damaged(partition: dafka_proto::NodeId, fault: &str) -> Vec<Vec<u8>> {
    let f = encode(&Message::Record(record(
        "hello",
        partition,
        999,
        "garbage".into(),
    )));
    let (mut key, mut header, content) = (
        f.key,
        f.header,
        f.content.map(|c| c.to_vec()).unwrap_or_default(),
    );
    match fault {
        "a bad signature" => header[0] = 0xDE,
        "an unknown version" => header[2] = 9,
        "a truncated body" => header.truncate(header.len() - 5),
        "a missing frame" => return vec![key, header],
        "a run longer than its content" => {
            let run = [999, 1000].map(|o| record("hello", partition, o, "garbage".into()));
            let f = encode_run(None, &run);
            // The second record says 7 bytes; leave 5 in all.
            return vec![f.key, f.header, b"garba".to_vec()];
        }
        "an extra frame" => return vec![key, header, content, b"extra".to_vec()],
        "random bytes" => {
            // Fixed "random" bytes: the run is repeatable.
            let junk = |n: usize, s: u8| (0..n).map(|i| (i as u8).wrapping_mul(s) ^ 0x5A).collect();
            return vec![key, junk(61, 37), junk(13, 101)];
        }
        "a 100 MB topic name" => {
            let huge = "t".repeat(100 << 20);
            header = encode(&Message::Record(record(&huge, partition, 0, "x".into()))).header;
        }
        "a key that does not match its body" => {
            key = routing::topic_key(MessageId::Record, "hello").to_vec()
        }
        other => panic!("unknown fault {other:?}"),
    }
    if fault == "a key that does not match its body" {
        let other = encode(&Message::Record(record(
            "hellp",
            partition,
            999,
            "garbage".into(),
        )));
        header = other.header;
    }
    vec![key, header, content]
}

#[when(expr = "the scripted producer sends a RECORD with {}")]
fn sends_damaged(w: &mut Mesh, fault: String) {
    // Building a 100 MB message can take longer than a beacon timeout on a
    // loaded machine: keep the scripted peer beaconing meanwhile, or the
    // node under test drops it as silent and misses what it sends next.
    let partition = w.partition;
    let frames = std::thread::scope(|s| {
        let build = s.spawn(|| damaged(partition, &fault));
        while !build.is_finished() {
            w.peer()
                .pump(std::time::Duration::from_millis(20))
                .expect("pump");
        }
        build.join().expect("frames")
    });
    let parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    w.peer().send_raw(&parts).expect("send");
}

#[when("the scripted consumer sends garbage to the producer")]
fn garbage_to_producer(w: &mut Mesh) {
    let key = routing::node_key(
        MessageId::Fetch,
        &w.producer.as_ref().expect("producer").partition(),
    );
    let parts: [&[u8]; 2] = [&key, &[0xDE, 0xAD, 0xBE, 0xEF]];
    w.peer().send_raw(&parts).expect("send");
}
