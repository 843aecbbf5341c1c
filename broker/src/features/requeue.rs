//! Re-appending a message under another topic/queue: the shard-internal primitive behind
//! the delay service (a due message goes from `SCHEDULE_TOPIC_XXXX` to its real topic),
//! consumer send-back (a failed message goes to `%RETRY%<group>` or `%DLQ%<group>`) and
//! transaction commits (a half message goes to its real topic).
//!
//! A [`Requeue`] is a message decoded from a stored record ([`Requeue::load`],
//! [`Requeue::from_stored`]) or built by hand, whose destination, properties, SYSFLAG or
//! reconsume count the caller then changes; [`append`] stores it as a new record, keeping
//! body, flag, born host and born time, and wakes the pulls waiting on the destination
//! queue once the record is visible. The store host and store time are the shard's, as for
//! any append.
//!
//! Runs on the shard's thread, synchronously, like a send: the append is final when
//! [`append`] returns, durable once the store's durable offset passes
//! [`Appended::end_offset`].
//!
//! ```ignore
//! let mut message = Requeue::load(&state.store, offset)?;
//! message.topic = "%RETRY%group".into();
//! message.queue_id = 0;
//! message.reconsume_times += 1;
//! let appended = requeue::append(state, &message, now_ms)?;
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_wire::ResponseCode;
use ringmq_wire::record::{self, Properties, StoredMessage, property};

use crate::server::state::ShardState;
use crate::server::store::{Appended, PutMessage, ShardStore, StoreError};

/// Why a message could not be re-appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequeueError {
    /// No message is stored at the offset (never written, or deleted by retention).
    #[error("no message at commit log offset {offset}")]
    NotFound {
        /// The commit log offset asked for.
        offset: i64,
    },
    /// The record at the offset is not a valid message (bad structure or body CRC).
    #[error("the record at commit log offset {offset} is unreadable: {reason}")]
    Corrupt {
        /// The commit log offset of the record.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The properties cannot be parsed or encoded (too long once changed, bad separators).
    #[error("the properties of the message for {topic} are invalid: {reason}")]
    Properties {
        /// The destination topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The store refused the append.
    #[error("appending to {topic} queue {queue_id} failed: {source}")]
    Store {
        /// The destination topic.
        topic: String,
        /// The destination queue.
        queue_id: i32,
        /// The store's error.
        source: StoreError,
    },
}

impl RequeueError {
    /// The response code a request handler answers with for this error.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            RequeueError::NotFound { .. } | RequeueError::Corrupt { .. } => {
                ResponseCode::SystemError
            }
            RequeueError::Properties { .. } => ResponseCode::MessageIllegal,
            RequeueError::Store { source, .. } => match source {
                StoreError::NotWritable { .. } => ResponseCode::ServiceNotAvailable,
                StoreError::Busy { .. } => ResponseCode::SystemBusy,
                StoreError::MessageIllegal { .. } => ResponseCode::MessageIllegal,
                StoreError::NotFound { .. } | StoreError::Failed { .. } => {
                    ResponseCode::SystemError
                }
            },
        }
    }
}

/// Where a loaded message was stored (read-only facts of the source record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Topic of the stored record.
    pub topic: String,
    /// Queue id of the stored record.
    pub queue_id: i32,
    /// Logical offset of the stored record in its queue.
    pub queue_offset: i64,
    /// Commit log offset of the stored record.
    pub physical_offset: i64,
    /// Store time of the stored record, ms.
    pub store_timestamp: i64,
    /// The broker's offset msgId of the stored record.
    pub offset_msg_id: String,
}

/// A message to re-append. Every field is the caller's to change before [`append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    /// Destination topic.
    pub topic: String,
    /// Destination queue id.
    pub queue_id: i32,
    /// User flag (kept from the source).
    pub flag: i32,
    /// SYSFLAG (the IPv6 host bits are recomputed from the addresses when encoding).
    pub sys_flag: i32,
    /// Producer timestamp, ms (kept from the source).
    pub born_timestamp: i64,
    /// Producer address (kept from the source).
    pub born_host: SocketAddr,
    /// Reconsume count written in the record.
    pub reconsume_times: i32,
    /// Prepared transaction offset written in the record.
    pub prepared_transaction_offset: i64,
    /// The body, as stored (compressed when `sys_flag` says so).
    pub body: Bytes,
    /// The properties.
    pub properties: Properties,
    /// ConsumeQueue tag slot; `None` = the hash code of the `TAGS` property (what every
    /// topic but `SCHEDULE_TOPIC_XXXX` stores there).
    pub tags_code: Option<i64>,
    /// The record it was decoded from, if any.
    pub source: Option<Source>,
}

