//! Consumer-side JSON bodies: [`MessageQueue`], the queue locks of orderly consumption
//! (`LOCK_BATCH_MQ` 41 / `UNLOCK_BATCH_MQ` 42), the group member list
//! (`GET_CONSUMER_LIST_BY_GROUP` 38), a group's connections (`GET_CONSUMER_CONNECTION_LIST`
//! 203), a producer group's connections (`GET_PRODUCER_CONNECTION_LIST` 204) and the broker's
//! stored consumer offsets (`GET_ALL_CONSUMER_OFFSET` 43,
//! `config/consumerOffset.json`).
//!
//! ```text
//! LockBatchRequestBody  {"clientId":"c@1","consumerGroup":"CG",
//!                        "mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}],"onlyThisBroker":false}
//! LockBatchResponseBody {"lockOKMQSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}
//! ConsumerOffsetSerializeWrapper {"offsetTable":{"T@CG":{0:12,1:40}}}   (fastjson: bare keys)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::body::heartbeat::{
    ConsumeFromWhere, ConsumeType, MessageModel, SubscriptionData, json_body, null_as_empty,
};
use crate::body::register::DataVersion;
use crate::code::LanguageCode;
use crate::json::lenient;

/// A map that may arrive as null (read as empty).
pub(crate) fn null_as_empty_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    Ok(Option::<BTreeMap<K, V>>::deserialize(d)?.unwrap_or_default())
}

/// One queue of a topic on one broker (`MessageQueue`). Ordered as RocketMQ sorts queues for
/// rebalancing: by topic, then broker name, then queue id. Fields are declared in fastjson's
/// (alphabetical) order so that our JSON is Java's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    /// `brokerName`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// `queueId`.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub queue_id: i32,
    /// `topic`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub topic: String,
}

impl Ord for MessageQueue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.topic, &self.broker_name, self.queue_id).cmp(&(
            &other.topic,
            &other.broker_name,
            other.queue_id,
        ))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl MessageQueue {
    /// A queue.
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue {
            topic: topic.into(),
            broker_name: broker_name.into(),
            queue_id,
        }
    }

    /// The queue as fastjson writes it, fields in alphabetical order:
    /// `{"brokerName":"b","queueId":0,"topic":"T"}`.
    pub fn to_fastjson(&self) -> String {
        let mut out = String::with_capacity(48 + self.topic.len() + self.broker_name.len());
        out.push_str("{\"brokerName\":");
        crate::command::write_json_str(&mut out, &self.broker_name);
        out.push_str(",\"queueId\":");
        out.push_str(&self.queue_id.to_string());
        out.push_str(",\"topic\":");
        crate::command::write_json_str(&mut out, &self.topic);
        out.push('}');
        out
    }
}

impl std::fmt::Display for MessageQueue {
    /// Java's `MessageQueue.toString`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MessageQueue [topic={}, brokerName={}, queueId={}]",
            self.topic, self.broker_name, self.queue_id
        )
    }
}

/// `LOCK_BATCH_MQ` (41) request body (`LockBatchRequestBody`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    /// `clientId` asking for the locks.
    #[serde(default, deserialize_with = "lenient::string")]
    pub client_id: String,
    /// `consumerGroup`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub consumer_group: String,
    /// `mqSet`: the queues to lock.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub mq_set: Vec<MessageQueue>,
    /// `onlyThisBroker` (5.x): do not forward to the other brokers of the set.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub only_this_broker: bool,
}

/// `UNLOCK_BATCH_MQ` (42) request body (`UnlockBatchRequestBody`): same shape as the lock.
pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// `LOCK_BATCH_MQ` response body (`LockBatchResponseBody`): the queues now locked by the
/// requesting client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LockBatchResponseBody {
    /// `lockOKMQSet`.
    #[serde(rename = "lockOKMQSet", default, deserialize_with = "null_as_empty")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

/// `GET_CONSUMER_LIST_BY_GROUP` (38) response body (`GetConsumerListByGroupResponseBody`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConsumerListByGroupResponseBody {
    /// `consumerIdList`: client ids of the group's live members.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub consumer_id_list: Vec<String>,
}

fn serialize_language<S: Serializer>(language: &LanguageCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(language.name())
}

fn deserialize_language<'de, D: Deserializer<'de>>(d: D) -> Result<LanguageCode, D::Error> {
    Ok(lenient::language(d)?.unwrap_or(LanguageCode::Other))
}

fn default_language() -> LanguageCode {
    LanguageCode::Other
}

/// One client connection of a group (`Connection`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `clientAddr`: the peer's `ip:port`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub client_addr: String,
    /// `clientId`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub client_id: String,
    /// `language`, by name.
    #[serde(
        default = "default_language",
        serialize_with = "serialize_language",
        deserialize_with = "deserialize_language"
    )]
    pub language: LanguageCode,
    /// `version`: the client's version ordinal.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub version: i32,
}

/// `GET_CONSUMER_CONNECTION_LIST` (203) response body (`ConsumerConnection`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    /// `connectionSet`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub connection_set: Vec<Connection>,
    /// `consumeFromWhere`.
    #[serde(default)]
    pub consume_from_where: ConsumeFromWhere,
    /// `consumeType`.
    #[serde(default)]
    pub consume_type: ConsumeType,
    /// `messageModel`.
    #[serde(default)]
    pub message_model: MessageModel,
    /// `subscriptionTable`: topic → subscription.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub subscription_table: BTreeMap<String, SubscriptionData>,
}

