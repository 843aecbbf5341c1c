//! The stored message record (CommitLog format), the batch send body, properties and the tag
//! hash code.
//!
//! A CommitLog record, as RocketMQ stores it and as a pull response carries it (all integers
//! big-endian; offsets for IPv4 hosts):
//!
//! ```text
//! off  size  field
//!   0     4  TOTALSIZE           whole record, this field included
//!   4     4  MAGICCODE           V1 0xDAA320A7 (1-byte topic length), V2 0xDAA320AB (2-byte)
//!   8     4  BODYCRC             crc32(body) & 0x7FFFFFFF
//!  12     4  QUEUEID
//!  16     4  FLAG                user flag
//!  20     8  QUEUEOFFSET         logical index in the ConsumeQueue
//!  28     8  PHYSICALOFFSET      CommitLog offset of this record
//!  36     4  SYSFLAG             see [`sys_flag`]; 0x10 / 0x20 = born / store host is IPv6
//!  40     8  BORNTIMESTAMP       ms
//!  48   8|20 BORNHOST            IPv4 (4) or IPv6 (16) address + port (i32)
//!  56     8  STORETIMESTAMP      ms (68 with an IPv6 born host)
//!  64   8|20 STOREHOST
//!  72     4  RECONSUMETIMES
//!  76     8  PREPARED TX OFFSET
//!  84   4+n  BODY length (i32) + body
//!   …   1+t  TOPIC length (u8 in V1, u16 in V2) + topic
//!   …   2+p  PROPERTIES length (i16) + `name\x01value\x02…`
//! ```
//!
//! The unused tail of a CommitLog segment holds one blank record: `TOTALSIZE | 0xCBD43194`,
//! TOTALSIZE covering the rest of the segment.
//!
//! The batch send body (`SEND_BATCH_MESSAGE`) is a sequence of
//! `TOTALSIZE i32 | MAGIC i32 (0) | BODYCRC i32 (0) | FLAG i32 | BODYLEN i32 + body |
//! PROPERTIESLEN i16 + properties`; the topic comes from the request header.
//!
//! Decoding never copies payload bytes: a [`StoredMessage`] holds slices of the buffer it was
//! decoded from. Every length is checked before it is used, so truncated or hostile input
//! yields a [`WireError`], never a panic or a large allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::WireError;
use crate::limits::{MESSAGE_BODY_BYTES_MAX, PROPERTIES_BYTES_MAX, TOPIC_BYTES_MAX_V1};

/// Magic code of a V1 record (1-byte topic length).
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// Magic code of a V2 record (2-byte topic length), used for topics longer than 127 bytes.
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic code of the blank record filling the end of a CommitLog segment.
pub const MAGIC_BLANK: i32 = 0xCBD4_3194_u32 as i32;

/// Bytes of a blank end-of-file record's header (`TOTALSIZE | MAGIC`). RocketMQ keeps at
/// least this much room at the end of a segment so a blank record always fits.
pub const BLANK_RECORD_BYTES_MIN: usize = 8;

/// Offset of QUEUEOFFSET in a record.
pub const QUEUE_OFFSET_POS: usize = 20;
/// Offset of PHYSICALOFFSET in a record.
pub const PHYSICAL_OFFSET_POS: usize = 28;
/// Offset of SYSFLAG in a record.
pub const SYS_FLAG_POS: usize = 36;
/// Offset of BORNTIMESTAMP in a record.
pub const BORN_TIMESTAMP_POS: usize = 40;
/// Offset of BORNHOST in a record.
pub const BORN_HOST_POS: usize = 48;

/// Fixed part of a record with IPv4 hosts and a V1 topic length: every field except body,
/// topic and properties bytes (91 bytes, RocketMQ's `calMsgLength` overhead).
pub const RECORD_FIXED_BYTES_V1_IPV4: usize = 91;

/// Largest record we ever encode or accept: a maximal body, topic and properties plus the
/// fixed fields. A corrupted TOTALSIZE above this is rejected before anything is read.
pub const RECORD_BYTES_MAX: usize =
    MESSAGE_BODY_BYTES_MAX + PROPERTIES_BYTES_MAX + u16::MAX as usize + 128;

/// Bits of the SYSFLAG field (`MessageSysFlag`).
pub mod sys_flag {
    /// The body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// The TAGS property holds several tags.
    pub const MULTI_TAGS: i32 = 0x2;
    /// Transaction type mask (bits 2–3).
    pub const TRANSACTION_MASK: i32 = 0xC;
    /// Not a transactional message.
    pub const TRANSACTION_NOT_TYPE: i32 = 0x0;
    /// Half (prepared) transactional message.
    pub const TRANSACTION_PREPARED: i32 = 0x4;
    /// Committed transactional message.
    pub const TRANSACTION_COMMIT: i32 = 0x8;
    /// Rolled-back transactional message.
    pub const TRANSACTION_ROLLBACK: i32 = 0xC;
    /// The born host is IPv6.
    pub const BORNHOST_V6: i32 = 0x10;
    /// The store host is IPv6.
    pub const STOREHOST_V6: i32 = 0x20;
    /// The body is a batch that must be unwrapped.
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner batch.
    pub const INNER_BATCH: i32 = 0x80;
    /// Compression type (bits 8–10): 1 LZ4, 2 ZSTD, 3 ZLIB.
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
}

