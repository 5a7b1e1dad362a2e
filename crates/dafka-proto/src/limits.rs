//! Protocol limits. A message past any of them is rejected by the decoder,
//! so no peer can make a node allocate or store something absurd.

/// Longest topic name in bytes (Kafka's limit, for familiarity).
pub const MAX_TOPIC_LEN: usize = 249;
/// Largest record content: 64 MiB.
pub const MAX_CONTENT_LEN: usize = 64 << 20;
/// Largest header frame (signature, version and protobuf body): 1 MiB.
pub const MAX_HEADER_FRAME_LEN: usize = 1 << 20;
/// Most bytes of a record's key and headers together (names and values):
/// half the header frame, so a record of one partition always fits in one
/// message with room for its topic and ids.
pub const MAX_RECORD_META_LEN: usize = 512 << 10;
/// Most user headers on one record.
pub const MAX_RECORD_HEADERS: usize = 256;
/// Most positions in one COMMIT or DIRECT-POSITIONS (a consumer with more
/// partitions commits in several messages).
pub const MAX_POSITIONS: usize = 4096;
/// Most partitions described in one DIRECT-PARTITIONS.
pub const MAX_PARTITION_STATES: usize = 4096;
/// Most topics in one CONSUMER-HELLO (and GET-POSITIONS, DIRECT-POSITIONS).
pub const MAX_HELLO_TOPICS: usize = 4096;
/// Most peers in one TOWER-HELLO.
pub const MAX_TOWER_PEERS: usize = 4096;
/// Longest endpoint string in a beacon.
pub const MAX_ENDPOINT_LEN: usize = 256;
/// Most records in one RECORD or DIRECT-RECORD (a run, see `encode_run`).
pub const MAX_RUN_RECORDS: usize = 4096;
/// Longest reason text in a DIRECT-HEAD that reports an unreadable range.
pub const MAX_REASON_LEN: usize = 1024;