impl Requeue {
    /// Decodes the message stored at `physical_offset`, checking its body CRC.
    pub fn load<S: ShardStore>(store: &S, physical_offset: i64) -> Result<Self, RequeueError> {
        let raw = store.read_at(physical_offset).map_err(|e| match e {
            StoreError::NotFound { .. } => RequeueError::NotFound {
                offset: physical_offset,
            },
            other => RequeueError::Corrupt {
                offset: physical_offset,
                reason: other.to_string(),
            },
        })?;
        let stored = StoredMessage::decode(&raw, true).map_err(|e| RequeueError::Corrupt {
            offset: physical_offset,
            reason: e.to_string(),
        })?;
        Self::from_stored(&stored)
    }

    /// The message of a decoded record, addressed to the record's own topic and queue.
    pub fn from_stored(stored: &StoredMessage) -> Result<Self, RequeueError> {
        let layout = &stored.layout;
        let properties =
            Properties::parse(stored.properties_raw()).map_err(|e| RequeueError::Corrupt {
                offset: layout.physical_offset,
                reason: format!("properties: {e}"),
            })?;
        Ok(Requeue {
            topic: stored.topic().to_owned(),
            queue_id: layout.queue_id,
            flag: layout.flag,
            sys_flag: layout.sys_flag,
            born_timestamp: layout.born_timestamp,
            born_host: layout.born_host,
            reconsume_times: layout.reconsume_times,
            prepared_transaction_offset: layout.prepared_transaction_offset,
            body: stored.body(),
            properties,
            tags_code: None,
            source: Some(Source {
                topic: stored.topic().to_owned(),
                queue_id: layout.queue_id,
                queue_offset: layout.queue_offset,
                physical_offset: layout.physical_offset,
                store_timestamp: layout.store_timestamp,
                offset_msg_id: stored.offset_msg_id(),
            }),
        })
    }

    /// The store's view of this message, stored by the shard at `store_host`.
    pub fn to_put(&self, store_host: SocketAddr) -> Result<PutMessage, RequeueError> {
        let encoded = self
            .properties
            .encode()
            .map_err(|e| RequeueError::Properties {
                topic: self.topic.clone(),
                reason: e.to_string(),
            })?;
        let keys = PutMessage::index_keys(self.properties.get(property::KEYS));
        Ok(PutMessage {
            topic: self.topic.clone(),
            queue_id: self.queue_id,
            flag: self.flag,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: self.body.clone(),
            properties: encoded,
            tags_code: self
                .tags_code
                .unwrap_or_else(|| record::tag_hash_code(self.properties.get(property::TAGS))),
            keys,
            uniq_key: self.properties.get(property::UNIQ_KEY).map(str::to_owned),
        })
    }
}

