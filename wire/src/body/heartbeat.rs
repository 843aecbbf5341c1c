//! The `HEART_BEAT` (34) body: [`HeartbeatData`], with its producer and consumer data and
//! the consumer's [`SubscriptionData`].
//!
//! ```text
//! {"clientID":"10.0.0.5@4711","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
//!   "consumeType":"CONSUME_PASSIVELY","groupName":"CG","messageModel":"CLUSTERING",
//!   "subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG",
//!   "subString":"TagA","subVersion":1700000000000,"tagsSet":["TagA"],"topic":"T"}],
//!   "unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":"PG"}],
//!   "withoutSub":false}
//! ```
//!
//! Stock clients differ in what they put there (spec §B.2): the enums arrive as names or
//! ordinals, `subVersion` as a number or a string, numbers as strings, and fields may be
//! missing or null. Decoding accepts all of it; encoding writes what Java writes (names,
//! numbers, fields in fastjson's alphabetical order).

use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::json::lenient;

/// Adds `decode` (fastjson-tolerant) and `encode` (standard JSON) to a body type.
macro_rules! json_body {
    ($ty:ty, $what:literal) => {
        impl $ty {
            #[doc = concat!("Decodes a `", stringify!($ty), "` body as fastjson may have written it.")]
            pub fn decode(body: &[u8]) -> Result<Self, $crate::error::WireError> {
                $crate::json::parse($what, body)
            }

            #[doc = concat!("Encodes a `", stringify!($ty), "` body as standard JSON.")]
            pub fn encode(&self) -> Vec<u8> {
                $crate::json::to_vec(self)
            }
        }
    };
}
pub(crate) use json_body;

/// Declares a Java enum that travels as its name and is accepted as name or ordinal.
macro_rules! java_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $ordinal:literal => $wire:literal,)* }
        default $default:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl $name {
            /// Java's constant name.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// Java's ordinal.
            pub const fn ordinal(self) -> u32 {
                match self {
                    $($name::$variant => $ordinal,)*
                }
            }

            /// The value with this name (any case) or ordinal (`"2"`).
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                if let Ok(ordinal) = text.parse::<u32>() {
                    return match ordinal {
                        $($ordinal => Some($name::$variant),)*
                        _ => None,
                    };
                }
                $(if text.eq_ignore_ascii_case($wire) {
                    return Some($name::$variant);
                })*
                None
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = $crate::json::lenient::opt_string(d)?;
                match text {
                    None => Ok($name::default()),
                    Some(text) => $name::parse(&text).ok_or_else(|| {
                        <D::Error as serde::de::Error>::custom(format!(
                            concat!("unknown ", stringify!($name), " {:?}"),
                            text
                        ))
                    }),
                }
            }
        }
    };
}
pub(crate) use java_enum;

java_enum! {
    /// How a consumer gets messages (`ConsumeType`).
    pub enum ConsumeType {
        /// `CONSUME_ACTIVELY`: pull consumer.
        ConsumeActively = 0 => "CONSUME_ACTIVELY",
        /// `CONSUME_PASSIVELY`: push consumer.
        ConsumePassively = 1 => "CONSUME_PASSIVELY",
        /// `CONSUME_POP`: pop consumer (5.x).
        ConsumePop = 2 => "CONSUME_POP",
    }
    default ConsumePassively;
}

java_enum! {
    /// Whether each message goes to one member of the group or to all (`MessageModel`).
    pub enum MessageModel {
        /// `BROADCASTING`: every member gets every message.
        Broadcasting = 0 => "BROADCASTING",
        /// `CLUSTERING`: the group shares the queues.
        Clustering = 1 => "CLUSTERING",
    }
    default Clustering;
}

java_enum! {
    /// Where a group with no stored offset starts (`ConsumeFromWhere`).
    pub enum ConsumeFromWhere {
        /// `CONSUME_FROM_LAST_OFFSET`.
        ConsumeFromLastOffset = 0 => "CONSUME_FROM_LAST_OFFSET",
        /// Deprecated; behaves like last offset.
        ConsumeFromLastOffsetAndFromMinWhenBootFirst = 1 => "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        /// Deprecated; behaves like last offset.
        ConsumeFromMinOffset = 2 => "CONSUME_FROM_MIN_OFFSET",
        /// Deprecated; behaves like last offset.
        ConsumeFromMaxOffset = 3 => "CONSUME_FROM_MAX_OFFSET",
        /// `CONSUME_FROM_FIRST_OFFSET`.
        ConsumeFromFirstOffset = 4 => "CONSUME_FROM_FIRST_OFFSET",
        /// `CONSUME_FROM_TIMESTAMP`.
        ConsumeFromTimestamp = 5 => "CONSUME_FROM_TIMESTAMP",
    }
    default ConsumeFromLastOffset;
}

