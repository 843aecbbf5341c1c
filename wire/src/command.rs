//! The remoting command and its two header encodings.
//!
//! **JSON (serialize type 0)**: a JSON object with `code`, `extFields`, `flag`, `language`,
//! `opaque`, `remark`, `serializeTypeCurrentRPC`, `version`, written in that (fastjson's
//! alphabetical) order, null fields omitted. Decoding is lenient where stock clients need it:
//! `extFields` values may be numbers, booleans or null; `language` a name or an ordinal;
//! numbers may arrive as strings; unknown fields are ignored; any `version` is accepted.
//!
//! **ROCKETMQ binary (serialize type 1)**:
//!
//! ```text
//! | code u16 | language u8 | version u16 | opaque i32 | flag i32 |
//! | remark length i32 (0 = null) | remark UTF-8 |
//! | extFields length i32 | { key length u16 | key | value length i32 | value }* |
//! ```
//!
//! A response is encoded in the encoding of its request.

use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Deserialize;

use crate::code::{LanguageCode, RequestCode, ResponseCode};
use crate::error::WireError;
use crate::frame::Frame;
use crate::limits::{FRAME_BYTES_MAX, HEADER_BYTES_MAX, HEADER_WORD_BYTES, LENGTH_PREFIX_BYTES};

mod ext_fields;
mod fast_json;

pub use ext_fields::{ExtFields, FieldStr, Iter as ExtFieldsIter};

/// `flag` bit 0: the command is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// `flag` bit 1: the request expects no response.
pub const FLAG_ONEWAY: i32 = 1 << 1;

/// The `version` ringmq puts in the commands it sends (RocketMQ's `V5_3_1_SNAPSHOT`
/// ordinal); peers accept any version, and so do we.
pub const CURRENT_VERSION: i32 = 474;

/// Room reserved for decoded header fields: a `SEND_MESSAGE_V2` header has 13 or 14, so one
/// allocation holds every common request's fields.
const EXT_FIELDS_CAPACITY: usize = 16;

/// How the header of a frame is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SerializeType {
    /// JSON text (type byte 0), RocketMQ's default.
    #[default]
    Json,
    /// RocketMQ's compact binary header (type byte 1).
    RocketMq,
}

impl SerializeType {
    /// The type byte.
    pub const fn as_u8(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The serialize type for a type byte.
    pub fn from_u8(value: u8) -> Result<Self, WireError> {
        match value {
            0 => Ok(SerializeType::Json),
            1 => Ok(SerializeType::RocketMq),
            other => Err(WireError::UnknownSerializeType(other)),
        }
    }
}

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);

/// A process-wide request id, as RocketMQ's `RemotingCommand.createRequestCommand` assigns.
pub fn next_opaque() -> i32 {
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed)
}