/// Well-known property names (`MessageConst`).
pub mod property {
    /// Space-separated business keys (indexed).
    pub const KEYS: &str = "KEYS";
    /// The message tag (`||`-separated when several).
    pub const TAGS: &str = "TAGS";
    /// Whether the producer waits for the store (`"true"`/`"false"`).
    pub const WAIT: &str = "WAIT";
    /// Delay level (1..=18).
    pub const DELAY: &str = "DELAY";
    /// Original topic of a retried message.
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Real topic of a delayed or half message.
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Real queue id of a delayed or half message.
    pub const REAL_QID: &str = "REAL_QID";
    /// `"true"` on transactional messages.
    pub const TRAN_MSG: &str = "TRAN_MSG";
    /// Producer group (transactions).
    pub const PGROUP: &str = "PGROUP";
    /// Minimum offset of the queue, added on pull.
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Maximum offset of the queue, added on pull.
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// Buyer id (unused by us, kept for completeness).
    pub const BUYER_ID: &str = "BUYER_ID";
    /// Offset msgId of the original message of a retry.
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Transfer flag.
    pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
    /// Correction flag.
    pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
    /// Message queue offset (used by some flows).
    pub const MQ2_FLAG: &str = "MQ2_FLAG";
    /// Reconsume times carried as a property.
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Message region.
    pub const MSG_REGION: &str = "MSG_REGION";
    /// Whether message tracing is on.
    pub const TRACE_ON: &str = "TRACE_ON";
    /// Client-generated unique id (`msgId` in SendResult), indexed.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Maximum reconsume times before the dead-letter queue.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Consume start timestamp.
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    /// Queue offset of the half message a transaction op refers to.
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    /// How many times a half message was checked back.
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// Seconds before the first transaction check.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Instance id.
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    /// Correlation id (request/reply).
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    /// Reply-to client (request/reply).
    pub const MESSAGE_REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    /// Message time-to-live (request/reply).
    pub const MESSAGE_TTL: &str = "TTL";
    /// Arrival time of a reply.
    pub const REPLY_MESSAGE_ARRIVE_TIME: &str = "ARRIVE_TIME";
    /// Push reply time.
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    /// Cluster name.
    pub const CLUSTER: &str = "CLUSTER";
    /// Message type.
    pub const MESSAGE_TYPE: &str = "MSG_TYPE";
    /// The producer's transaction id.
    pub const TRANSACTION_ID: &str = "__transactionId__";
    /// 5.x timer: absolute delivery time in ms.
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// 5.x timer: delay in seconds.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// 5.x timer: delay in ms.
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// SQL92 / tag filter: shard key.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// Separator between the tags of a multi-tag message.
    pub const TAGS_SEPARATOR: &str = "||";
    /// Separator between keys in [`KEYS`].
    pub const KEY_SEPARATOR: &str = " ";
}

/// Byte between a property's name and its value.
pub const NAME_VALUE_SEPARATOR: u8 = 0x01;
/// Byte after each property pair.
pub const PROPERTY_SEPARATOR: u8 = 0x02;

/// Java's `String.hashCode()`: `h = 31·h + c` over the UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    h
}

/// The ConsumeQueue tag code of a tag: Java `String.hashCode()` widened to a long; 0 when
/// there is no tag (RocketMQ's `MessageExtBrokerInner.tagsString2tagsCode`).
pub fn tag_hash_code(tag: Option<&str>) -> i64 {
    match tag {
        Some(tag) if !tag.is_empty() => i64::from(java_string_hash(tag)),
        _ => 0,
    }
}

/// The IndexFile key hash: `abs(String.hashCode())`, with `i32::MIN` mapped to 0 as Java's
/// `IndexFile.indexKeyHashMethod` does.
pub fn index_key_hash(key: &str) -> i32 {
    let h = java_string_hash(key).wrapping_abs();
    if h < 0 { 0 } else { h }
}

/// The body CRC as RocketMQ stores it: CRC32 of the body with the sign bit cleared
/// (`UtilAll.crc32`).
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Iterates over the `(name, value)` pairs of an encoded properties string, without copying.
/// A pair with no name/value separator is skipped, as Java's `string2messageProperties` does.
pub fn properties_iter(encoded: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    encoded
        .split(|b| *b == PROPERTY_SEPARATOR)
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let sep = pair.iter().position(|b| *b == NAME_VALUE_SEPARATOR)?;
            Some((&pair[..sep], &pair[sep + 1..]))
        })
}

/// The value of one property of an encoded properties string, if present and UTF-8.
pub fn property_value<'a>(encoded: &'a [u8], name: &str) -> Option<&'a str> {
    properties_iter(encoded)
        .find(|(k, _)| *k == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// An owned, ordered set of message properties.
///
/// Order is kept as inserted so that re-encoding a decoded string yields the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pairs: Vec<(String, String)>,
}

