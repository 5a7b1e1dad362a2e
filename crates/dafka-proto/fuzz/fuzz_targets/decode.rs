//! Feeds arbitrary bytes, split into frames, to the decoder: it must never
//! panic, and whatever it accepts must re-encode to frames it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how to cut the rest into up to four frames.
    let Some((&cuts, rest)) = data.split_first() else { return };
    let n = (cuts % 4) as usize + 1;
    let step = rest.len() / n + 1;
    let frames: Vec<&[u8]> = rest.chunks(step).collect();
    if let Ok(msg) = dafka_proto::decode(&frames) {
        let again = dafka_proto::encode(&msg);
        assert_eq!(dafka_proto::decode(&again.to_vec()).ok(), Some(msg));
    }
    let _ = dafka_proto::stored::record_from_bytes(data);
});