/// One remoting request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code for requests, response code for responses. Kept raw so that unknown
    /// codes survive a round trip; see [`RequestCode::from_i32`], [`ResponseCode::from_i32`].
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's version ordinal.
    pub version: i32,
    /// Request id; a response echoes its request's.
    pub opaque: i32,
    /// Bit 0 response, bit 1 oneway.
    pub flag: i32,
    /// Free text, mostly the reason of an error response.
    pub remark: Option<String>,
    /// The typed header's fields.
    pub ext_fields: ExtFields,
    /// The body.
    pub body: Bytes,
    /// The header encoding this command was received in, or will be sent in.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A new request with a fresh opaque, JSON-encoded.
    pub fn request(code: RequestCode) -> Self {
        Self::request_raw(code.as_i32())
    }

    /// A new request with a raw code.
    pub fn request_raw(code: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            opaque: next_opaque(),
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            serialize_type: SerializeType::Json,
        }
    }

    /// A response to `request`: same opaque and header encoding, response flag set.
    ///
    /// Responses say `JAVA`, as a RocketMQ server's do: older Java clients' `LanguageCode`
    /// has no `RUST`, and fastjson would read an unknown name as null.
    pub fn response_to(request: &RemotingCommand, code: ResponseCode) -> Self {
        RemotingCommand {
            code: code.as_i32(),
            language: LanguageCode::Java,
            version: CURRENT_VERSION,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            serialize_type: request.serialize_type,
        }
    }

    /// An error response to `request` with a remark.
    pub fn error_response(
        request: &RemotingCommand,
        code: ResponseCode,
        remark: impl Into<String>,
    ) -> Self {
        let mut response = Self::response_to(request, code);
        response.remark = Some(remark.into());
        response
    }

    /// Sets the remark (builder style).
    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether this is a response.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// Whether the sender expects no response.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Marks the request oneway.
    pub fn set_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// The known request code, if this is a request with one.
    pub fn request_code(&self) -> Option<RequestCode> {
        RequestCode::from_i32(self.code)
    }

    /// The known response code, if any.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_i32(self.code)
    }

    /// One header field.
    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key)
    }

    /// Decodes a frame's content (everything after the length prefix).
    pub fn decode(content: Bytes) -> Result<Self, WireError> {
        let frame = Frame::parse(content)?;
        let mut command = match frame.serialize_type {
            SerializeType::Json => decode_json_header(&frame.header)?,
            SerializeType::RocketMq => decode_binary_header(frame.header)?,
        };
        command.body = frame.body;
        Ok(command)
    }

    /// The encoded header, in this command's serialize type.
    pub fn encode_header(&self) -> Result<Vec<u8>, WireError> {
        let mut header = Vec::with_capacity(self.header_capacity());
        self.write_header(&mut header)?;
        if header.len() > HEADER_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "header",
                len: header.len(),
                max: HEADER_BYTES_MAX,
            });
        }
        Ok(header)
    }

    /// Writes the length prefix, the header word and the header for a body of `body_len`
    /// bytes that the caller sends separately (e.g. spliced from a file). The returned bytes
    /// followed by the body form one frame.
    pub fn encode_prefix(&self, body_len: usize) -> Result<BytesMut, WireError> {
        let mut out = BytesMut::with_capacity(
            LENGTH_PREFIX_BYTES + HEADER_WORD_BYTES + self.header_capacity(),
        );
        self.write_prefix(&mut out, body_len)?;
        Ok(out)
    }

    /// Appends the whole frame (prefix, header, body) to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), WireError> {
        out.reserve(
            LENGTH_PREFIX_BYTES + HEADER_WORD_BYTES + self.header_capacity() + self.body.len(),
        );
        self.write_prefix(out, self.body.len())?;
        out.put_slice(&self.body);
        Ok(())
    }

    /// The whole frame as one buffer.
    pub fn encode_frame(&self) -> Result<Bytes, WireError> {
        let mut out = BytesMut::new();
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// A guess of the encoded header's size, to allocate once.
    fn header_capacity(&self) -> usize {
        let ext: usize = self
            .ext_fields
            .iter()
            .map(|(key, value)| key.len() + value.len() + 8)
            .sum();
        160 + ext + self.remark.as_ref().map_or(0, |remark| remark.len() + 16)
    }

    /// Writes the header in this command's serialize type.
    fn write_header<B: BufMut + JsonSink>(&self, out: &mut B) -> Result<(), WireError> {
        match self.serialize_type {
            SerializeType::Json => {
                write_json_header(self, out);
                Ok(())
            }
            SerializeType::RocketMq => write_binary_header(self, out),
        }
    }

    /// Appends the length prefix, the header word and the header, written in place (no
    /// intermediate buffer); on error `out` is left as it was.
    fn write_prefix(&self, out: &mut BytesMut, body_len: usize) -> Result<(), WireError> {
        let start = out.len();
        out.put_u64(0); // length prefix and header word, patched below
        let checked = self.write_header(out).and_then(|()| {
            let header_len = out.len() - start - LENGTH_PREFIX_BYTES - HEADER_WORD_BYTES;
            if header_len > HEADER_BYTES_MAX {
                return Err(WireError::TooLong {
                    what: "header",
                    len: header_len,
                    max: HEADER_BYTES_MAX,
                });
            }
            let frame_len = HEADER_WORD_BYTES + header_len + body_len;
            if frame_len > FRAME_BYTES_MAX {
                return Err(WireError::TooLong {
                    what: "frame",
                    len: frame_len,
                    max: FRAME_BYTES_MAX,
                });
            }
            Ok((frame_len, header_len))
        });
        match checked {
            Ok((frame_len, header_len)) => {
                let word = (u32::from(self.serialize_type.as_u8()) << 24) | header_len as u32;
                out[start..start + 4].copy_from_slice(&(frame_len as u32).to_be_bytes());
                out[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
                Ok(())
            }
            Err(error) => {
                out.truncate(start);
                Err(error)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON header

/// Where the JSON header writer puts its text: a `String`, a `Vec<u8>` or a `BytesMut`.
/// Only whole UTF-8 strings and ASCII bytes are pushed, so a `String` stays valid.
pub trait JsonSink {
    /// Appends text.
    fn push_text(&mut self, text: &str);
    /// Appends one ASCII byte.
    fn push_ascii(&mut self, byte: u8);
    /// Appends ASCII bytes (one capacity check instead of one per byte).
    fn push_ascii_slice(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push_ascii(byte);
        }
    }
}

impl JsonSink for String {
    fn push_text(&mut self, text: &str) {
        self.push_str(text);
    }
    fn push_ascii(&mut self, byte: u8) {
        debug_assert!(byte.is_ascii());
        self.push(char::from(byte));
    }
}

impl JsonSink for Vec<u8> {
    fn push_text(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
    fn push_ascii(&mut self, byte: u8) {
        self.push(byte);
    }
    fn push_ascii_slice(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.is_ascii());
        self.extend_from_slice(bytes);
    }
}

impl JsonSink for BytesMut {
    fn push_text(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
    fn push_ascii(&mut self, byte: u8) {
        self.put_u8(byte);
    }
    fn push_ascii_slice(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.is_ascii());
        self.extend_from_slice(bytes);
    }
}

/// Appends a decimal integer without going through `fmt`.
fn push_int<S: JsonSink>(out: &mut S, value: i32) {
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    out.push_ascii_slice(&digits[at..]);
}

fn write_json_header<S: JsonSink>(command: &RemotingCommand, out: &mut S) {
    out.push_text("{\"code\":");
    push_int(out, command.code);
    if !command.ext_fields.is_empty() {
        out.push_text(",\"extFields\":{");
        for (i, (key, value)) in command.ext_fields.iter().enumerate() {
            if i > 0 {
                out.push_ascii(b',');
            }
            write_json_str_to(out, key);
            out.push_ascii(b':');
            write_json_str_to(out, value);
        }
        out.push_ascii(b'}');
    }
    out.push_text(",\"flag\":");
    push_int(out, command.flag);
    out.push_text(",\"language\":\"");
    out.push_text(command.language.name());
    out.push_text("\",\"opaque\":");
    push_int(out, command.opaque);
    if let Some(remark) = &command.remark {
        out.push_text(",\"remark\":");
        write_json_str_to(out, remark);
    }
    out.push_text(",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    push_int(out, command.version);
    out.push_ascii(b'}');
}

/// For each byte: 0 if it needs no escaping, else the character after the backslash
/// (`u` for `\u00XX`).
const JSON_ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `value` as a JSON string literal, escaping quotes, backslashes and control
/// characters (RocketMQ's property separators 0x01/0x02 become `\u0001`/`\u0002`).
pub fn write_json_str(out: &mut String, value: &str) {
    write_json_str_to(out, value);
}

/// Whether any of the 8 bytes of `word` needs escaping in a JSON string: a control
/// character (< 0x20), `"` or `\\`. Bit tricks from "Bit Twiddling Hacks" (haszero/hasless).
#[inline]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash != 0
}

/// [`write_json_str`] into any [`JsonSink`].
pub fn write_json_str_to<S: JsonSink>(out: &mut S, value: &str) {
    out.push_ascii(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 clean bytes at a time (header values are mostly plain ASCII).
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let byte = bytes[i];
        let escape = JSON_ESCAPES[usize::from(byte)];
        if escape != 0 {
            // Escaped bytes are ASCII, so `start` and `i` are character boundaries.
            out.push_text(&value[start..i]);
            if escape == b'u' {
                let hex = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX_DIGITS[usize::from(byte >> 4)],
                    HEX_DIGITS[usize::from(byte & 0xf)],
                ];
                out.push_ascii_slice(&hex);
            } else {
                out.push_ascii_slice(&[b'\\', escape]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.push_text(&value[start..]);
    out.push_ascii(b'"');
}

#[derive(Deserialize)]
struct JsonHeader {
    #[serde(default, deserialize_with = "crate::json::lenient::i32")]
    code: i32,
    #[serde(default, deserialize_with = "crate::json::lenient::language")]
    language: Option<LanguageCode>,
    #[serde(default, deserialize_with = "crate::json::lenient::i32")]
    version: i32,
    #[serde(default, deserialize_with = "crate::json::lenient::i32")]
    opaque: i32,
    #[serde(default, deserialize_with = "crate::json::lenient::i32")]
    flag: i32,
    #[serde(default, deserialize_with = "crate::json::lenient::opt_string")]
    remark: Option<String>,
    #[serde(
        default,
        rename = "extFields",
        deserialize_with = "crate::json::lenient::string_map"
    )]
    ext_fields: ExtFields,
}

fn decode_json_header(header: &[u8]) -> Result<RemotingCommand, WireError> {
    if let Some(command) = fast_json::parse_header(header) {
        return Ok(command);
    }
    decode_json_header_serde(header)
}

/// The general JSON header decoder (serde), for everything the fast path gives up on.
fn decode_json_header_serde(header: &[u8]) -> Result<RemotingCommand, WireError> {
    let parsed: JsonHeader =
        serde_json::from_slice(header).map_err(|e| WireError::InvalidJson {
            what: "header",
            reason: e.to_string(),
        })?;
    Ok(RemotingCommand {
        code: parsed.code,
        language: parsed.language.unwrap_or(LanguageCode::Other),
        version: parsed.version,
        opaque: parsed.opaque,
        flag: parsed.flag,
        remark: parsed.remark,
        ext_fields: parsed.ext_fields,
        body: Bytes::new(),
        serialize_type: SerializeType::Json,
    })
}

// ---------------------------------------------------------------------------------------
// ROCKETMQ binary header

fn write_binary_header<B: BufMut>(command: &RemotingCommand, out: &mut B) -> Result<(), WireError> {
    let code = u16::try_from(command.code).map_err(|_| WireError::TooLong {
        what: "code (binary headers carry 16 bits)",
        len: command.code as usize,
        max: u16::MAX as usize,
    })?;
    let ext_len: usize = command
        .ext_fields
        .iter()
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| 2 + key.len() + 4 + value.len())
        .sum();
    let remark = command.remark.as_deref().unwrap_or("");
    // Check every key before writing anything, so that an error leaves `out` untouched.
    if let Some(key) = command
        .ext_fields
        .keys()
        .find(|key| key.len() > usize::from(u16::MAX))
    {
        return Err(WireError::TooLong {
            what: "extFields key",
            len: key.len(),
            max: u16::MAX as usize,
        });
    }
    out.put_u16(code);
    out.put_u8(command.language.as_u8());
    out.put_u16(command.version as u16);
    out.put_i32(command.opaque);
    out.put_i32(command.flag);
    out.put_i32(remark.len() as i32);
    out.put_slice(remark.as_bytes());
    out.put_i32(ext_len as i32);
    for (key, value) in &command.ext_fields {
        if key.is_empty() {
            continue;
        }
        out.put_u16(key.len() as u16);
        out.put_slice(key.as_bytes());
        out.put_i32(value.len() as i32);
        out.put_slice(value.as_bytes());
    }
    Ok(())
}

/// Splits `len` bytes off the front of `buf`.
fn take<'a>(buf: &mut &'a [u8], len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    if buf.len() < len {
        return Err(WireError::Truncated {
            what,
            needed: len - buf.len(),
        });
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// A UTF-8 string of `len` bytes, inline when short (no allocation).
fn take_field_str(buf: &mut &[u8], len: usize, what: &'static str) -> Result<FieldStr, WireError> {
    let bytes = take(buf, len, what)?;
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8 { what })?;
    Ok(FieldStr::from(text))
}

fn take_len_i32(buf: &mut &[u8], what: &'static str) -> Result<usize, WireError> {
    let raw = take(buf, 4, what)?.get_i32();
    usize::try_from(raw)
        .map_err(|_| WireError::invalid_field(what, &raw.to_string(), "negative length"))
}

fn decode_binary_header(header: Bytes) -> Result<RemotingCommand, WireError> {
    let mut buf: &[u8] = &header;
    let mut fixed = take(&mut buf, 17, "binary header")?;
    let code = i32::from(fixed.get_u16());
    let language = LanguageCode::from_u8_lenient(fixed.get_u8());
    let version = i32::from(fixed.get_u16());
    let opaque = fixed.get_i32();
    let flag = fixed.get_i32();
    let remark_len = usize::try_from(fixed.get_i32())
        .map_err(|_| WireError::invalid_field("remark length", "negative", "negative length"))?;
    let remark = match remark_len {
        0 => None,
        len => Some(String::from(take_field_str(&mut buf, len, "remark")?)),
    };
    let ext_len = take_len_i32(&mut buf, "extFields length")?;
    let mut ext = take(&mut buf, ext_len, "extFields")?;
    let mut ext_fields = ExtFields::with_capacity(EXT_FIELDS_CAPACITY);
    while ext.has_remaining() {
        let key_len = usize::from(take(&mut ext, 2, "extFields key length")?.get_u16());
        let key = take_field_str(&mut ext, key_len, "extFields key")?;
        let value_len = take_len_i32(&mut ext, "extFields value length")?;
        let value = take_field_str(&mut ext, value_len, "extFields value")?;
        ext_fields.insert(key, value);
    }
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: Bytes::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;

    fn golden_json_request() -> RemotingCommand {
        let mut command = RemotingCommand::request_raw(31);
        command.language = LanguageCode::Java;
        command.version = 321;
        command.opaque = 16_909_060;
        command.remark = Some("json-request".into());
        command.ext_fields.insert("queueId".into(), "7".into());
        command.ext_fields.insert("topic".into(), "TopicA".into());
        // The spec's golden frame is 0xb2 = 4 + 172 + 2 bytes long: a 2-byte body.
        command.body = Bytes::from_static(b"hi");
        command
    }

    /// Spec §A.2.2: the golden JSON request has a 172-byte header: prefix `00 00 00 b2 | 00 00 00 ac`.
    #[test]
    fn golden_json_request_bytes() {
        let bytes = golden_json_request().encode_frame().unwrap();
        assert_eq!(&bytes[..8], &[0, 0, 0, 0xb2, 0, 0, 0, 0xac]);
        assert_eq!(
            std::str::from_utf8(&bytes[8..bytes.len() - 2]).unwrap(),
            r#"{"code":31,"extFields":{"queueId":"7","topic":"TopicA"},"flag":0,"language":"JAVA","opaque":16909060,"remark":"json-request","serializeTypeCurrentRPC":"JSON","version":321}"#
        );
        let decoded = RemotingCommand::decode(bytes.slice(4..)).unwrap();
        assert_eq!(decoded, golden_json_request());
    }

    /// Spec §A.2.3: the golden ROCKETMQ binary request, byte for byte.
    #[test]
    fn golden_binary_request_bytes() {
        let mut golden = Vec::new();
        golden.extend_from_slice(&[0, 0, 0, 0x49, 1, 0, 0, 0x42]);
        golden.extend_from_slice(&[0x00, 0x1f, 0x00, 0x01, 0x43, 0x7f, 0xff, 0xff, 0xff]);
        golden.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0x0e]);
        golden.extend_from_slice(b"binary-request");
        golden.extend_from_slice(&[0, 0, 0, 0x1f, 0, 7]);
        golden.extend_from_slice(b"queueId");
        golden.extend_from_slice(&[0, 0, 0, 1]);
        golden.extend_from_slice(b"8");
        golden.extend_from_slice(&[0, 5]);
        golden.extend_from_slice(b"topic");
        golden.extend_from_slice(&[0, 0, 0, 6]);
        golden.extend_from_slice(b"TopicB");
        golden.extend_from_slice(&[0x00, 0xff, 0x52]);

        let mut decoder = FrameDecoder::default();
        decoder.extend(&golden);
        let command = decoder.next_command().unwrap().unwrap();
        assert_eq!(command.code, 31);
        assert_eq!(command.language, LanguageCode::Java);
        assert_eq!(command.version, 323);
        assert_eq!(command.opaque, i32::MAX);
        assert!(command.is_oneway());
        assert!(!command.is_response());
        assert_eq!(command.remark.as_deref(), Some("binary-request"));
        assert_eq!(command.ext("queueId"), Some("8"));
        assert_eq!(command.ext("topic"), Some("TopicB"));
        assert_eq!(&command.body[..], &[0x00, 0xff, 0x52]);
        assert_eq!(command.serialize_type, SerializeType::RocketMq);
        assert_eq!(&command.encode_frame().unwrap()[..], &golden[..]);
    }

    #[test]
    fn response_uses_request_encoding_and_opaque() {
        let mut request = golden_json_request();
        request.serialize_type = SerializeType::RocketMq;
        let response = RemotingCommand::error_response(&request, ResponseCode::TopicNotExist, "no");
        assert_eq!(response.serialize_type, SerializeType::RocketMq);
        assert_eq!(response.opaque, request.opaque);
        assert!(response.is_response());
        let decoded = RemotingCommand::decode(response.encode_frame().unwrap().slice(4..)).unwrap();
        assert_eq!(decoded, response);
    }

    #[test]
    fn json_header_is_lenient_like_fastjson() {
        let header = br#"{"code":"310","language":13,"version":63,"opaque":5,"flag":2,
            "remark":null,"unknownField":[1,2,{"x":1}],
            "extFields":{"a":"g","e":3,"m":false,"k":true,"h":0,"z":null,"f":1.5}}"#;
        let command = decode_json_header(header).unwrap();
        assert_eq!(command.code, 310);
        assert_eq!(command.language, LanguageCode::NodeJs);
        assert_eq!(command.version, 63);
        assert!(command.is_oneway());
        assert_eq!(command.remark, None);
        assert_eq!(command.ext("e"), Some("3"));
        assert_eq!(command.ext("m"), Some("false"));
        assert_eq!(command.ext("k"), Some("true"));
        assert_eq!(command.ext("f"), Some("1.5"));
        assert_eq!(command.ext("z"), None);
    }

    #[test]
    fn json_escapes_property_separators() {
        let mut command = RemotingCommand::request(RequestCode::SendMessageV2);
        command
            .ext_fields
            .insert("i".into(), "TAGS\u{1}a\u{2}KEYS\u{1}k \"q\"\\\u{2}".into());
        let header = command.encode_header().unwrap();
        let text = std::str::from_utf8(&header).unwrap();
        assert!(
            text.contains(r#""TAGS\u0001a\u0002KEYS\u0001k \"q\"\\\u0002""#),
            "{text}"
        );
        assert_eq!(
            decode_json_header(&header).unwrap().ext_fields,
            command.ext_fields
        );
    }

    #[test]
    fn binary_truncations_are_errors() {
        let mut command = golden_json_request();
        command.serialize_type = SerializeType::RocketMq;
        let header = command.encode_header().unwrap();
        for cut in 0..header.len() {
            assert!(
                decode_binary_header(Bytes::copy_from_slice(&header[..cut])).is_err(),
                "cut {cut}"
            );
        }
        assert!(decode_binary_header(Bytes::from(header)).is_ok());
    }

    #[test]
    fn integers_and_escapes_written_in_place() {
        let mut command = golden_json_request();
        command.code = i32::MIN;
        command.opaque = -1;
        command.flag = i32::MAX;
        command.version = 0;
        command.remark = Some("\u{0}\u{1f}\u{7f}é\"\\\r\n\t".into());
        let header = String::from_utf8(command.encode_header().unwrap()).unwrap();
        assert!(header.starts_with(r#"{"code":-2147483648,"#), "{header}");
        assert!(header.contains(r#""flag":2147483647,"#), "{header}");
        assert!(header.contains(r#""opaque":-1,"#), "{header}");
        assert!(
            header.contains("\"remark\":\"\\u0000\\u001f\u{7f}é\\\"\\\\\\r\\n\\t\""),
            "{header}"
        );
        assert!(header.ends_with(r#""version":0}"#), "{header}");
        let decoded = RemotingCommand::decode(command.encode_frame().unwrap().slice(4..)).unwrap();
        assert_eq!(decoded, command);
    }

    #[test]
    fn prefix_plus_body_is_the_frame_and_errors_leave_the_buffer_alone() {
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let mut command = golden_json_request();
            command.serialize_type = serialize_type;
            let mut joined = command.encode_prefix(command.body.len()).unwrap();
            joined.extend_from_slice(&command.body);
            assert_eq!(joined.freeze(), command.encode_frame().unwrap());
        }
        let mut too_big = golden_json_request();
        too_big.serialize_type = SerializeType::RocketMq;
        too_big.code = 70_000;
        let mut out = BytesMut::from(&b"keep"[..]);
        assert!(too_big.encode_into(&mut out).is_err());
        assert_eq!(&out[..], b"keep");
        let command = golden_json_request();
        assert!(matches!(
            command.encode_prefix(FRAME_BYTES_MAX),
            Err(WireError::TooLong { what: "frame", .. })
        ));
    }

    #[test]
    fn escaping_matches_a_byte_by_byte_reference() {
        fn reference(value: &str) -> String {
            let mut out = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        let alphabet = [
            'a', '"', '\\', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '\n', '\u{80}', '~',
        ];
        // Every string of up to 3 symbols at every offset within a 17-byte frame of filler.
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for pad in 0..10 {
                        let value = format!("{}{a}{b}{c}{}", "x".repeat(pad), "y".repeat(9 - pad));
                        let mut out = String::new();
                        write_json_str(&mut out, &value);
                        assert_eq!(out, reference(&value), "{value:?}");
                    }
                }
            }
        }
    }
}