impl Properties {
    /// An empty set.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Parses an encoded properties string. Names and values must be UTF-8.
    pub fn parse(encoded: &[u8]) -> Result<Self, WireError> {
        let mut pairs = Vec::new();
        for (k, v) in properties_iter(encoded) {
            let k = std::str::from_utf8(k).map_err(|_| WireError::InvalidUtf8 {
                what: "property name",
            })?;
            let v = std::str::from_utf8(v).map_err(|_| WireError::InvalidUtf8 {
                what: "property value",
            })?;
            pairs.push((k.to_owned(), v.to_owned()));
        }
        Ok(Properties { pairs })
    }

    /// A property's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a property, replacing any previous value in place.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| *k == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
    }

    /// Removes a property, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.remove(at).1)
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Encodes as `name\x01value\x02…`. Names or values containing a separator byte are
    /// rejected, since they would corrupt the string.
    pub fn encode(&self) -> Result<String, WireError> {
        let mut out =
            String::with_capacity(self.pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (k, v) in &self.pairs {
            for (what, s) in [("property name", k), ("property value", v)] {
                if s.bytes()
                    .any(|b| b == NAME_VALUE_SEPARATOR || b == PROPERTY_SEPARATOR)
                {
                    return Err(WireError::invalid_field(
                        what,
                        s,
                        "contains a property separator byte (0x01 or 0x02)",
                    ));
                }
            }
            out.push_str(k);
            out.push(NAME_VALUE_SEPARATOR as char);
            out.push_str(v);
            out.push(PROPERTY_SEPARATOR as char);
        }
        if out.len() > PROPERTIES_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "properties",
                len: out.len(),
                max: PROPERTIES_BYTES_MAX,
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Record encoding

/// Everything needed to encode one CommitLog record.
///
/// The SYSFLAG host bits (0x10, 0x20) are derived from the address families of
/// `born_host`/`store_host` when encoding; whatever `sys_flag` holds there is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFields<'a> {
    /// Topic name (UTF-8, at most 65535 bytes; V2 magic above 127).
    pub topic: &'a str,
    /// Queue id within the topic.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// Logical offset in the ConsumeQueue.
    pub queue_offset: i64,
    /// CommitLog offset of the record.
    pub physical_offset: i64,
    /// SYSFLAG bits (see [`sys_flag`]).
    pub sys_flag: i32,
    /// Producer timestamp, ms.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Store timestamp, ms.
    pub store_timestamp: i64,
    /// Broker address.
    pub store_host: SocketAddr,
    /// How many times this message was reconsumed.
    pub reconsume_times: i32,
    /// Prepared transaction offset.
    pub prepared_transaction_offset: i64,
    /// The body, stored as given (compressed if the producer compressed it).
    pub body: &'a [u8],
    /// The encoded properties string.
    pub properties: &'a [u8],
}

fn host_bytes(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

fn put_host(out: &mut [u8], at: &mut usize, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => put(out, at, &ip.octets()),
        IpAddr::V6(ip) => put(out, at, &ip.octets()),
    }
    put(out, at, &i32::from(addr.port()).to_be_bytes());
}

fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

impl RecordFields<'_> {
    /// Whether this record is written with the V2 magic (topic longer than 127 bytes).
    pub fn is_v2(&self) -> bool {
        self.topic.len() > TOPIC_BYTES_MAX_V1
    }

    /// The SYSFLAG value actually written: `sys_flag` with the host bits set from the
    /// address families.
    pub fn effective_sys_flag(&self) -> i32 {
        let mut flag = self.sys_flag & !(sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6);
        if self.born_host.is_ipv6() {
            flag |= sys_flag::BORNHOST_V6;
        }
        if self.store_host.is_ipv6() {
            flag |= sys_flag::STOREHOST_V6;
        }
        flag
    }

    /// The encoded length, or an error if a part does not fit its length field.
    pub fn encoded_len(&self) -> Result<usize, WireError> {
        if self.body.len() > MESSAGE_BODY_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "message body",
                len: self.body.len(),
                max: MESSAGE_BODY_BYTES_MAX,
            });
        }
        if self.topic.len() > u16::MAX as usize {
            return Err(WireError::TooLong {
                what: "topic",
                len: self.topic.len(),
                max: u16::MAX as usize,
            });
        }
        if self.properties.len() > PROPERTIES_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "properties",
                len: self.properties.len(),
                max: PROPERTIES_BYTES_MAX,
            });
        }
        let topic_len_bytes = if self.is_v2() { 2 } else { 1 };
        Ok(4 + 4
            + 4
            + 4
            + 4
            + 8
            + 8
            + 4
            + 8
            + host_bytes(&self.born_host)
            + 8
            + host_bytes(&self.store_host)
            + 4
            + 8
            + 4
            + self.body.len()
            + topic_len_bytes
            + self.topic.len()
            + 2
            + self.properties.len())
    }

    /// Encodes into the front of `out`, which must be at least [`Self::encoded_len`] bytes;
    /// returns the number of bytes written.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = self.encoded_len()?;
        if out.len() < len {
            return Err(WireError::TooLong {
                what: "record (output buffer too small)",
                len,
                max: out.len(),
            });
        }
        let v2 = self.is_v2();
        let mut at = 0;
        put(out, &mut at, &(len as i32).to_be_bytes());
        put(
            out,
            &mut at,
            &(if v2 { MAGIC_V2 } else { MAGIC_V1 }).to_be_bytes(),
        );
        put(out, &mut at, &body_crc(self.body).to_be_bytes());
        put(out, &mut at, &self.queue_id.to_be_bytes());
        put(out, &mut at, &self.flag.to_be_bytes());
        put(out, &mut at, &self.queue_offset.to_be_bytes());
        put(out, &mut at, &self.physical_offset.to_be_bytes());
        put(out, &mut at, &self.effective_sys_flag().to_be_bytes());
        put(out, &mut at, &self.born_timestamp.to_be_bytes());
        put_host(out, &mut at, &self.born_host);
        put(out, &mut at, &self.store_timestamp.to_be_bytes());
        put_host(out, &mut at, &self.store_host);
        put(out, &mut at, &self.reconsume_times.to_be_bytes());
        put(
            out,
            &mut at,
            &self.prepared_transaction_offset.to_be_bytes(),
        );
        put(out, &mut at, &(self.body.len() as i32).to_be_bytes());
        put(out, &mut at, self.body);
        if v2 {
            put(out, &mut at, &(self.topic.len() as u16).to_be_bytes());
        } else {
            put(out, &mut at, &[self.topic.len() as u8]);
        }
        put(out, &mut at, self.topic.as_bytes());
        put(out, &mut at, &(self.properties.len() as i16).to_be_bytes());
        put(out, &mut at, self.properties);
        assert_eq!(
            at, len,
            "record encoder wrote a different length than computed"
        );
        Ok(len)
    }

    /// Encodes and appends to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), WireError> {
        let len = self.encoded_len()?;
        let start = out.len();
        out.resize(start + len, 0);
        self.encode_into(&mut out[start..])?;
        Ok(())
    }
}

