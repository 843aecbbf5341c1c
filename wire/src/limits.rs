//! Every size limit of the wire layer, with the attack or corruption each one guards against.

/// Largest frame accepted, counted as RocketMQ's length field counts it (everything after the
/// 4-byte length prefix). RocketMQ rejects frames over 16 MiB; a flipped high bit in a length
/// must never make us allocate gigabytes.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The header length is a 24-bit field.
pub const HEADER_BYTES_MAX: usize = 0x00FF_FFFF;

/// Bytes of the length prefix itself.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Bytes of the serialize-type + header-length word.
pub const HEADER_WORD_BYTES: usize = 4;

/// Largest message body a producer may send (RocketMQ's `maxMessageSize`, 4 MiB).
pub const MESSAGE_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Largest properties string of a stored record: its length field is a signed 16-bit value.
pub const PROPERTIES_BYTES_MAX: usize = i16::MAX as usize;

/// Longest topic name a V1 record can carry (1-byte length); longer topics use V2 records.
pub const TOPIC_BYTES_MAX_V1: usize = 127;

/// Longest topic name accepted at all (V2 records carry a 16-bit length; RocketMQ caps topic
/// names far below that, and so do we to keep per-topic tables small).
pub const TOPIC_BYTES_MAX: usize = 255;

const _: () = assert!(FRAME_BYTES_MAX > MESSAGE_BODY_BYTES_MAX + PROPERTIES_BYTES_MAX);
const _: () = assert!(HEADER_BYTES_MAX < FRAME_BYTES_MAX);
