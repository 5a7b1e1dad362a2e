//! What can be wrong with a message on the wire.
//!
//! Kept apart from every role's own errors: a `DecodeError` says only that a
//! frame sequence is not a valid Dafka message, and why. Roles count and log
//! it, drop the message and carry on.

use thiserror::Error;

/// Why a sequence of ZeroMQ frames is not a valid Dafka message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The message had no frames, or its first (routing) frame was empty.
    #[error("empty message: no routing frame")]
    Empty,
    /// The first byte of the routing frame names no Dafka message.
    #[error("unknown message id 0x{0:02x}")]
    UnknownMessageId(u8),
    /// The message has the wrong number of frames for its type.
    #[error("{kind}: expected {expected} frames, got {got}")]
    FrameCount {
        /// The message type, as named in the RFC.
        kind: &'static str,
        /// How many frames this type always has.
        expected: usize,
        /// How many arrived.
        got: usize,
    },
    /// The header frame is shorter than the signature and version bytes.
    #[error("header frame too short: need {need} bytes, have {have}")]
    ShortHeader {
        /// Bytes needed before the protobuf body starts.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The header frame does not start with the Dafka signature 0xDA 0xFA.
    #[error("bad signature {0:02x?}, expected [da, fa]")]
    BadSignature([u8; 2]),
    /// The protocol version byte is one this codec does not speak.
    #[error("unsupported protocol version {0}, this node speaks {1}")]
    UnsupportedVersion(u8, u8),
    /// The protobuf body does not decode.
    #[error("{kind}: malformed body: {reason}")]
    MalformedBody {
        /// The message type.
        kind: &'static str,
        /// prost's description of the fault.
        reason: String,
    },
    /// A field is larger than the protocol allows.
    #[error("{field}: {len} exceeds the limit of {max}")]
    Oversize {
        /// Which field.
        field: &'static str,
        /// Its length (bytes, or items for lists).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field has a value the protocol forbids (a 15-byte id, an empty topic).
    #[error("{field}: {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The routing frame does not match the body (a RECORD for topic "a"
    /// under the routing key of topic "b").
    #[error("{kind}: routing key does not match the body")]
    RoutingMismatch {
        /// The message type.
        kind: &'static str,
    },
    /// A RECORD or DIRECT-RECORD carrying a run of several records was
    /// given to `decode`, which returns one message (use `decode_all`).
    #[error("a run of {0} records: decode it with decode_all")]
    Run(usize),
}

impl DecodeError {
    /// Every kind of fault, as [`DecodeError::kind`] names it: the labels
    /// of a per-kind counter.
    pub const KINDS: [&'static str; 11] = [
        "empty",
        "unknown_id",
        "frame_count",
        "short_header",
        "bad_signature",
        "version",
        "malformed_body",
        "oversize",
        "invalid_field",
        "routing_mismatch",
        "run",
    ];

    /// This fault's place in [`DecodeError::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            DecodeError::Empty => 0,
            DecodeError::UnknownMessageId(_) => 1,
            DecodeError::FrameCount { .. } => 2,
            DecodeError::ShortHeader { .. } => 3,
            DecodeError::BadSignature(_) => 4,
            DecodeError::UnsupportedVersion(..) => 5,
            DecodeError::MalformedBody { .. } => 6,
            DecodeError::Oversize { .. } => 7,
            DecodeError::InvalidField { .. } => 8,
            DecodeError::RoutingMismatch { .. } => 9,
            DecodeError::Run(_) => 10,
        }
    }

    /// A short name of this kind of fault, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }
}