/// Writes a blank end-of-file record header (`TOTALSIZE = out.len() | MAGIC_BLANK`) at the
/// front of `out`; the rest of `out` is left as is. `out` must be at least 8 bytes.
pub fn encode_blank(out: &mut [u8], total_size: usize) -> Result<(), WireError> {
    if out.len() < BLANK_RECORD_BYTES_MIN || total_size < BLANK_RECORD_BYTES_MIN {
        return Err(WireError::TooLong {
            what: "blank record (room left)",
            len: BLANK_RECORD_BYTES_MIN,
            max: out.len().min(total_size),
        });
    }
    let size = i32::try_from(total_size).map_err(|_| WireError::TooLong {
        what: "blank record",
        len: total_size,
        max: i32::MAX as usize,
    })?;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_BLANK.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Record decoding

/// Field positions of one decoded record, relative to the record's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLayout {
    /// TOTALSIZE.
    pub total_size: usize,
    /// Whether the magic is V2.
    pub v2: bool,
    /// Stored body CRC.
    pub body_crc: u32,
    /// Queue id.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// Queue offset.
    pub queue_offset: i64,
    /// Physical offset.
    pub physical_offset: i64,
    /// SYSFLAG.
    pub sys_flag: i32,
    /// Born timestamp.
    pub born_timestamp: i64,
    /// Born host.
    pub born_host: SocketAddr,
    /// Store timestamp.
    pub store_timestamp: i64,
    /// Position of STORETIMESTAMP (56 or 68).
    pub store_timestamp_pos: usize,
    /// Store host.
    pub store_host: SocketAddr,
    /// Reconsume times.
    pub reconsume_times: i32,
    /// Prepared transaction offset.
    pub prepared_transaction_offset: i64,
    /// Body range.
    pub body: std::ops::Range<usize>,
    /// Topic range (validated UTF-8).
    pub topic: std::ops::Range<usize>,
    /// Properties range.
    pub properties: std::ops::Range<usize>,
}

/// What sits at a position of a CommitLog segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAt {
    /// A message record.
    Message(RecordLayout),
    /// A blank end-of-file record spanning `total_size` bytes.
    Blank {
        /// Bytes covered by the blank record.
        total_size: usize,
    },
}

/// A bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    /// Where the record starts in the caller's buffer, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(WireError::Truncated {
                what,
                needed: (self.at + n).saturating_sub(self.buf.len()),
            }),
        }
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn host(&mut self, v6: bool, what: &'static str) -> Result<SocketAddr, WireError> {
        let ip = if v6 {
            let b = self.take(16, what)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            let b = self.take(4, what)?;
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        let port = self.i32(what)?;
        let port = u16::try_from(port).map_err(|_| self.corrupt(format!("{what} port {port}")))?;
        Ok(SocketAddr::new(ip, port))
    }
    fn corrupt(&self, reason: String) -> WireError {
        WireError::CorruptRecord {
            at: self.base + self.at,
            reason,
        }
    }
}

