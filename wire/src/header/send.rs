//! Headers of the `send` command family: `SEND_MESSAGE` (10), `SEND_BATCH_MESSAGE` (320),
//! `SEND_MESSAGE_V2` (310) and the send response.
//!
//! `SEND_MESSAGE` and `SEND_BATCH_MESSAGE` carry [`SendMessageRequestHeader`] with
//! RocketMQ's camelCase names; `SEND_MESSAGE_V2` carries the same fields under one-letter
//! keys ([`SendMessageRequestHeaderV2`]):
//!
//! ```text
//! a producerGroup   b topic      c defaultTopic   d defaultTopicQueueNums  e queueId
//! f sysFlag         g bornTimestamp  h flag       i properties   j reconsumeTimes
//! k unitMode        l maxReconsumeTimes (consumeRetryTimes)      m batch   n brokerName
//! ```
//!
//! Every topic request may also carry RocketMQ's RPC fields (`ns`, `nsd`, `bname`, `oway`,
//! `lo`), read into [`RpcFields`]; a malformed RPC flag is ignored, as Java ignores it.

use crate::error::WireError;
use crate::header::{CommandHeader, header_struct};
pub use crate::header::{FieldValue, RpcFields};

/// Message `sysFlag` bits (`MessageSysFlag`), shared with the stored record.
pub use crate::record::sys_flag;

