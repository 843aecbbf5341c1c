//! Statistics bodies keyed by queue: [`TopicStatsTable`] (`GET_TOPIC_STATS_INFO` 202),
//! [`ConsumeStats`] (`GET_CONSUME_STATS` 208) and [`QueryConsumeTimeSpanBody`]
//! (`QUERY_CONSUME_TIME_SPAN` 303).
//!
//! Java keeps the first two as `Map<MessageQueue, …>`, and fastjson writes a map key that is
//! an object *as the object itself*, which is not JSON:
//!
//! ```text
//! {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":0,
//!   "maxOffset":10,"minOffset":0}},"topicPutTps":0.0}
//! ```
//!
//! Every RocketMQ client that reads these bodies (Java's fastjson, the Go and C++ admin code)
//! expects exactly that, so [`TopicStatsTable::encode`] and [`ConsumeStats::encode`] write
//! it, and decoding accepts it ([`crate::json::parse`] turns object keys into string keys
//! first), as well as keys written as quoted JSON or as Java's `MessageQueue.toString()`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::body::consumer::MessageQueue;
use crate::body::heartbeat::{json_body, null_as_empty};
use crate::error::WireError;
use crate::json::lenient;

/// Parses a queue map key: JSON (`{"brokerName":"b","queueId":0,"topic":"T"}`) or Java's
/// `MessageQueue [topic=T, brokerName=b, queueId=0]`.
pub fn parse_message_queue_key(key: &str) -> Result<MessageQueue, String> {
    let key = key.trim();
    if key.starts_with('{') {
        return crate::json::parse("message queue key", key.as_bytes()).map_err(|e| e.to_string());
    }
    let inner = key
        .strip_prefix("MessageQueue [")
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| format!("not a message queue: {key:?}"))?;
    let mut queue = MessageQueue::default();
    let mut seen = 0;
    for part in inner.split(", ") {
        match part.split_once('=') {
            Some(("topic", value)) => queue.topic = value.to_owned(),
            Some(("brokerName", value)) => queue.broker_name = value.to_owned(),
            Some(("queueId", value)) => {
                queue.queue_id = value
                    .parse()
                    .map_err(|_| format!("bad queueId in {key:?}"))?;
            }
            _ => return Err(format!("not a message queue: {key:?}")),
        }
        seen += 1;
    }
    if seen != 3 {
        return Err(format!("not a message queue: {key:?}"));
    }
    Ok(queue)
}

/// Deserializes a `Map<MessageQueue, V>` whose keys arrive as strings (object keys are
/// turned into strings by [`crate::json::parse`]); null reads as empty.
pub(crate) fn queue_map<'de, D, V>(d: D) -> Result<BTreeMap<MessageQueue, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    let raw = Option::<BTreeMap<String, V>>::deserialize(d)?.unwrap_or_default();
    raw.into_iter()
        .map(|(key, value)| {
            parse_message_queue_key(&key)
                .map(|queue| (queue, value))
                .map_err(de::Error::custom)
        })
        .collect()
}

/// Parses a body whose maps may have object keys.
pub(crate) fn parse_queue_keyed<T: serde::de::DeserializeOwned>(
    what: &'static str,
    body: &[u8],
) -> Result<T, WireError> {
    crate::json::parse(what, body)
}

/// Writes `{"offsetTable":{<queue>:<value>,…}` the way fastjson does (queue objects as keys).
pub(crate) fn write_queue_map<V: Serialize>(
    out: &mut String,
    name: &str,
    map: &BTreeMap<MessageQueue, V>,
) {
    let _ = write!(out, "\"{name}\":{{");
    for (i, (queue, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&queue.to_fastjson());
        out.push(':');
        // Plain structs of numbers: serializing cannot fail.
        out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()));
    }
    out.push('}');
}

fn write_f64(out: &mut String, value: f64) {
    // fastjson writes doubles like Java's Double.toString for ordinary values ("0.0", "1.5");
    // serde_json does the same for finite values; non-finite ones are written as 0.0.
    let value = if value.is_finite() { value } else { 0.0 };
    out.push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "0.0".to_owned()));
}