/// Decodes the record at the front of `buf` (a record or a blank), checking its structure
/// and, when `check_crc`, its body CRC. `base` is the position of `buf` within whatever the
/// caller is decoding, used in error positions only.
///
/// Errors: [`WireError::Truncated`] when `buf` ends inside the record (more bytes may make
/// it whole), [`WireError::CorruptRecord`] when the bytes can never be a valid record.
pub fn decode_record_at(buf: &[u8], base: usize, check_crc: bool) -> Result<RecordAt, WireError> {
    let mut r = Reader { buf, at: 0, base };
    let total = r.i32("record total size")?;
    let magic = r.i32("record magic code")?;
    if magic == MAGIC_BLANK {
        if total < BLANK_RECORD_BYTES_MIN as i32 {
            return Err(r.corrupt(format!("blank record total size {total}")));
        }
        return Ok(RecordAt::Blank {
            total_size: total as usize,
        });
    }
    let v2 = match magic {
        MAGIC_V1 => false,
        MAGIC_V2 => true,
        other => return Err(r.corrupt(format!("bad magic code {:#010x}", other as u32))),
    };
    let min = RECORD_FIXED_BYTES_V1_IPV4 as i32;
    if total < min || total as usize > RECORD_BYTES_MAX {
        return Err(r.corrupt(format!("record total size {total} out of range")));
    }
    let total_size = total as usize;
    if buf.len() < total_size {
        return Err(WireError::Truncated {
            what: "record",
            needed: total_size - buf.len(),
        });
    }
    // From here on, read only inside the record.
    let mut r = Reader {
        buf: &buf[..total_size],
        at: 8,
        base,
    };
    let stored_crc = r.i32("body crc")? as u32;
    let queue_id = r.i32("queue id")?;
    let flag = r.i32("flag")?;
    let queue_offset = r.i64("queue offset")?;
    let physical_offset = r.i64("physical offset")?;
    let sys_flag = r.i32("sys flag")?;
    let born_timestamp = r.i64("born timestamp")?;
    let born_host = r.host(sys_flag & sys_flag::BORNHOST_V6 != 0, "born host")?;
    let store_timestamp_pos = r.at;
    let store_timestamp = r.i64("store timestamp")?;
    let store_host = r.host(sys_flag & sys_flag::STOREHOST_V6 != 0, "store host")?;
    let reconsume_times = r.i32("reconsume times")?;
    let prepared_transaction_offset = r.i64("prepared transaction offset")?;
    let body_len = r.i32("body length")?;
    if body_len < 0 || body_len as usize > MESSAGE_BODY_BYTES_MAX {
        return Err(r.corrupt(format!("body length {body_len}")));
    }
    let body_start = r.at;
    r.take(body_len as usize, "body")?;
    let body = body_start..r.at;
    let topic_len = if v2 {
        let b = r.take(2, "topic length")?;
        u16::from_be_bytes([b[0], b[1]]) as usize
    } else {
        r.take(1, "topic length")?[0] as usize
    };
    let topic_start = r.at;
    let topic_bytes = r.take(topic_len, "topic")?;
    if std::str::from_utf8(topic_bytes).is_err() {
        return Err(r.corrupt("topic is not UTF-8".into()));
    }
    let topic = topic_start..r.at;
    let b = r.take(2, "properties length")?;
    let props_len = i16::from_be_bytes([b[0], b[1]]);
    if props_len < 0 {
        return Err(r.corrupt(format!("properties length {props_len}")));
    }
    let props_start = r.at;
    r.take(props_len as usize, "properties")?;
    let properties = props_start..r.at;
    if r.at != total_size {
        return Err(r.corrupt(format!(
            "fields end at {} but total size is {total_size}",
            r.at
        )));
    }
    if check_crc {
        let actual = body_crc(&buf[body.clone()]);
        if actual != stored_crc {
            return Err(WireError::CorruptRecord {
                at: base,
                reason: format!("body CRC {actual:#010x} does not match stored {stored_crc:#010x}"),
            });
        }
    }
    Ok(RecordAt::Message(RecordLayout {
        total_size,
        v2,
        body_crc: stored_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_timestamp_pos,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    }))
}

/// A decoded stored message: its fields, and zero-copy slices of the buffer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The whole record, byte for byte.
    pub raw: Bytes,
    /// Field values and positions.
    pub layout: RecordLayout,
}

impl StoredMessage {
    /// Decodes one message record from the front of `buf` (a blank record is an error here).
    pub fn decode(buf: &Bytes, check_crc: bool) -> Result<Self, WireError> {
        match decode_record_at(buf, 0, check_crc)? {
            RecordAt::Message(layout) => Ok(StoredMessage {
                raw: buf.slice(..layout.total_size),
                layout,
            }),
            RecordAt::Blank { .. } => Err(WireError::CorruptRecord {
                at: 0,
                reason: "blank end-of-file record where a message was expected".into(),
            }),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        // Validated as UTF-8 when decoded.
        std::str::from_utf8(&self.raw[self.layout.topic.clone()]).unwrap_or_default()
    }

    /// The body (as stored; compressed when `sys_flag & COMPRESSED`).
    pub fn body(&self) -> Bytes {
        self.raw.slice(self.layout.body.clone())
    }

    /// The encoded properties string.
    pub fn properties_raw(&self) -> &[u8] {
        &self.raw[self.layout.properties.clone()]
    }

    /// One property's value.
    pub fn property(&self, name: &str) -> Option<&str> {
        property_value(self.properties_raw(), name)
    }

    /// The TAGS property.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// The KEYS property, split on spaces.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.property(property::KEYS)
            .unwrap_or_default()
            .split(property::KEY_SEPARATOR)
            .filter(|k| !k.is_empty())
    }