/// `expressionType` of tag subscriptions.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// `expressionType` of SQL92 subscriptions.
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";
/// The subscription expression that matches every tag.
pub const SUB_ALL: &str = "*";

fn default_expression_type() -> String {
    EXPRESSION_TYPE_TAG.to_owned()
}

/// A sequence that may arrive as null (read as empty).
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A list of 32-bit tag hash codes whose elements may arrive as strings.
fn lenient_i32_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    #[derive(Deserialize)]
    struct Code(#[serde(deserialize_with = "lenient::i32")] i32);
    Ok(null_as_empty::<D, Code>(d)?
        .into_iter()
        .map(|c| c.0)
        .collect())
}

/// A list of strings whose elements may arrive as numbers; null elements are dropped.
fn lenient_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "lenient::opt_string")] Option<String>);
    Ok(null_as_empty::<D, Item>(d)?
        .into_iter()
        .filter_map(|i| i.0)
        .collect())
}

/// One topic subscription of a consumer (`SubscriptionData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionData {
    /// `classFilterMode` (obsolete filter servers).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub class_filter_mode: bool,
    /// `codeSet`: Java `String.hashCode` of each tag.
    #[serde(default, deserialize_with = "lenient_i32_list")]
    pub code_set: Vec<i32>,
    /// `expressionType`: [`EXPRESSION_TYPE_TAG`] or [`EXPRESSION_TYPE_SQL92`].
    #[serde(
        default = "default_expression_type",
        deserialize_with = "lenient::string"
    )]
    pub expression_type: String,
    /// `subString`: the expression (`*`, `TagA || TagB`, or SQL92).
    #[serde(default, deserialize_with = "lenient::string")]
    pub sub_string: String,
    /// `subVersion`: the subscription's version (ms timestamp); a number or a string.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub sub_version: i64,
    /// `tagsSet`: the tags of a tag expression.
    #[serde(default, deserialize_with = "lenient_string_list")]
    pub tags_set: Vec<String>,
    /// `topic`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub topic: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            code_set: Vec::new(),
            expression_type: default_expression_type(),
            sub_string: SUB_ALL.to_owned(),
            sub_version: 0,
            tags_set: Vec::new(),
            topic: String::new(),
        }
    }
}

/// One producer group of a client (`ProducerData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerData {
    /// `groupName`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub group_name: String,
}

/// One consumer group of a client (`ConsumerData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    /// `consumeFromWhere` (null or absent reads as last offset).
    #[serde(default)]
    pub consume_from_where: ConsumeFromWhere,
    /// `consumeType` (null or absent reads as push).
    #[serde(default)]
    pub consume_type: ConsumeType,
    /// `groupName`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub group_name: String,
    /// `messageModel` (null or absent reads as clustering).
    #[serde(default)]
    pub message_model: MessageModel,
    /// `subscriptionDataSet`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subscription_data_set: Vec<SubscriptionData>,
    /// `unitMode`.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub unit_mode: bool,
}

/// The `HEART_BEAT` body (`HeartbeatData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatData {
    /// `clientID`: the client instance id (`ip@instanceName`).
    #[serde(rename = "clientID", default, deserialize_with = "lenient::string")]
    pub client_id: String,
    /// `consumerDataSet`.
    #[serde(
        rename = "consumerDataSet",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub consumer_data_set: Vec<ConsumerData>,
    /// `heartbeatFingerprint` (5.x): a hash of the heartbeat, so that unchanged ones can be
    /// sent without subscriptions.
    #[serde(
        rename = "heartbeatFingerprint",
        default,
        deserialize_with = "lenient::i32"
    )]
    pub heartbeat_fingerprint: i32,
    /// `producerDataSet`.
    #[serde(
        rename = "producerDataSet",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub producer_data_set: Vec<ProducerData>,
    /// `withoutSub` (5.x; Java's field is `isWithoutSub`, also accepted): the subscriptions
    /// were left out because the fingerprint did not change.
    #[serde(
        rename = "withoutSub",
        alias = "isWithoutSub",
        default,
        deserialize_with = "lenient::bool"
    )]
    pub without_sub: bool,
}

json_body!(HeartbeatData, "heartbeat body");
json_body!(SubscriptionData, "subscription data");