/// Offsets of one queue of a topic (`TopicOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicOffset {
    /// `lastUpdateTimestamp`: store time of the newest message, ms since the epoch.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_update_timestamp: i64,
    /// `maxOffset`: the next offset to be written.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub max_offset: i64,
    /// `minOffset`: the oldest offset still stored.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub min_offset: i64,
}

/// `GET_TOPIC_STATS_INFO` (202) response body (`TopicStatsTable`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatsTable {
    /// `offsetTable`: queue → offsets.
    #[serde(default, deserialize_with = "queue_map")]
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
    /// `topicPutTps` (5.x): messages per second put into the topic.
    #[serde(default)]
    pub topic_put_tps: f64,
}

impl TopicStatsTable {
    /// Decodes the body as fastjson writes it (object keys) or with string keys.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        parse_queue_keyed("topic stats body", body)
    }

    /// Encodes the body as fastjson writes it (queue objects as keys; see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(32 + self.offset_table.len() * 128);
        out.push('{');
        write_queue_map(&mut out, "offsetTable", &self.offset_table);
        out.push_str(",\"topicPutTps\":");
        write_f64(&mut out, self.topic_put_tps);
        out.push('}');
        out.into_bytes()
    }
}

/// Progress of a group on one queue (`OffsetWrapper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffsetWrapper {
    /// `brokerOffset`: the queue's max offset.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub broker_offset: i64,
    /// `consumerOffset`: the group's committed offset.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub consumer_offset: i64,
    /// `lastTimestamp`: store time of the last consumed message, ms since the epoch.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_timestamp: i64,
    /// `pullOffset` (5.x): the group's next pull offset.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub pull_offset: i64,
}

/// `GET_CONSUME_STATS` (208) response body (`ConsumeStats`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeStats {
    /// `consumeTps`: messages per second the group consumes.
    #[serde(default)]
    pub consume_tps: f64,
    /// `offsetTable`: queue → progress.
    #[serde(default, deserialize_with = "queue_map")]
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
}

impl ConsumeStats {
    /// Decodes the body as fastjson writes it (object keys) or with string keys.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        parse_queue_keyed("consume stats body", body)
    }

    /// Encodes the body as fastjson writes it (queue objects as keys; see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(32 + self.offset_table.len() * 160);
        out.push_str("{\"consumeTps\":");
        write_f64(&mut out, self.consume_tps);
        out.push(',');
        write_queue_map(&mut out, "offsetTable", &self.offset_table);
        out.push('}');
        out.into_bytes()
    }

    /// Messages not yet consumed: the sum over queues of broker offset − consumer offset.
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|o| o.broker_offset.saturating_sub(o.consumer_offset).max(0))
            .sum()
    }
}

/// The consumption time span of one queue (`QueueTimeSpan`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueTimeSpan {
    /// `consumeTimeStamp`: store time of the message at the group's offset.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub consume_time_stamp: i64,
    /// `consumeTimeStampStr`: the same, formatted (Java writes it; optional here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consume_time_stamp_str: Option<String>,
    /// `delayTime`: how far the group is behind, ms.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub delay_time: i64,
    /// `maxTimeStamp`: store time of the newest message.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub max_time_stamp: i64,
    /// `maxTimeStampStr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_stamp_str: Option<String>,
    /// `messageQueue`.
    #[serde(default)]
    pub message_queue: MessageQueue,
    /// `minTimeStamp`: store time of the oldest message.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub min_time_stamp: i64,
    /// `minTimeStampStr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_time_stamp_str: Option<String>,
}

/// `QUERY_CONSUME_TIME_SPAN` (303) response body (`QueryConsumeTimeSpanBody`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryConsumeTimeSpanBody {
    /// `consumeTimeSpanSet`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub consume_time_span_set: Vec<QueueTimeSpan>,
}

