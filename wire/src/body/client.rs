//! Bodies of the broker → client requests that a broker relays for an administrator:
//! [`ConsumerRunningInfo`] (the client's answer to `GET_CONSUMER_RUNNING_INFO` 307) and
//! [`ResetOffsetBody`] (the body of `RESET_CONSUMER_CLIENT_OFFSET` 220, and of the answer to
//! `INVOKE_BROKER_TO_RESET_OFFSET` 222).
//!
//! Both hold Java `Map<MessageQueue, …>`s, which fastjson writes with the queue *object* as
//! the key (not JSON; see [`crate::body::stats`]). Java admin tools read them with fastjson,
//! so `encode` writes exactly that form, and `decode` accepts it as well as quoted keys:
//!
//! ```text
//! ResetOffsetBody     {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:42}}
//! ConsumerRunningInfo {"jstack":"…","mqPopTable":{},"mqTable":{{…queue…}:{"cachedMsgCount":3,…}},
//!                      "properties":{"PROP_CONSUME_TYPE":"CONSUME_PASSIVELY",…},
//!                      "statusTable":{"T":{"consumeFailedMsgs":0,…}},
//!                      "subscriptionSet":[{…SubscriptionData…}],"userConsumerInfo":{}}
//! ```
//!
//! Field declaration order is fastjson's (alphabetical), so our JSON reads like Java's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::body::consumer::MessageQueue;
use crate::body::heartbeat::{SubscriptionData, null_as_empty};
use crate::body::stats::{parse_queue_keyed, queue_map, write_queue_map};
use crate::error::WireError;
use crate::json::lenient;

/// `ConsumerRunningInfo.PROP_NAMESERVER_ADDR`: the client's NameServer list.
pub const PROP_NAMESERVER_ADDR: &str = "PROP_NAMESERVER_ADDR";
/// `PROP_THREADPOOL_CORE_SIZE`: consume threads.
pub const PROP_THREADPOOL_CORE_SIZE: &str = "PROP_THREADPOOL_CORE_SIZE";
/// `PROP_CONSUMEORDERLY`: `true` for an orderly listener. (Java's constant is
/// `PROP_CONSUME_ORDERLY`; its value has no underscore.)
pub const PROP_CONSUME_ORDERLY: &str = "PROP_CONSUMEORDERLY";
/// `PROP_CONSUME_TYPE`: `CONSUME_PASSIVELY` (push) or `CONSUME_ACTIVELY` (pull).
pub const PROP_CONSUME_TYPE: &str = "PROP_CONSUME_TYPE";
/// `PROP_CLIENT_VERSION`: the client's version description (e.g. `V5_3_1`).
pub const PROP_CLIENT_VERSION: &str = "PROP_CLIENT_VERSION";
/// `PROP_CONSUMER_START_TIMESTAMP`: when the consumer started, ms since the epoch. Java's
/// `analyzeSubscription` parses it as a `long`.
pub const PROP_CONSUMER_START_TIMESTAMP: &str = "PROP_CONSUMER_START_TIMESTAMP";

/// The state of one queue a consumer processes (`ProcessQueueInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessQueueInfo {
    /// `cachedMsgCount`: messages pulled and not yet consumed.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub cached_msg_count: i32,
    /// `cachedMsgMaxOffset`: highest queue offset cached (0 when empty).
    #[serde(default, deserialize_with = "lenient::i64")]
    pub cached_msg_max_offset: i64,
    /// `cachedMsgMinOffset`: lowest queue offset cached (0 when empty).
    #[serde(default, deserialize_with = "lenient::i64")]
    pub cached_msg_min_offset: i64,
    /// `cachedMsgSizeInMiB`: body bytes cached, in MiB.
    #[serde(
        rename = "cachedMsgSizeInMiB",
        default,
        deserialize_with = "lenient::i32"
    )]
    pub cached_msg_size_in_mib: i32,
    /// `commitOffset`: the offset the consumer will commit (its consume progress).
    #[serde(default, deserialize_with = "lenient::i64")]
    pub commit_offset: i64,
    /// `dropped`: the queue was taken away (rebalance, reset) and is being discarded.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub dropped: bool,
    /// `lastConsumeTimestamp`, ms since the epoch.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_consume_timestamp: i64,
    /// `lastLockTimestamp` (orderly consumption), ms since the epoch.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_lock_timestamp: i64,
    /// `lastPullTimestamp`, ms since the epoch.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub last_pull_timestamp: i64,
    /// `locked`: the broker lock of orderly consumption is held.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub locked: bool,
    /// `transactionMsgCount` (orderly consumption: messages taken, not yet committed).
    #[serde(default, deserialize_with = "lenient::i32")]
    pub transaction_msg_count: i32,
    /// `transactionMsgMaxOffset`.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub transaction_msg_max_offset: i64,
    /// `transactionMsgMinOffset`.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub transaction_msg_min_offset: i64,
    /// `tryUnlockTimes`.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub try_unlock_times: i64,
}