impl fmt::Display for ConsumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for MessageModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ConsumeFromWhere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl SubscriptionData {
    /// A tag subscription to `topic` with `expression` (`*` or `TagA || TagB`): tags split on
    /// `||` and trimmed, codes their hashes, as Java's `FilterAPI.buildSubscriptionData` does.
    pub fn tags(topic: &str, expression: &str, sub_version: i64) -> Self {
        let expression = expression.trim();
        let mut data = SubscriptionData {
            topic: topic.to_owned(),
            sub_string: if expression.is_empty() {
                SUB_ALL.to_owned()
            } else {
                expression.to_owned()
            },
            sub_version,
            ..SubscriptionData::default()
        };
        if data.sub_string != SUB_ALL {
            for tag in data.sub_string.split("||").map(str::trim) {
                if !tag.is_empty() {
                    data.tags_set.push(tag.to_owned());
                    data.code_set.push(crate::record::java_string_hash(tag));
                }
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WireError;

    #[test]
    fn java_heartbeat_round_trip() {
        let java = br#"{"clientID":"10.0.0.5@4711","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"CG","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"TagA","subVersion":1700000000000,"tagsSet":["TagA"],"topic":"T"}],"unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":"PG"},{"groupName":"CLIENT_INNER_PRODUCER"}],"withoutSub":false}"#;
        let data = HeartbeatData::decode(java).unwrap();
        assert_eq!(data.client_id, "10.0.0.5@4711");
        assert_eq!(data.producer_data_set.len(), 2);
        let consumer = &data.consumer_data_set[0];
        assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(consumer.message_model, MessageModel::Clustering);
        assert_eq!(
            consumer.subscription_data_set[0],
            SubscriptionData::tags("T", "TagA", 1_700_000_000_000)
        );
        // Our encoding is Java's, byte for byte.
        assert_eq!(data.encode(), java.to_vec());
    }

    #[test]
    fn stock_client_quirks() {
        // Ordinal enums, string subVersion, string numbers, nulls, isWithoutSub, bare keys.
        let body = br#"{"clientID":"c@1","producerDataSet":null,
            "consumerDataSet":[{"groupName":"CG","consumeType":1,"messageModel":"0",
            "consumeFromWhere":4,"unitMode":"false","subscriptionDataSet":[{"topic":"T",
            "subString":"*","subVersion":"1700000000001","tagsSet":[],"codeSet":["12"],
            "expressionType":null}]}],"isWithoutSub":"true","heartbeatFingerprint":"-5"}"#;
        let data = HeartbeatData::decode(body).unwrap();
        assert!(data.producer_data_set.is_empty());
        assert!(data.without_sub);
        assert_eq!(data.heartbeat_fingerprint, -5);
        let consumer = &data.consumer_data_set[0];
        assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(consumer.message_model, MessageModel::Broadcasting);
        assert_eq!(
            consumer.consume_from_where,
            ConsumeFromWhere::ConsumeFromFirstOffset
        );
        let sub = &consumer.subscription_data_set[0];
        assert_eq!(sub.sub_version, 1_700_000_000_001);
        assert_eq!(sub.code_set, [12]);
        assert_eq!(sub.expression_type, "");
        let again = HeartbeatData::decode(&data.encode()).unwrap();
        assert_eq!(again, data);
    }

    #[test]
    fn unknown_enum_and_garbage_are_errors() {
        let body = br#"{"consumerDataSet":[{"consumeType":"CONSUME_SIDEWAYS"}]}"#;
        let error = HeartbeatData::decode(body).unwrap_err();
        assert!(matches!(error, WireError::InvalidJson { .. }), "{error}");
        assert!(HeartbeatData::decode(br#"{"consumerDataSet":[{"consumeType":9}]}"#).is_err());
        assert!(HeartbeatData::decode(b"[").is_err());
        assert_eq!(
            HeartbeatData::decode(b"{}").unwrap(),
            HeartbeatData::default()
        );
    }

    #[test]
    fn tag_hash_matches_java() {
        // "TagA".hashCode() == 2598919 and "".hashCode() == 0 in Java.
        assert_eq!(crate::record::java_string_hash("TagA"), 2_598_919);
        assert_eq!(crate::record::java_string_hash(""), 0);
        let sub = SubscriptionData::tags("T", " TagA || TagB ||", 1);
        assert_eq!(sub.tags_set, ["TagA", "TagB"]);
        assert_eq!(sub.code_set.len(), 2);
        assert!(SubscriptionData::tags("T", "*", 1).tags_set.is_empty());
        assert_eq!(
            ConsumeFromWhere::parse("consume_from_timestamp"),
            Some(ConsumeFromWhere::ConsumeFromTimestamp)
        );
        assert_eq!(ConsumeType::ConsumePop.ordinal(), 2);
    }
}