json_body!(QueryConsumeTimeSpanBody, "consume time span body");

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA_TOPIC_STATS: &[u8] = br#"{"offsetTable":{{"brokerName":"rocketmq-broker-a","queueId":2,"topic":"test"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0},{"brokerName":"rocketmq-broker-a","queueId":3,"topic":"test"}:{"lastUpdateTimestamp":1700000000000,"maxOffset":12,"minOffset":3}},"topicPutTps":0.0}"#;

    #[test]
    fn topic_stats_as_fastjson_writes_them() {
        let stats = TopicStatsTable::decode(JAVA_TOPIC_STATS).unwrap();
        assert_eq!(stats.offset_table.len(), 2);
        let queue = MessageQueue::new("test", "rocketmq-broker-a", 3);
        assert_eq!(stats.offset_table[&queue].max_offset, 12);
        assert_eq!(stats.encode(), JAVA_TOPIC_STATS.to_vec());
        // 4.x brokers have no topicPutTps.
        let old = br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"lastUpdateTimestamp":0,"maxOffset":1,"minOffset":0}}}"#;
        assert_eq!(TopicStatsTable::decode(old).unwrap().topic_put_tps, 0.0);
    }

    #[test]
    fn consume_stats_round_trip_and_other_key_forms() {
        let mut stats = ConsumeStats {
            consume_tps: 1.5,
            ..ConsumeStats::default()
        };
        for queue_id in 0..3 {
            stats.offset_table.insert(
                MessageQueue::new("T", "b\"x", queue_id),
                OffsetWrapper {
                    broker_offset: 100,
                    consumer_offset: 90 + i64::from(queue_id),
                    last_timestamp: 7,
                    pull_offset: 95,
                },
            );
        }
        let encoded = stats.encode();
        let text = String::from_utf8(encoded.clone()).unwrap();
        assert!(text.starts_with(r#"{"consumeTps":1.5,"offsetTable":{{"brokerName":"b\"x","queueId":0,"topic":"T"}:{"brokerOffset":100,"#), "{text}");
        assert_eq!(ConsumeStats::decode(&encoded).unwrap(), stats);
        assert_eq!(stats.total_diff(), 10 + 9 + 8);

        let quoted = br#"{"offsetTable":{"{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"T\"}":{"brokerOffset":5},"MessageQueue [topic=T, brokerName=b, queueId=2]":{"brokerOffset":6}}}"#;
        let stats = ConsumeStats::decode(quoted).unwrap();
        assert_eq!(
            stats.offset_table[&MessageQueue::new("T", "b", 2)].broker_offset,
            6
        );
        assert_eq!(
            stats.offset_table[&MessageQueue::new("T", "b", 1)].broker_offset,
            5
        );
    }

    #[test]
    fn malformed_queue_keys_are_errors() {
        for body in [
            &br#"{"offsetTable":{"q1":{}}}"#[..],
            br#"{"offsetTable":{{"brokerName":"b":{}}}"#,
            br#"{"offsetTable":{{"brokerName":"b""#,
            br#"{"offsetTable":{"MessageQueue [topic=T, queueId=x]":{}}}"#,
        ] {
            assert!(
                ConsumeStats::decode(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn time_span_body() {
        let body = QueryConsumeTimeSpanBody {
            consume_time_span_set: vec![QueueTimeSpan {
                consume_time_stamp: 5,
                delay_time: 10,
                max_time_stamp: 15,
                message_queue: MessageQueue::new("T", "b", 0),
                min_time_stamp: 1,
                ..QueueTimeSpan::default()
            }],
        };
        let encoded = body.encode();
        assert_eq!(
            String::from_utf8(encoded.clone()).unwrap(),
            r#"{"consumeTimeSpanSet":[{"consumeTimeStamp":5,"delayTime":10,"maxTimeStamp":15,"messageQueue":{"brokerName":"b","queueId":0,"topic":"T"},"minTimeStamp":1}]}"#
        );
        assert_eq!(QueryConsumeTimeSpanBody::decode(&encoded).unwrap(), body);
    }
}