/// `GET_PRODUCER_CONNECTION_LIST` (204) response body (`ProducerConnection`): the live
/// connections of a producer group's clients.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerConnection {
    /// `connectionSet`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub connection_set: Vec<Connection>,
}

/// The broker's consumer offsets (`ConsumerOffsetSerializeWrapper`): `topic@group` →
/// queue id → offset. fastjson writes the queue ids as bare numbers; we read those and
/// write quoted ones, which fastjson reads back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerOffsetSerializeWrapper {
    /// `dataVersion` (5.x): `{"counter":…,"stateVersion":…,"timestamp":…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_version: Option<DataVersion>,
    /// `offsetTable`: `topic@group` → queue id → offset.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// The `topic@group` key of [`ConsumerOffsetSerializeWrapper::offset_table`].
pub fn offset_table_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

json_body!(LockBatchRequestBody, "lock batch body");
json_body!(LockBatchResponseBody, "lock batch response body");
json_body!(GetConsumerListByGroupResponseBody, "consumer list body");
json_body!(ConsumerConnection, "consumer connection body");
json_body!(ProducerConnection, "producer connection body");
json_body!(ConsumerOffsetSerializeWrapper, "consumer offset body");
json_body!(MessageQueue, "message queue");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_bodies_as_java_writes_them() {
        let java = br#"{"clientId":"c@1","consumerGroup":"CG","mqSet":[{"brokerName":"b","queueId":0,"topic":"T"},{"brokerName":"b","queueId":1,"topic":"T"}],"onlyThisBroker":false}"#;
        let body = LockBatchRequestBody::decode(java).unwrap();
        assert_eq!(body.mq_set[1], MessageQueue::new("T", "b", 1));
        assert_eq!(body.encode(), java.to_vec());
        let response = LockBatchResponseBody {
            lock_ok_mq_set: body.mq_set.clone(),
        };
        let text = String::from_utf8(response.encode()).unwrap();
        assert!(
            text.starts_with(r#"{"lockOKMQSet":[{"brokerName":"b","queueId":0,"topic":"T"}"#),
            "{text}"
        );
        assert_eq!(
            LockBatchResponseBody::decode(text.as_bytes()).unwrap(),
            response
        );
        assert_eq!(
            MessageQueue::new("T\"", "b", 3).to_fastjson(),
            r#"{"brokerName":"b","queueId":3,"topic":"T\""}"#
        );
        assert_eq!(
            MessageQueue::new("T", "b", 3).to_string(),
            "MessageQueue [topic=T, brokerName=b, queueId=3]"
        );
    }

    #[test]
    fn consumer_list_and_connections() {
        let list =
            GetConsumerListByGroupResponseBody::decode(br#"{"consumerIdList":["a@1","b@2"]}"#)
                .unwrap();
        assert_eq!(list.consumer_id_list, ["a@1", "b@2"]);
        assert_eq!(list.encode(), br#"{"consumerIdList":["a@1","b@2"]}"#);

        let java = br#"{"connectionSet":[{"clientAddr":"10.0.0.5:5123","clientId":"c@1","language":"JAVA","version":474}],"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}}}"#;
        let connection = ConsumerConnection::decode(java).unwrap();
        assert_eq!(connection.connection_set[0].language, LanguageCode::Java);
        assert_eq!(connection.subscription_table["T"].sub_string, "*");
        assert_eq!(connection.encode(), java.to_vec());

        let java = br#"{"connectionSet":[{"clientAddr":"10.0.0.6:6001","clientId":"p@2","language":"GO","version":"474"},{"clientAddr":"10.0.0.7:6002","clientId":"p@3","language":0,"version":401}]}"#;
        let producers = ProducerConnection::decode(java).unwrap();
        assert_eq!(producers.connection_set.len(), 2);
        assert_eq!(producers.connection_set[0].language, LanguageCode::Go);
        assert_eq!(producers.connection_set[0].version, 474);
        assert_eq!(producers.connection_set[1].language, LanguageCode::Java);
        assert_eq!(
            String::from_utf8(producers.encode()).unwrap(),
            r#"{"connectionSet":[{"clientAddr":"10.0.0.6:6001","clientId":"p@2","language":"GO","version":474},{"clientAddr":"10.0.0.7:6002","clientId":"p@3","language":"JAVA","version":401}]}"#
        );
        assert_eq!(
            ProducerConnection::decode(br#"{"connectionSet":null}"#).unwrap(),
            ProducerConnection::default()
        );
    }

    #[test]
    fn consumer_offsets_with_bare_keys() {
        let fastjson = br#"{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1},"offsetTable":{"T@CG":{0:12,1:40},"%RETRY%CG@CG":{0:0}}}"#;
        let wrapper = ConsumerOffsetSerializeWrapper::decode(fastjson).unwrap();
        assert_eq!(wrapper.offset_table[&offset_table_key("T", "CG")][&1], 40);
        assert_eq!(
            wrapper.data_version,
            Some(DataVersion {
                counter: 3,
                state_version: 0,
                timestamp: 1
            })
        );
        let encoded = wrapper.encode();
        assert!(String::from_utf8_lossy(&encoded).contains(r#""T@CG":{"0":12,"1":40}"#));
        assert_eq!(
            ConsumerOffsetSerializeWrapper::decode(&encoded).unwrap(),
            wrapper
        );
        assert!(
            ConsumerOffsetSerializeWrapper::decode(br#"{"offsetTable":{"T@CG":{"x":1}}}"#).is_err()
        );
    }
}
