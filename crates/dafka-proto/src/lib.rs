//! The Dafka wire codec: message types, protobuf bodies and ZeroMQ framing.
//!
//! This crate is bytes in, bytes out. It owns no socket, spawns no thread and
//! reads no clock: roles hand it frames they received and get a validated
//! [`Message`] back (or a [`DecodeError`] saying exactly what was wrong), and
//! hand it a `Message` to get the frames to send. The wire layout is
//! specified in `rfc/1-dafka.md` and pinned by golden tests.
//!
//! ```
//! use dafka_proto::{decode, encode, Head, Message, NodeId};
//! let msg = Message::Head(Head { topic: "hello".into(), partition: NodeId([7; 16]), offset: 41 });
//! let frames = encode(&msg);
//! assert_eq!(frames.key, b"Hhello\0");
//! assert_eq!(decode(&frames.to_vec()).unwrap(), msg);
//! ```

mod admin;
mod codec;
mod error;
mod key;
pub mod limits;
mod positions;
pub mod routing;
pub mod stored;
mod types;

/// The protobuf bodies generated from `proto/dafka.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/dafka.v1.rs"));
}

pub use codec::{
    continues, decode, decode_all, decode_all_shared, encode, encode_run, encode_run_of,
    validate_topic, Frames, FromMessage, SIGNATURE, VERSION,
};
pub use error::DecodeError;
pub use key::{is_z85_key, KEY_CHARS, Z85};
pub use routing::MessageId;
pub use types::{
    meta_len, Ack, Beacon, Fetch, Head, HeadState, Message, NodeId, PartitionState, Position,
    Record, Role, RunRecord,
};