/// Consumption rates of one topic (`ConsumeStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ConsumeStatus {
    /// `consumeFailedMsgs`: messages that failed in the last hour.
    #[serde(
        rename = "consumeFailedMsgs",
        default,
        deserialize_with = "lenient::i64"
    )]
    pub consume_failed_msgs: i64,
    /// `consumeFailedTPS`.
    #[serde(rename = "consumeFailedTPS", default)]
    pub consume_failed_tps: f64,
    /// `consumeOKTPS`.
    #[serde(rename = "consumeOKTPS", default)]
    pub consume_ok_tps: f64,
    /// `consumeRT`: mean consume time, ms.
    #[serde(rename = "consumeRT", default)]
    pub consume_rt: f64,
    /// `pullRT`: mean pull time, ms.
    #[serde(rename = "pullRT", default)]
    pub pull_rt: f64,
    /// `pullTPS`.
    #[serde(rename = "pullTPS", default)]
    pub pull_tps: f64,
}

/// A consumer's answer to `GET_CONSUMER_RUNNING_INFO` (307): `ConsumerRunningInfo`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRunningInfo {
    /// `jstack`: a thread dump, when asked for (`jstackEnable`); ringmq clients send none.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub jstack: Option<String>,
    /// `mqTable`: every queue the consumer holds → its process-queue state.
    #[serde(default, deserialize_with = "queue_map")]
    pub mq_table: BTreeMap<MessageQueue, ProcessQueueInfo>,
    /// `properties`: the consumer's settings and the `PROP_*` entries (text values).
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub properties: BTreeMap<String, String>,
    /// `statusTable`: topic → consumption rates.
    #[serde(default, deserialize_with = "crate::body::consumer::null_as_empty_map")]
    pub status_table: BTreeMap<String, ConsumeStatus>,
    /// `subscriptionSet`: the consumer's subscriptions (retry topic included).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subscription_set: Vec<SubscriptionData>,
    /// `userConsumerInfo`: free-form entries.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub user_consumer_info: BTreeMap<String, String>,
}

impl ConsumerRunningInfo {
    /// Decodes the body as fastjson writes it (queue objects as keys) or with string keys.
    /// `mqPopTable` (pop consumers) is read past and dropped.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        parse_queue_keyed("consumer running info body", body)
    }

    /// Encodes the body as a Java client writes it (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256 + self.mq_table.len() * 400);
        out.push('{');
        if let Some(jstack) = &self.jstack {
            out.push_str("\"jstack\":");
            crate::command::write_json_str(&mut out, jstack);
            out.push(',');
        }
        out.push_str("\"mqPopTable\":{},");
        write_queue_map(&mut out, "mqTable", &self.mq_table);
        out.push_str(",\"properties\":");
        push_json(&mut out, &self.properties);
        out.push_str(",\"statusTable\":");
        push_json(&mut out, &self.status_table);
        out.push_str(",\"subscriptionSet\":");
        push_json(&mut out, &self.subscription_set);
        out.push_str(",\"userConsumerInfo\":");
        push_json(&mut out, &self.user_consumer_info);
        out.push('}');
        out.into_bytes()
    }

    /// A property's value.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }
}

/// `RESET_CONSUMER_CLIENT_OFFSET` (220) body and `INVOKE_BROKER_TO_RESET_OFFSET` (222)
/// response body (`ResetOffsetBody`): queue → the offset to consume from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetOffsetBody {
    /// `offsetTable`.
    #[serde(default, deserialize_with = "queue_map")]
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

impl ResetOffsetBody {
    /// Decodes the body as fastjson writes it (queue objects as keys) or with string keys.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        parse_queue_keyed("reset offset body", body)
    }

    /// Encodes the body as a Java broker writes it (queue objects as keys).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(32 + self.offset_table.len() * 80);
        out.push('{');
        write_queue_map(&mut out, "offsetTable", &self.offset_table);
        out.push('}');
        out.into_bytes()
    }
}