/// Appends `message` on this shard, counts it, and wakes the pulls parked on its queue once
/// the record is visible. Returns where it went.
pub fn append<S: ShardStore>(
    state: &mut ShardState<S>,
    message: &Requeue,
    now_ms: u64,
) -> Result<Appended, RequeueError> {
    let put = message.to_put(state.identity.store_host)?;
    let body_len = put.body.len() as u64;
    let appended = state
        .store
        .append(put)
        .map_err(|source| RequeueError::Store {
            topic: message.topic.clone(),
            queue_id: message.queue_id,
            source,
        })?;
    state.stats.put_messages += 1;
    state.stats.put_bytes += body_len;
    state.wake_pulls_when_visible(
        &message.topic,
        message.queue_id,
        appended.queue_offset + 1,
        appended.end_offset,
        now_ms,
    );
    Ok(appended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::handler::testing::{TestShard, send_request};
    use crate::server::store::QueueRead;

    fn read_one(shard: &TestShard, topic: &str, queue_id: i32, offset: i64) -> StoredMessage {
        let result = shard
            .state
            .store
            .get(&QueueRead {
                topic,
                queue_id,
                offset,
                max_count: 1,
                max_bytes: 1 << 20,
                tag_codes: None,
                splice: false,
            })
            .expect("read");
        let raw = result.records.first().expect("one record").clone();
        StoredMessage::decode(raw.memory().expect("in memory"), true).expect("decodes")
    }

    #[test]
    fn a_loaded_message_reappends_under_another_topic_keeping_body_and_born_fields() {
        let mut shard = TestShard::new();
        let response = shard.call(send_request(
            "Orig",
            1,
            b"payload",
            &[("TAGS", "tagA"), ("KEYS", "k1 k2"), ("UNIQ_KEY", "U1")],
        ));
        assert_eq!(response.code, 0, "{:?}", response.remark);
        let original = read_one(&shard, "Orig", 1, 0);
        let mut message =
            Requeue::load(&shard.state.store, original.layout.physical_offset).expect("load");
        let source = message.source.clone().expect("source");
        assert_eq!(
            (source.topic.as_str(), source.queue_id, source.queue_offset),
            ("Orig", 1, 0)
        );
        assert_eq!(source.offset_msg_id, original.offset_msg_id());
        message.topic = "Other".into();
        message.queue_id = 0;
        message.reconsume_times = 7;
        message.properties.insert("EXTRA", "x");
        let appended = append(&mut shard.state, &message, shard.now_ms).expect("append");
        assert!(appended.physical_offset > original.layout.physical_offset);
        let copy = read_one(&shard, "Other", 0, 0);
        assert_eq!(&copy.body()[..], b"payload");
        assert_eq!(copy.layout.born_timestamp, original.layout.born_timestamp);
        assert_eq!(copy.layout.born_host, original.layout.born_host);
        assert_eq!(copy.layout.flag, original.layout.flag);
        assert_eq!(copy.layout.reconsume_times, 7);
        assert_eq!(copy.property("EXTRA"), Some("x"));
        assert_eq!(copy.tags(), Some("tagA"));
        // Indexed under the new topic, by key and unique key.
        for key in ["k1", "U1"] {
            let found = shard
                .state
                .store
                .query_by_key("Other", key, 10, 0, i64::MAX)
                .expect("query");
            assert_eq!(found.len(), 1, "key {key}");
        }
    }

    #[test]
    fn the_tag_slot_defaults_to_the_tag_hash_and_can_be_overridden() {
        let mut shard = TestShard::new();
        shard.call(send_request("T", 0, b"x", &[("TAGS", "tagA")]));
        let stored = read_one(&shard, "T", 0, 0);
        let mut message = Requeue::from_stored(&stored).expect("decode");
        let put = message
            .to_put(shard.state.identity.store_host)
            .expect("put");
        assert_eq!(put.tags_code, record::tag_hash_code(Some("tagA")));
        message.tags_code = Some(42);
        let put = message
            .to_put(shard.state.identity.store_host)
            .expect("put");
        assert_eq!(put.tags_code, 42);
        assert_eq!(put.keys, Vec::<String>::new());
    }

    #[test]
    fn loading_a_missing_offset_is_not_found_naming_the_offset() {
        let shard = TestShard::new();
        let error = Requeue::load(&shard.state.store, 123_456).expect_err("nothing there");
        assert_eq!(error, RequeueError::NotFound { offset: 123_456 });
        assert!(error.to_string().contains("123456"));
        assert_eq!(error.response_code(), ResponseCode::SystemError);
    }

    #[test]
    fn an_append_is_counted_and_extends_the_destination_queue() {
        let mut shard = TestShard::new();
        shard.call(send_request("T", 0, b"x", &[]));
        let before = shard.state.stats.put_messages;
        let stored = read_one(&shard, "T", 0, 0);
        let message = Requeue::from_stored(&stored).expect("decode");
        append(&mut shard.state, &message, shard.now_ms).expect("append");
        assert_eq!(shard.state.stats.put_messages, before + 1);
        assert_eq!(shard.state.store.max_offset("T", 0), 2);
    }
}