header_struct! {
    /// `SEND_MESSAGE` (10) and `SEND_BATCH_MESSAGE` (320) request header
    /// (`SendMessageRequestHeader`). The body is the message body (zlib-compressed when
    /// `sysFlag` bit 0 is set) or, for a batch, the encoded messages.
    pub struct SendMessageRequestHeader {
        /// `producerGroup`.
        req producer_group: String => "producerGroup",
        /// `topic`.
        req topic: String => "topic",
        /// `defaultTopic`: the template topic for auto-creation (`TBW102`).
        req default_topic: String => "defaultTopic",
        /// `defaultTopicQueueNums`: queues of an auto-created topic.
        req default_topic_queue_nums: i32 => "defaultTopicQueueNums",
        /// `queueId`; negative means "broker picks".
        req queue_id: i32 => "queueId",
        /// `sysFlag`, see [`sys_flag`].
        req sys_flag: i32 => "sysFlag",
        /// `bornTimestamp`, ms since the epoch.
        req born_timestamp: i64 => "bornTimestamp",
        /// `flag`: the user flag.
        req flag: i32 => "flag",
        /// `properties`: `name\x01value\x02…`.
        opt properties: String => "properties",
        /// `reconsumeTimes`.
        opt reconsume_times: i32 => "reconsumeTimes",
        /// `unitMode`.
        opt unit_mode: bool => "unitMode",
        /// `batch`: the body holds several encoded messages.
        opt batch: bool => "batch",
        /// `maxReconsumeTimes`.
        opt max_reconsume_times: i32 => "maxReconsumeTimes",
        /// The RPC fields (`bname` is the target broker).
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `SEND_MESSAGE_V2` (310) request header (`SendMessageRequestHeaderV2`): the fields of
    /// [`SendMessageRequestHeader`] under one-letter keys, to keep headers short.
    pub struct SendMessageRequestHeaderV2 {
        /// `a`: producerGroup.
        req a: String => "a",
        /// `b`: topic.
        req b: String => "b",
        /// `c`: defaultTopic.
        req c: String => "c",
        /// `d`: defaultTopicQueueNums.
        req d: i32 => "d",
        /// `e`: queueId.
        req e: i32 => "e",
        /// `f`: sysFlag.
        req f: i32 => "f",
        /// `g`: bornTimestamp.
        req g: i64 => "g",
        /// `h`: flag.
        req h: i32 => "h",
        /// `i`: properties.
        opt i: String => "i",
        /// `j`: reconsumeTimes.
        opt j: i32 => "j",
        /// `k`: unitMode.
        opt k: bool => "k",
        /// `l`: maxReconsumeTimes (Java calls it consumeRetryTimes here).
        opt l: i32 => "l",
        /// `m`: batch.
        opt m: bool => "m",
        /// `n`: brokerName (V1's `bname`).
        opt n: String => "n",
        /// The RPC fields, which V2 requests may carry too.
        flat rpc: RpcFields => "",
    }
}

impl SendMessageRequestHeaderV2 {
    /// The same request as a V1 header (`createSendMessageRequestHeaderV1`): `n` becomes
    /// `bname` unless the request carried a `bname` of its own.
    pub fn into_v1(self) -> SendMessageRequestHeader {
        let mut rpc = self.rpc;
        if self.n.is_some() {
            rpc.broker_name = self.n;
        }
        SendMessageRequestHeader {
            producer_group: self.a,
            topic: self.b,
            default_topic: self.c,
            default_topic_queue_nums: self.d,
            queue_id: self.e,
            sys_flag: self.f,
            born_timestamp: self.g,
            flag: self.h,
            properties: self.i,
            reconsume_times: self.j,
            unit_mode: self.k,
            batch: self.m,
            max_reconsume_times: self.l,
            rpc,
        }
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        v2.into_v1()
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    /// `createSendMessageRequestHeaderV2`: `bname` becomes `n`.
    fn from(v1: SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2 {
            a: v1.producer_group,
            b: v1.topic,
            c: v1.default_topic,
            d: v1.default_topic_queue_nums,
            e: v1.queue_id,
            f: v1.sys_flag,
            g: v1.born_timestamp,
            h: v1.flag,
            i: v1.properties,
            j: v1.reconsume_times,
            k: v1.unit_mode,
            l: v1.max_reconsume_times,
            m: v1.batch,
            n: v1.rpc.broker_name.clone(),
            rpc: RpcFields {
                broker_name: None,
                ..v1.rpc
            },
        }
    }
}

impl SendMessageRequestHeader {
    /// Reads the send header of a `SEND_MESSAGE` (10), `SEND_MESSAGE_V2` (310) or
    /// `SEND_BATCH_MESSAGE` (320) request, converting V2 to V1.
    ///
    /// Like Java's `SendMessageProcessor`, 310 and 320 carry the V2 header (one-letter keys:
    /// Java clients always send batches that way); a 320 with the long names is accepted too.
    pub fn decode_any(command: &crate::command::RemotingCommand) -> Result<Self, WireError> {
        use crate::code::RequestCode;
        let v2 = command.code == RequestCode::SendMessageV2.as_i32()
            || (command.code == RequestCode::SendBatchMessage.as_i32()
                && !command.ext_fields.contains_key("topic"));
        if v2 {
            SendMessageRequestHeaderV2::decode(command).map(SendMessageRequestHeaderV2::into_v1)
        } else {
            SendMessageRequestHeader::decode(command)
        }
    }

    /// Whether `sysFlag` marks the body as compressed.
    pub fn is_compressed(&self) -> bool {
        self.sys_flag & sys_flag::COMPRESSED != 0
    }

    /// The transaction type bits of `sysFlag` (see [`sys_flag`]).
    pub fn transaction_type(&self) -> i32 {
        self.sys_flag & sys_flag::TRANSACTION_MASK
    }
}

header_struct! {
    /// Response header of the send family (`SendMessageResponseHeader`).
    pub struct SendMessageResponseHeader {
        /// `msgId`: the broker's offset message id (store host + commit log offset).
        req msg_id: String => "msgId",
        /// `queueId` the message was stored in.
        req queue_id: i32 => "queueId",
        /// `queueOffset`: its consume queue offset.
        req queue_offset: i64 => "queueOffset",
        /// `transactionId`.
        opt transaction_id: String => "transactionId",
        /// `batchUniqId`: the unique ids of a batch, comma separated.
        opt batch_uniq_id: String => "batchUniqId",
        /// `recallHandle` (5.x delayed-message recall).
        opt recall_handle: String => "recallHandle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::RequestCode;
    use crate::command::{ExtFields, FieldStr, RemotingCommand};
    use crate::header::Fields;

    fn v2() -> SendMessageRequestHeaderV2 {
        SendMessageRequestHeaderV2 {
            a: "PG".into(),
            b: "TopicTest".into(),
            c: "TBW102".into(),
            d: 4,
            e: 3,
            f: 0,
            g: 1_700_000_000_123,
            h: 0,
            i: Some("TAGS\u{1}TagA\u{2}".into()),
            j: Some(0),
            k: Some(false),
            l: None,
            m: Some(false),
            n: Some("broker-a".into()),
            rpc: RpcFields::default(),
        }
    }

    #[test]
    fn v2_round_trip_and_wire_names() {
        let header = v2();
        let mut fields = ExtFields::new();
        header.write_to(&mut fields);
        let keys: Vec<&str> = fields.keys().map(FieldStr::as_str).collect();
        assert_eq!(
            keys,
            [
                "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m", "n"
            ]
        );
        assert_eq!(fields["g"], "1700000000123");
        assert_eq!(fields["k"], "false");
        assert_eq!(
            SendMessageRequestHeaderV2::read_from(&Fields(&fields)),
            Ok(header)
        );
    }

    #[test]
    fn v1_v2_conversion_keeps_every_field() {
        let v1 = v2().into_v1();
        assert_eq!(v1.producer_group, "PG");
        assert_eq!(v1.queue_id, 3);
        assert_eq!(v1.rpc.broker_name.as_deref(), Some("broker-a"));
        let mut fields = ExtFields::new();
        v1.write_to(&mut fields);
        assert_eq!(fields["bname"], "broker-a");
        assert_eq!(fields["producerGroup"], "PG");
        assert_eq!(fields["defaultTopicQueueNums"], "4");
        assert_eq!(
            SendMessageRequestHeader::read_from(&Fields(&fields)),
            Ok(v1.clone())
        );
        assert_eq!(SendMessageRequestHeaderV2::from(v1), v2());
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let mut fields = ExtFields::new();
        v2().write_to(&mut fields);
        for required in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let mut without = fields.clone();
            without.remove(required);
            assert!(matches!(
                SendMessageRequestHeaderV2::read_from(&Fields(&without)),
                Err(WireError::MissingField { field }) if field == required
            ));
        }
        let mut bad = fields.clone();
        bad.insert("g".into(), "yesterday".into());
        assert!(matches!(
            SendMessageRequestHeaderV2::read_from(&Fields(&bad)),
            Err(WireError::InvalidField { field: "g", .. })
        ));
        let mut bad = fields;
        bad.insert("k".into(), "maybe".into());
        assert!(matches!(
            SendMessageRequestHeaderV2::read_from(&Fields(&bad)),
            Err(WireError::InvalidField { field: "k", .. })
        ));
    }

    #[test]
    fn rpc_fields_are_tolerated() {
        let mut command = RemotingCommand::request(RequestCode::SendMessage);
        v2().into_v1().encode_into(&mut command);
        for (key, value) in [
            ("ns", "tenant"),
            ("nsd", "true"),
            ("oway", "x"),
            ("lo", "0"),
        ] {
            command.ext_fields.insert(key.into(), value.into());
        }
        let header = SendMessageRequestHeader::decode_any(&command).unwrap();
        assert_eq!(header.rpc.namespace.as_deref(), Some("tenant"));
        assert_eq!(header.rpc.namespaced, Some(true));
        assert_eq!(header.rpc.oneway, None);
        assert_eq!(header.rpc.logic, Some(false));
        assert!(!header.is_compressed());
    }

    /// Regression: Java clients send `SEND_BATCH_MESSAGE` with the V2 one-letter keys, and
    /// the broker rejected every batch with "missing required field `producerGroup`".
    #[test]
    fn batch_header_is_read_as_v2_or_v1() {
        let mut command = RemotingCommand::request(RequestCode::SendBatchMessage);
        v2().encode_into(&mut command);
        assert_eq!(
            SendMessageRequestHeader::decode_any(&command),
            Ok(v2().into_v1())
        );
        let mut command = RemotingCommand::request(RequestCode::SendBatchMessage);
        v2().into_v1().encode_into(&mut command);
        assert_eq!(
            SendMessageRequestHeader::decode_any(&command),
            Ok(v2().into_v1())
        );
    }

    #[test]
    fn decode_any_converts_v2() {
        let mut command = RemotingCommand::request(RequestCode::SendMessageV2);
        v2().encode_into(&mut command);
        assert_eq!(
            SendMessageRequestHeader::decode_any(&command),
            Ok(v2().into_v1())
        );
    }

    #[test]
    fn response_round_trip() {
        let header = SendMessageResponseHeader {
            msg_id: "7F00000100002A9F0000000000000000".into(),
            queue_id: 1,
            queue_offset: 42,
            transaction_id: None,
            batch_uniq_id: Some("u1,u2".into()),
            recall_handle: None,
        };
        let mut fields = ExtFields::new();
        header.write_to(&mut fields);
        assert_eq!(fields.len(), 4);
        assert_eq!(fields["queueOffset"], "42");
        assert_eq!(
            SendMessageResponseHeader::read_from(&Fields(&fields)),
            Ok(header)
        );
    }
}