/// Appends the JSON of plain data (maps with string keys, lists, numbers).
fn push_json<T: Serialize>(out: &mut String, value: &T) {
    out.push_str(&String::from_utf8_lossy(&crate::json::to_vec(value)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a Java 5.x push consumer answers (fastjson, queue objects as keys; trimmed).
    const JAVA_RUNNING_INFO: &[u8] = br#"{"jstack":"\"main\" RUNNABLE","mqPopTable":{},"mqTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"cachedMsgCount":2,"cachedMsgMaxOffset":11,"cachedMsgMinOffset":10,"cachedMsgSizeInMiB":0,"commitOffset":10,"dropped":false,"lastConsumeTimestamp":1700000000100,"lastLockTimestamp":1700000000000,"lastPullTimestamp":1700000000200,"locked":false,"transactionMsgCount":0,"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0},{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}:{"cachedMsgCount":0,"cachedMsgMaxOffset":0,"cachedMsgMinOffset":0,"cachedMsgSizeInMiB":0,"commitOffset":7,"dropped":false,"lastConsumeTimestamp":1700000000100,"lastLockTimestamp":1700000000000,"lastPullTimestamp":1700000000200,"locked":true,"transactionMsgCount":0,"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0}},"properties":{"PROP_CONSUMEORDERLY":"false","PROP_CONSUME_TYPE":"CONSUME_PASSIVELY","PROP_CLIENT_VERSION":"V5_3_1","PROP_CONSUMER_START_TIMESTAMP":"1700000000000","consumeThreadMin":"20","PROP_NAMESERVER_ADDR":"127.0.0.1:9876"},"statusTable":{"TopicTest":{"consumeFailedMsgs":0,"consumeFailedTPS":0.0,"consumeOKTPS":1.5,"consumeRT":0.2,"pullRT":1.0,"pullTPS":3.0}},"subscriptionSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000000,"tagsSet":[],"topic":"TopicTest"}],"userConsumerInfo":{}}"#;

    #[test]
    fn running_info_as_java_writes_it() {
        let info = ConsumerRunningInfo::decode(JAVA_RUNNING_INFO).unwrap();
        assert_eq!(info.jstack.as_deref(), Some("\"main\" RUNNABLE"));
        let q0 = MessageQueue::new("TopicTest", "broker-a", 0);
        let q1 = MessageQueue::new("TopicTest", "broker-a", 1);
        assert_eq!(info.mq_table[&q0].cached_msg_count, 2);
        assert_eq!(info.mq_table[&q0].cached_msg_min_offset, 10);
        assert_eq!(info.mq_table[&q1].commit_offset, 7);
        assert!(info.mq_table[&q1].locked);
        assert_eq!(info.property(PROP_CONSUME_TYPE), Some("CONSUME_PASSIVELY"));
        assert_eq!(
            info.property(PROP_CONSUMER_START_TIMESTAMP),
            Some("1700000000000")
        );
        assert_eq!(info.status_table["TopicTest"].consume_ok_tps, 1.5);
        assert_eq!(info.subscription_set[0].topic, "TopicTest");

        // Our encoding is fastjson's: queue objects as keys, fields in alphabetical order.
        let encoded = String::from_utf8(info.encode()).unwrap();
        assert!(
            encoded.starts_with(r#"{"jstack":"\"main\" RUNNABLE","mqPopTable":{},"mqTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"cachedMsgCount":2,"cachedMsgMaxOffset":11,"cachedMsgMinOffset":10,"cachedMsgSizeInMiB":0,"commitOffset":10,"dropped":false,"#),
            "{encoded}"
        );
        assert_eq!(
            ConsumerRunningInfo::decode(encoded.as_bytes()).unwrap(),
            info
        );
    }

    #[test]
    fn running_info_defaults_and_null_fields() {
        let info = ConsumerRunningInfo::decode(
            br#"{"mqTable":null,"properties":{"n":5},"statusTable":null,"subscriptionSet":null}"#,
        )
        .unwrap();
        assert!(info.mq_table.is_empty() && info.subscription_set.is_empty());
        assert_eq!(info.property("n"), Some("5"));
        let empty = ConsumerRunningInfo::default();
        assert_eq!(
            String::from_utf8(empty.encode()).unwrap(),
            r#"{"mqPopTable":{},"mqTable":{},"properties":{},"statusTable":{},"subscriptionSet":[],"userConsumerInfo":{}}"#
        );
        assert!(ConsumerRunningInfo::decode(br#"{"mqTable":{"x":{}}}"#).is_err());
    }

    #[test]
    fn reset_offset_body_as_java_writes_it() {
        let java = br#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:42,{"brokerName":"broker-a","queueId":1,"topic":"T"}:0}}"#;
        let body = ResetOffsetBody::decode(java).unwrap();
        assert_eq!(
            body.offset_table[&MessageQueue::new("T", "broker-a", 0)],
            42
        );
        assert_eq!(body.offset_table.len(), 2);
        assert_eq!(body.encode(), java.to_vec());
        // Quoted keys (standard JSON) and Java's toString keys are accepted too.
        let quoted = br#"{"offsetTable":{"MessageQueue [topic=T, brokerName=broker-a, queueId=0]":42,"{\"brokerName\":\"broker-a\",\"queueId\":1,\"topic\":\"T\"}":0}}"#;
        assert_eq!(ResetOffsetBody::decode(quoted).unwrap(), body);
        assert_eq!(
            ResetOffsetBody::decode(b"{}").unwrap(),
            ResetOffsetBody::default()
        );
    }
}
