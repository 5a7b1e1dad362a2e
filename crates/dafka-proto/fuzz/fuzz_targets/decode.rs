//! Feeds arbitrary bytes, split into frames, to the decoder: it must never
//! panic, and whatever it accepts (one message, or a run of records) must
//! re-encode to frames that decode to the same messages again.
#![no_main]

use dafka_proto::{decode_all, encode, encode_run, Frames, Message};
use libfuzzer_sys::fuzz_target;

/// The frames `msgs` came from: one message, or a run of records.
fn reencode(msgs: &[Message]) -> Frames {
    if let [one] = msgs {
        return encode(one);
    }
    let to = match msgs.first() {
        Some(Message::DirectRecord { to, .. }) => Some(*to),
        _ => None,
    };
    let run: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Record(r) | Message::DirectRecord { record: r, .. } => Some(r.clone()),
            _ => None,
        })
        .collect();
    encode_run(to, &run)
}

fuzz_target!(|data: &[u8]| {
    // The first byte says how to cut the rest into up to four frames.
    let Some((&cuts, rest)) = data.split_first() else { return };
    let n = (cuts % 4) as usize + 1;
    let step = rest.len() / n + 1;
    let frames: Vec<&[u8]> = rest.chunks(step).collect();
    let mut msgs = Vec::new();
    if decode_all(&frames, &mut msgs).is_ok() {
        let again = reencode(&msgs);
        let mut back = Vec::new();
        assert!(decode_all(&again.to_vec(), &mut back).is_ok());
        assert_eq!(back, msgs);
    }
    let _ = dafka_proto::stored::records_from_bytes(data, &mut Vec::new());
});