    /// The client unique key (`UNIQ_KEY`).
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(property::UNIQ_KEY)
    }

    /// The broker's offset msgId of this message.
    pub fn offset_msg_id(&self) -> String {
        crate::msgid::offset_msg_id(self.layout.store_host, self.layout.physical_offset)
    }
}

/// Decodes a concatenation of stored records (a pull response body) into messages.
/// `check_crc` verifies every body CRC. Blank records are an error: a pull body never
/// contains one. At most `max_messages` are decoded (bounds the output vector).
pub fn decode_records(
    body: &Bytes,
    check_crc: bool,
    max_messages: usize,
) -> Result<Vec<StoredMessage>, WireError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if out.len() == max_messages {
            return Err(WireError::TooLong {
                what: "pull body (message count)",
                len: out.len() + 1,
                max: max_messages,
            });
        }
        match decode_record_at(&body[at..], at, check_crc)? {
            RecordAt::Message(layout) => {
                let len = layout.total_size;
                out.push(StoredMessage {
                    raw: body.slice(at..at + len),
                    layout,
                });
                at += len;
            }
            RecordAt::Blank { .. } => {
                return Err(WireError::CorruptRecord {
                    at,
                    reason: "blank end-of-file record inside a pull body".into(),
                });
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Batch send body

/// One message of a batch send body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    /// User flag.
    pub flag: i32,
    /// Body.
    pub body: Bytes,
    /// Encoded properties string.
    pub properties: Bytes,
}

/// Fixed bytes of one batch entry: size, magic, crc, flag, body length, properties length.
const BATCH_ENTRY_FIXED_BYTES: usize = 4 + 4 + 4 + 4 + 4 + 2;

/// Encodes a batch send body (`MessageDecoder.encodeMessages`).
pub fn encode_batch(messages: &[BatchMessage], out: &mut BytesMut) -> Result<(), WireError> {
    for m in messages {
        if m.body.len() > MESSAGE_BODY_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "message body",
                len: m.body.len(),
                max: MESSAGE_BODY_BYTES_MAX,
            });
        }
        if m.properties.len() > PROPERTIES_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "properties",
                len: m.properties.len(),
                max: PROPERTIES_BYTES_MAX,
            });
        }
        let size = BATCH_ENTRY_FIXED_BYTES + m.body.len() + m.properties.len();
        out.reserve(size);
        out.put_i32(size as i32);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(m.flag);
        out.put_i32(m.body.len() as i32);
        out.put_slice(&m.body);
        out.put_i16(m.properties.len() as i16);
        out.put_slice(&m.properties);
    }
    Ok(())
}

