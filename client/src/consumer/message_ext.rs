//! [`MessageExt`]: a received message, decoded from the stored records of a pull response
//! (the wire crate's record codec), with its body decompressed.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;

use bytes::Bytes;
use flate2::read::ZlibDecoder;
use ringmq_wire::record::{StoredMessage, property, sys_flag};

use crate::error::{ClientError, Result};
use crate::limits::MESSAGE_BODY_BYTES_MAX;
use crate::message::decode_properties;
use crate::queue::MessageQueue;

/// A message as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// The topic it was stored under (a retry topic for redeliveries; see
    /// [`MessageExt::original_topic`]).
    pub topic: String,
    /// The broker it was pulled from.
    pub broker_name: String,
    /// The queue id.
    pub queue_id: i32,
    /// The offset in the queue.
    pub queue_offset: i64,
    /// The CommitLog offset.
    pub commit_log_offset: i64,
    /// The body, decompressed.
    pub body: Bytes,
    /// The user flag.
    pub flag: i32,
    /// The record's system flag.
    pub sys_flag: i32,
    /// Properties (tags, keys, user properties…).
    pub properties: BTreeMap<String, String>,
    /// When the producer created it (ms).
    pub born_timestamp: i64,
    /// The producer's address.
    pub born_host: SocketAddr,
    /// When the broker stored it (ms).
    pub store_timestamp: i64,
    /// The broker's address.
    pub store_host: SocketAddr,
    /// Times it was delivered again after failed consumption.
    pub reconsume_times: i32,
    /// The broker-generated id (store host + CommitLog offset).
    pub offset_msg_id: String,
}

impl MessageExt {
    /// Converts a decoded record pulled from `broker_name`, decompressing the body if its
    /// sysflag says so (bounded by the 4 MiB message limit).
    pub fn from_stored(stored: &StoredMessage, broker_name: &str) -> Result<Self> {
        let layout = &stored.layout;
        let mut body = stored.body();
        if layout.sys_flag & sys_flag::COMPRESSED != 0 {
            body = inflate(&body).map_err(|reason| {
                ClientError::InvalidArgument(format!(
                    "message at offset {} of {}:{} has a body that does not decompress: {reason}",
                    layout.queue_offset,
                    stored.topic(),
                    layout.queue_id
                ))
            })?;
        }
        let properties =
            decode_properties(std::str::from_utf8(stored.properties_raw()).unwrap_or_default());
        Ok(MessageExt {
            topic: stored.topic().to_owned(),
            broker_name: broker_name.to_owned(),
            queue_id: layout.queue_id,
            queue_offset: layout.queue_offset,
            commit_log_offset: layout.physical_offset,
            body,
            flag: layout.flag,
            sys_flag: layout.sys_flag,
            properties,
            born_timestamp: layout.born_timestamp,
            born_host: layout.born_host,
            store_timestamp: layout.store_timestamp,
            store_host: layout.store_host,
            reconsume_times: layout.reconsume_times,
            offset_msg_id: stored.offset_msg_id(),
        })
    }

    /// The message id applications see: the client's `UNIQ_KEY` if set, else the broker id.
    pub fn msg_id(&self) -> &str {
        self.property(property::UNIQ_KEY)
            .unwrap_or(&self.offset_msg_id)
    }

    /// A property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The tag, if any.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// The keys.
    pub fn keys(&self) -> Vec<&str> {
        self.property(property::KEYS)
            .map(|k| k.split(' ').filter(|k| !k.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The topic the producer sent to: for a redelivered message (stored in the group's
    /// retry topic) the `RETRY_TOPIC` property, else the topic.
    pub fn original_topic(&self) -> &str {
        self.property(property::RETRY_TOPIC).unwrap_or(&self.topic)
    }

    /// The queue it came from.
    pub fn queue(&self) -> MessageQueue {
        MessageQueue::new(self.topic.clone(), self.broker_name.clone(), self.queue_id)
    }
}

fn inflate(body: &[u8]) -> std::result::Result<Bytes, String> {
    let mut out = Vec::with_capacity(body.len() * 2);
    ZlibDecoder::new(body)
        .take(MESSAGE_BODY_BYTES_MAX as u64 * 4 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > MESSAGE_BODY_BYTES_MAX * 4 {
        return Err(format!(
            "inflates past {} bytes",
            MESSAGE_BODY_BYTES_MAX * 4
        ));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use bytes::BytesMut;
    use ringmq_wire::record::{RecordFields, decode_records};

    use super::*;

    pub(crate) fn record(
        topic: &str,
        queue_offset: i64,
        body: &[u8],
        properties: &str,
        sys_flag: i32,
    ) -> Bytes {
        let mut out = BytesMut::new();
        RecordFields {
            topic,
            queue_id: 1,
            flag: 0,
            queue_offset,
            physical_offset: 1000 + queue_offset,
            sys_flag,
            born_timestamp: 1,
            born_host: "127.0.0.1:5555".parse().expect("addr"),
            store_timestamp: 2,
            store_host: "127.0.0.1:10911".parse().expect("addr"),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties: properties.as_bytes(),
        }
        .encode(&mut out)
        .expect("encode");
        out.freeze()
    }

    #[test]
    fn decodes_and_decompresses_pulled_records() {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
        encoder.write_all(&[7u8; 10_000]).expect("compress");
        let compressed = encoder.finish().expect("compress");
        let mut body = BytesMut::new();
        body.extend_from_slice(&record(
            "T",
            5,
            b"plain",
            "TAGS\u{1}A\u{2}UNIQ_KEY\u{1}ID1\u{2}",
            0,
        ));
        body.extend_from_slice(&record("T", 6, &compressed, "", sys_flag::COMPRESSED));
        let stored = decode_records(&body.freeze(), true, 32).expect("records");
        let first = MessageExt::from_stored(&stored[0], "b").expect("first");
        assert_eq!(&first.body[..], b"plain");
        assert_eq!(first.tags(), Some("A"));
        assert_eq!(first.msg_id(), "ID1");
        assert_eq!(first.queue(), MessageQueue::new("T", "b", 1));
        let second = MessageExt::from_stored(&stored[1], "b").expect("second");
        assert_eq!(second.body.len(), 10_000);
        assert_eq!(second.msg_id(), second.offset_msg_id);
        assert_eq!(second.queue_offset, 6);
    }
}
