//! The remoting frame: `length: i32 | serializeType: u8 + headerLength: u24 | header | body`.
//!
//! ```text
//! +----------------+---------------------------------+--------------+------------+
//! | length (i32)   | serialize type (u8) | hdr (u24)  | header bytes | body bytes |
//! | = 4 + hdr+body | 0 = JSON, 1 = ROCKETMQ          |              |            |
//! +----------------+---------------------------------+--------------+------------+
//! ```
//!
//! All integers are big-endian. [`FrameDecoder`] is a streaming decoder: feed it whatever
//! arrived on the socket and take out whole frames; it checks the announced lengths against
//! the limit *before* buffering the frame, so a hostile length never allocates.

use bytes::{Buf, Bytes, BytesMut};

use crate::command::{RemotingCommand, SerializeType};
use crate::error::WireError;
use crate::limits::{FRAME_BYTES_MAX, HEADER_WORD_BYTES, LENGTH_PREFIX_BYTES};

/// A whole frame, split into its parts, without the length prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header encoding.
    pub serialize_type: SerializeType,
    /// The header bytes (JSON text or the ROCKETMQ binary header).
    pub header: Bytes,
    /// Everything after the header.
    pub body: Bytes,
}

impl Frame {
    /// Splits a frame's content (everything after the length prefix) into its parts.
    pub fn parse(mut content: Bytes) -> Result<Self, WireError> {
        if content.len() < HEADER_WORD_BYTES {
            return Err(WireError::FrameLengthInvalid {
                len: content.len() as i64,
            });
        }
        let word = content.get_u32();
        let serialize_type = SerializeType::from_u8((word >> 24) as u8)?;
        let header_len = (word & 0x00FF_FFFF) as usize;
        if header_len > content.len() {
            return Err(WireError::HeaderLengthInvalid {
                header_len,
                frame_len: content.len() + HEADER_WORD_BYTES,
            });
        }
        let header = content.split_to(header_len);
        Ok(Frame {
            serialize_type,
            header,
            body: content,
        })
    }
}

/// Streaming frame decoder with a frame size limit.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(FRAME_BYTES_MAX)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames whose length field exceeds `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::with_capacity(64 * 1024),
            max_frame_bytes,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The internal buffer, for readers that receive straight into it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a whole frame (or a length prefix that is already invalid) is buffered, so
    /// that [`Self::next_frame`] would return something other than `Ok(None)`.
    pub fn has_frame(&self) -> bool {
        match check_length_prefix(&self.buf, self.max_frame_bytes) {
            Ok(Some(len)) => self.buf.len() >= LENGTH_PREFIX_BYTES + len,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Takes the next whole frame's content (everything after the length prefix), or `None`
    /// if more bytes are needed. An error means the stream is out of sync: close it.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, WireError> {
        let Some(frame_len) = check_length_prefix(&self.buf, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let total = LENGTH_PREFIX_BYTES + frame_len;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LENGTH_PREFIX_BYTES);
        Ok(Some(self.buf.split_to(frame_len).freeze()))
    }

    /// Takes and decodes the next whole command, or `None` if more bytes are needed.
    ///
    /// Check [`WireError::is_fatal_to_connection`] on error: a header that fails to parse
    /// leaves the stream in sync, a bad length does not.
    pub fn next_command(&mut self) -> Result<Option<RemotingCommand>, WireError> {
        match self.next_frame()? {
            Some(content) => RemotingCommand::decode(content).map(Some),
            None => Ok(None),
        }
    }
}

/// Reads and validates the length prefix at the start of `buf`: `Ok(None)` if fewer than 4
/// bytes are there, otherwise the frame length (bytes after the prefix), checked to be at
/// least the header word and at most `max_frame_bytes`.
pub fn check_length_prefix(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_BYTES) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len < HEADER_WORD_BYTES as i32 {
        return Err(WireError::FrameLengthInvalid {
            len: i64::from(len),
        });
    }
    let len = len as usize;
    if len > max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            len: len as u64,
            max: max_frame_bytes,
        });
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(serialize_type: u8, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + header.len() + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(
            &(((serialize_type as u32) << 24) | header.len() as u32).to_be_bytes(),
        );
        out.extend_from_slice(header);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn has_frame_only_once_a_whole_frame_or_a_bad_prefix_is_buffered() {
        let bytes = frame(0, b"{}", b"body");
        let mut decoder = FrameDecoder::new(1024);
        for (i, byte) in bytes.iter().enumerate() {
            assert!(!decoder.has_frame(), "only {i} bytes buffered");
            decoder.extend(&[*byte]);
        }
        assert!(decoder.has_frame());
        assert!(decoder.next_frame().expect("frame").is_some());
        assert!(!decoder.has_frame());
        decoder.extend(&4096i32.to_be_bytes());
        assert!(
            decoder.has_frame(),
            "an oversized length is reported by next_frame"
        );
        assert!(decoder.next_frame().is_err());
    }

    #[test]
    fn yields_frames_byte_by_byte() {
        let bytes = frame(0, br#"{"code":34}"#, b"body");
        let mut decoder = FrameDecoder::default();
        for (i, byte) in bytes.iter().enumerate() {
            assert_eq!(
                decoder.next_frame().unwrap(),
                None,
                "early frame at byte {i}"
            );
            decoder.extend(&[*byte]);
        }
        let content = decoder.next_frame().unwrap().unwrap();
        let parsed = Frame::parse(content).unwrap();
        assert_eq!(parsed.serialize_type, SerializeType::Json);
        assert_eq!(&parsed.header[..], br#"{"code":34}"#);
        assert_eq!(&parsed.body[..], b"body");
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn two_frames_in_one_read() {
        let mut bytes = frame(0, b"{}", b"a");
        bytes.extend(frame(1, b"", b"bb"));
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes);
        assert_eq!(
            Frame::parse(decoder.next_frame().unwrap().unwrap())
                .unwrap()
                .body,
            "a"
        );
        let second = Frame::parse(decoder.next_frame().unwrap().unwrap()).unwrap();
        assert_eq!(second.serialize_type, SerializeType::RocketMq);
        assert_eq!(second.body, "bb");
        assert_eq!(decoder.next_frame().unwrap(), None);
    }

    #[test]
    fn rejects_oversize_and_negative_lengths_before_buffering() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.extend(&1025i32.to_be_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(WireError::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        );
        let mut decoder = FrameDecoder::default();
        decoder.extend(&(-1i32).to_be_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(WireError::FrameLengthInvalid { len: -1 })
        );
        let mut decoder = FrameDecoder::default();
        decoder.extend(&3i32.to_be_bytes());
        assert!(decoder.next_frame().unwrap_err().is_fatal_to_connection());
    }

    #[test]
    fn rejects_header_longer_than_frame_and_unknown_type() {
        let mut bytes = frame(0, b"{}", b"");
        bytes[7] = 200; // header length 200 in a 6-byte frame
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes);
        let content = decoder.next_frame().unwrap().unwrap();
        assert!(matches!(
            Frame::parse(content),
            Err(WireError::HeaderLengthInvalid { .. })
        ));
        let bytes = frame(7, b"{}", b"");
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes);
        let content = decoder.next_frame().unwrap().unwrap();
        assert_eq!(
            Frame::parse(content),
            Err(WireError::UnknownSerializeType(7))
        );
    }
}