/// Decodes a batch send body into its messages, zero-copy; at most `max_messages`.
pub fn decode_batch(body: &Bytes, max_messages: usize) -> Result<Vec<BatchMessage>, WireError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if out.len() == max_messages {
            return Err(WireError::TooLong {
                what: "batch (message count)",
                len: out.len() + 1,
                max: max_messages,
            });
        }
        let mut r = Reader {
            buf: &body[at..],
            at: 0,
            base: at,
        };
        let size = r.i32("batch entry size")?;
        if size < BATCH_ENTRY_FIXED_BYTES as i32 {
            return Err(r.corrupt(format!("batch entry size {size}")));
        }
        let size = size as usize;
        if size > body.len() - at {
            return Err(WireError::Truncated {
                what: "batch entry",
                needed: size - (body.len() - at),
            });
        }
        r.buf = &body[at..at + size];
        let _magic = r.i32("batch entry magic")?;
        let _crc = r.i32("batch entry crc")?;
        let flag = r.i32("batch entry flag")?;
        let body_len = r.i32("batch entry body length")?;
        if body_len < 0 || body_len as usize > MESSAGE_BODY_BYTES_MAX {
            return Err(r.corrupt(format!("batch entry body length {body_len}")));
        }
        let body_start = r.at;
        r.take(body_len as usize, "batch entry body")?;
        let body_range = at + body_start..at + r.at;
        let b = r.take(2, "batch entry properties length")?;
        let props_len = i16::from_be_bytes([b[0], b[1]]);
        if props_len < 0 {
            return Err(r.corrupt(format!("batch entry properties length {props_len}")));
        }
        let props_start = r.at;
        r.take(props_len as usize, "batch entry properties")?;
        let props_range = at + props_start..at + r.at;
        if r.at != size {
            return Err(r.corrupt(format!(
                "batch entry fields end at {} but its size is {size}",
                r.at
            )));
        }
        out.push(BatchMessage {
            flag,
            body: body.slice(body_range),
            properties: body.slice(props_range),
        });
        at += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample<'a>(topic: &'a str, body: &'a [u8], props: &'a [u8]) -> RecordFields<'a> {
        RecordFields {
            topic,
            queue_id: 3,
            flag: 7,
            queue_offset: 42,
            physical_offset: 0x1000,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: "10.0.0.1:5555".parse().unwrap(),
            store_timestamp: 1_700_000_000_123,
            store_host: "10.66.51.58:10911".parse().unwrap(),
            reconsume_times: 1,
            prepared_transaction_offset: 0,
            body,
            properties: props,
        }
    }

    fn encode(fields: &RecordFields<'_>) -> Bytes {
        let mut out = BytesMut::new();
        fields.encode(&mut out).unwrap();
        out.freeze()
    }

    #[test]
    fn java_hash_matches_known_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // Non-ASCII goes through UTF-16 code units: "é" is U+00E9.
        assert_eq!(java_string_hash("é"), 0xE9);
        assert_eq!(tag_hash_code(None), 0);
        assert_eq!(tag_hash_code(Some("TagA")), 2_598_919);
        assert_eq!(
            index_key_hash("polygenelubricants"),
            0,
            "i32::MIN maps to 0"
        );
    }

    #[test]
    fn golden_v1_record_with_properties() {
        let props = b"TAGS\x01TagA\x02KEYS\x01k1\x02";
        let rec = encode(&sample("T1", b"hi", props));
        let mut expected: Vec<u8> = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 113]); // 91 + 2 body + 2 topic + 18 props
        expected.extend_from_slice(&[0xDA, 0xA3, 0x20, 0xA7]);
        expected.extend_from_slice(&[0x58, 0x93, 0x2A, 0xAC]); // crc32("hi") & 0x7FFFFFFF
        expected.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 42]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x10, 0]);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00]);
        expected.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0x15, 0xB3]);
        expected.extend_from_slice(&[0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x7B]);
        expected.extend_from_slice(&[10, 66, 51, 58, 0, 0, 0x2A, 0x9F]);
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'h', b'i']);
        expected.extend_from_slice(&[2, b'T', b'1']);
        expected.extend_from_slice(&[0, 18]);
        expected.extend_from_slice(props);
        assert_eq!(&rec[..], &expected[..]);

        let msg = StoredMessage::decode(&rec, true).unwrap();
        assert_eq!(msg.topic(), "T1");
        assert_eq!(&msg.body()[..], b"hi");
        assert_eq!(msg.tags(), Some("TagA"));
        assert_eq!(msg.keys().collect::<Vec<_>>(), vec!["k1"]);
        assert_eq!(msg.layout.store_timestamp_pos, 56);
        assert_eq!(msg.offset_msg_id(), "0A42333A00002A9F0000000000001000");
    }

    #[test]
    fn v2_and_ipv6_round_trip() {
        let topic = "t".repeat(200);
        let mut f = sample(&topic, b"body", b"");
        f.born_host = "[::1]:80".parse().unwrap();
        f.store_host = "[fe80::2]:10911".parse().unwrap();
        let rec = encode(&f);
        let msg = StoredMessage::decode(&rec, true).unwrap();
        assert!(msg.layout.v2);
        assert_eq!(msg.topic(), topic);
        assert_eq!(msg.layout.born_host, f.born_host);
        assert_eq!(msg.layout.store_host, f.store_host);
        assert_eq!(msg.layout.store_timestamp_pos, 68);
        assert_eq!(
            msg.layout.sys_flag,
            sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let rec = encode(&sample("Topic", b"payload", b"TAGS\x01a\x02"));
        for cut in 0..rec.len() {
            let part = rec.slice(..cut);
            assert!(StoredMessage::decode(&part, true).is_err(), "cut at {cut}");
            assert!(decode_records(&part, true, 16).is_err() || cut == 0);
        }
    }

    #[test]
    fn crc_mismatch_is_detected() {
        let rec = encode(&sample("Topic", b"payload", b""));
        let mut bad = BytesMut::from(&rec[..]);
        let body_at = 84 + 4;
        bad[body_at] ^= 1;
        let bad = bad.freeze();
        assert!(StoredMessage::decode(&bad, false).is_ok());
        let err = StoredMessage::decode(&bad, true).unwrap_err();
        assert!(matches!(err, WireError::CorruptRecord { .. }), "{err}");
    }

    #[test]
    fn blank_record() {
        let mut buf = [0u8; 32];
        encode_blank(&mut buf, 32).unwrap();
        assert_eq!(
            decode_record_at(&buf, 0, true).unwrap(),
            RecordAt::Blank { total_size: 32 }
        );
        assert!(encode_blank(&mut buf[..4], 4).is_err());
    }

    #[test]
    fn pull_body_of_several_records() {
        let mut body = BytesMut::new();
        for i in 0..5 {
            let mut f = sample("Topic", b"x", b"");
            f.queue_offset = i;
            f.encode(&mut body).unwrap();
        }
        let body = body.freeze();
        let msgs = decode_records(&body, true, 16).unwrap();
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[4].layout.queue_offset, 4);
        assert!(decode_records(&body, true, 4).is_err());
    }

    #[test]
    fn properties_round_trip_and_reject_separators() {
        let mut p = Properties::new();
        p.insert(property::TAGS, "TagA");
        p.insert(property::KEYS, "a b");
        p.insert(property::TAGS, "TagB");
        let enc = p.encode().unwrap();
        assert_eq!(enc, "TAGS\u{1}TagB\u{2}KEYS\u{1}a b\u{2}");
        assert_eq!(Properties::parse(enc.as_bytes()).unwrap(), p);
        assert_eq!(property_value(enc.as_bytes(), "KEYS"), Some("a b"));
        assert_eq!(p.remove("KEYS").as_deref(), Some("a b"));
        p.insert("bad", "x\u{1}y");
        assert!(p.encode().is_err());
        // A pair without a separator is skipped, like Java does.
        assert_eq!(Properties::parse(b"junk\x02A\x01B\x02").unwrap().len(), 1);
    }

    #[test]
    fn golden_batch_body() {
        let msgs = vec![
            BatchMessage {
                flag: 0,
                body: Bytes::from_static(b"ab"),
                properties: Bytes::from_static(b"K\x01V\x02"),
            },
            BatchMessage {
                flag: 5,
                body: Bytes::new(),
                properties: Bytes::new(),
            },
        ];
        let mut out = BytesMut::new();
        encode_batch(&msgs, &mut out).unwrap();
        let expected: &[u8] = &[
            0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 0, 4, b'K', 1,
            b'V', 2, //
            0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(&out[..], expected);
        let out = out.freeze();
        assert_eq!(decode_batch(&out, 10).unwrap(), msgs);
        for cut in 1..out.len() {
            if cut == 28 {
                continue; // a whole first entry is a valid batch of one
            }
            assert!(decode_batch(&out.slice(..cut), 10).is_err(), "cut at {cut}");
        }
        assert!(decode_batch(&out, 1).is_err());
    }

    proptest! {
        #[test]
        fn batch_round_trip(
            msgs in proptest::collection::vec(
                (any::<i32>(), proptest::collection::vec(any::<u8>(), 0..200), "[a-z]{0,8}"),
                0..20,
            )
        ) {
            let batch: Vec<BatchMessage> = msgs
                .into_iter()
                .map(|(flag, body, tag)| {
                    let mut p = Properties::new();
                    if !tag.is_empty() { p.insert(property::TAGS, tag); }
                    BatchMessage {
                        flag,
                        body: Bytes::from(body),
                        properties: Bytes::from(p.encode().unwrap()),
                    }
                })
                .collect();
            let mut out = BytesMut::new();
            encode_batch(&batch, &mut out).unwrap();
            prop_assert_eq!(decode_batch(&out.freeze(), 64).unwrap(), batch);
        }

        #[test]
        fn properties_round_trip(pairs in proptest::collection::vec(("[A-Za-z_]{1,12}", "[ -~]{0,20}"), 0..10)) {
            let mut p = Properties::new();
            for (k, v) in &pairs { p.insert(k.clone(), v.clone()); }
            let enc = p.encode().unwrap();
            prop_assert_eq!(Properties::parse(enc.as_bytes()).unwrap(), p.clone());
            for (k, _) in &pairs {
                prop_assert_eq!(property_value(enc.as_bytes(), k), p.get(k));
            }
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let b = Bytes::from(data);
            let _ = decode_records(&b, true, 64);
            let _ = decode_batch(&b, 64);
            let _ = decode_record_at(&b, 0, false);
            let _ = Properties::parse(&b);
        }

        #[test]
        fn record_round_trip(
            topic in "[a-zA-Z0-9_%-]{1,200}",
            body in proptest::collection::vec(any::<u8>(), 0..300),
            queue_id in any::<i32>(),
            queue_offset in any::<i64>(),
            physical_offset in any::<i64>(),
            tag in "[a-zA-Z]{0,10}",
        ) {
            let mut p = Properties::new();
            if !tag.is_empty() { p.insert(property::TAGS, tag.clone()); }
            let props = p.encode().unwrap();
            let mut f = sample(&topic, &body, props.as_bytes());
            f.queue_id = queue_id;
            f.queue_offset = queue_offset;
            f.physical_offset = physical_offset;
            let rec = encode(&f);
            let m = StoredMessage::decode(&rec, true).unwrap();
            prop_assert_eq!(m.topic(), topic.as_str());
            prop_assert_eq!(&m.body()[..], &body[..]);
            prop_assert_eq!(m.layout.queue_id, queue_id);
            prop_assert_eq!(m.layout.queue_offset, queue_offset);
            prop_assert_eq!(m.layout.physical_offset, physical_offset);
            prop_assert_eq!(m.tags(), if tag.is_empty() { None } else { Some(tag.as_str()) });
            // Mutating any single byte never panics.
            for i in 0..rec.len() {
                let mut bad = BytesMut::from(&rec[..]);
                bad[i] ^= 0x80;
                let _ = StoredMessage::decode(&bad.freeze(), true);
            }
        }
    }
}
