//! The wire layer's error type, and its single mapping to RocketMQ response codes.

use crate::code::ResponseCode;

/// Everything that can be wrong with bytes received from a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix announces more than the frame limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// Configured limit.
        max: usize,
    },
    /// The length prefix is negative or too small to hold the header word.
    #[error("frame length {len} is invalid: it must be at least 4 and not negative")]
    FrameLengthInvalid {
        /// Announced length, as the signed value RocketMQ reads.
        len: i64,
    },
    /// The header length does not fit inside the frame.
    #[error("header length {header_len} does not fit in a frame of {frame_len} bytes")]
    HeaderLengthInvalid {
        /// Announced header length.
        header_len: usize,
        /// Frame length.
        frame_len: usize,
    },
    /// The serialize-type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown serialize type {0}: expected 0 (JSON) or 1 (ROCKETMQ)")]
    UnknownSerializeType(u8),
    /// A length-prefixed item runs past the end of its container.
    #[error("truncated {what}: needed {needed} more bytes")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A string is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// A JSON header or body could not be parsed.
    #[error("invalid JSON {what}: {reason}")]
    InvalidJson {
        /// What was being parsed.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A required header field is missing.
    #[error("missing required field `{field}`")]
    MissingField {
        /// The field's wire name.
        field: &'static str,
    },
    /// A header field is present but its value is malformed or out of range.
    #[error("invalid value {value:?} for field `{field}`: {reason}")]
    InvalidField {
        /// The field's wire name.
        field: &'static str,
        /// The offending value (truncated to 64 bytes).
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A stored record is structurally broken or fails its CRC.
    #[error("corrupt record at byte {at}: {reason}")]
    CorruptRecord {
        /// Byte position within the buffer being decoded.
        at: usize,
        /// What is wrong.
        reason: String,
    },
    /// Something to encode does not fit its length field.
    #[error("{what} of {len} bytes does not fit (limit {max})")]
    TooLong {
        /// What was being encoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl WireError {
    /// Builds [`WireError::InvalidField`], keeping at most 64 bytes of the value.
    pub fn invalid_field(field: &'static str, value: &str, reason: &'static str) -> Self {
        let mut end = value.len().min(64);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        WireError::InvalidField {
            field,
            value: value[..end].to_owned(),
            reason,
        }
    }

    /// The RocketMQ response code a server answers with when a request fails with this error.
    /// The remark is the error's `Display` text.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            WireError::MissingField { .. }
            | WireError::InvalidField { .. }
            | WireError::InvalidJson { .. }
            | WireError::InvalidUtf8 { .. }
            | WireError::Truncated { .. } => ResponseCode::SystemError,
            WireError::CorruptRecord { .. } | WireError::TooLong { .. } => {
                ResponseCode::MessageIllegal
            }
            WireError::FrameTooLarge { .. }
            | WireError::FrameLengthInvalid { .. }
            | WireError::HeaderLengthInvalid { .. }
            | WireError::UnknownSerializeType(_) => ResponseCode::SystemError,
        }
    }

    /// Whether the connection can go on after this error. Framing errors leave the byte
    /// stream out of sync, so the connection must be closed; everything else concerns one
    /// request and is answered with an error response.
    pub fn is_fatal_to_connection(&self) -> bool {
        matches!(
            self,
            WireError::FrameTooLarge { .. }
                | WireError::FrameLengthInvalid { .. }
                | WireError::HeaderLengthInvalid { .. }
        )
    }
}
