//! Topic configuration and topic lists: `TopicConfig`, `TopicList`, the permission bits
//! (`PermName`) and the topic system flags (`TopicSysFlag`).
//!
//! JSON as RocketMQ's classes name the fields:
//!
//! ```text
//! TopicConfig {"attributes":{},"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG",
//!              "topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":8}
//! TopicList   {"brokerAddr":"10.0.0.1:10911","topicList":["A","B"]}
//! ```
//!
//! A compressed `REGISTER_BROKER` body carries each topic config in its compact text form
//! instead ([`TopicConfig::encode_compact`]): `name read write perm filterType[ attributesJson]`,
//! separated by single spaces.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::WireError;
use crate::json::lenient;

/// Permission bits of a topic or of one broker's queues of it (`PermName`).
pub mod perm {
    /// Queues of this broker are preferred (unused by stock clients).
    pub const PRIORITY: i32 = 8;
    /// Consumers may read.
    pub const READ: i32 = 4;
    /// Producers may write.
    pub const WRITE: i32 = 2;
    /// Inherited from the default topic on auto-creation.
    pub const INHERIT: i32 = 1;
    /// Read and write: the default of a new topic.
    pub const READ_WRITE: i32 = READ | WRITE;

    /// Whether `perm` allows reading.
    pub const fn is_readable(perm: i32) -> bool {
        perm & READ == READ
    }

    /// Whether `perm` allows writing.
    pub const fn is_writeable(perm: i32) -> bool {
        perm & WRITE == WRITE
    }

    /// `perm` as RocketMQ prints it: `R`, `W`, `X` or `-` for read, write, inherit.
    pub fn to_display(perm: i32) -> String {
        let mut out = String::with_capacity(3);
        out.push(if is_readable(perm) { 'R' } else { '-' });
        out.push(if is_writeable(perm) { 'W' } else { '-' });
        out.push(if perm & INHERIT == INHERIT { 'X' } else { '-' });
        out
    }
}

/// Topic system flags (`TopicSysFlag`), carried in `topicSysFlag`.
pub mod sys_flag {
    /// The topic is a unit topic.
    pub const UNIT: i32 = 0x1;
    /// The topic has unit subscriptions.
    pub const UNIT_SUB: i32 = 0x1 << 1;

    /// Whether the unit flag is set.
    pub const fn has_unit(flag: i32) -> bool {
        flag & UNIT == UNIT
    }

    /// Whether the unit-subscription flag is set.
    pub const fn has_unit_sub(flag: i32) -> bool {
        flag & UNIT_SUB == UNIT_SUB
    }
}

/// Default queue counts of a topic config that does not say (`TopicConfig.defaultReadQueueNums`).
pub const DEFAULT_QUEUE_NUMS: i32 = 16;

/// How tags are filtered (`TopicFilterType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum TopicFilterType {
    /// One tag per message (the default).
    #[default]
    SingleTag,
    /// Several tags per message.
    MultiTag,
}

impl TopicFilterType {
    /// The Java enum name.
    pub const fn name(self) -> &'static str {
        match self {
            TopicFilterType::SingleTag => "SINGLE_TAG",
            TopicFilterType::MultiTag => "MULTI_TAG",
        }
    }

    /// The filter type for a Java enum name or ordinal.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "SINGLE_TAG" | "0" => Some(TopicFilterType::SingleTag),
            "MULTI_TAG" | "1" => Some(TopicFilterType::MultiTag),
            _ => None,
        }
    }
}

impl Serialize for TopicFilterType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TopicFilterType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match lenient::opt_string(d)? {
            None => Ok(TopicFilterType::default()),
            Some(s) => TopicFilterType::parse(&s)
                .ok_or_else(|| de::Error::custom(format!("unknown topicFilterType {s:?}"))),
        }
    }
}

fn default_queue_nums() -> i32 {
    DEFAULT_QUEUE_NUMS
}

fn default_perm() -> i32 {
    perm::READ_WRITE
}

/// One topic's configuration on a broker (`TopicConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfig {
    /// Free-form topic attributes (5.x), e.g. `message.type`.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub attributes: BTreeMap<String, String>,
    /// Whether the topic is ordered.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub order: bool,
    /// Permission bits ([`perm`]).
    #[serde(default = "default_perm", deserialize_with = "lenient::i32")]
    pub perm: i32,
    /// Number of readable queues.
    #[serde(default = "default_queue_nums", deserialize_with = "lenient::i32")]
    pub read_queue_nums: i32,
    /// Tag filter type.
    #[serde(default)]
    pub topic_filter_type: TopicFilterType,
    /// The topic name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub topic_name: String,
    /// System flags ([`sys_flag`]).
    #[serde(default, deserialize_with = "lenient::i32")]
    pub topic_sys_flag: i32,
    /// Number of writable queues.
    #[serde(default = "default_queue_nums", deserialize_with = "lenient::i32")]
    pub write_queue_nums: i32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            attributes: BTreeMap::new(),
            order: false,
            perm: perm::READ_WRITE,
            read_queue_nums: DEFAULT_QUEUE_NUMS,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: DEFAULT_QUEUE_NUMS,
        }
    }
}

impl TopicConfig {
    /// A read-write topic with `queues` read and write queues.
    pub fn new(topic_name: impl Into<String>, queues: i32) -> Self {
        TopicConfig {
            topic_name: topic_name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..TopicConfig::default()
        }
    }

    /// The compact text form used inside compressed `REGISTER_BROKER` bodies:
    /// `name read write perm filterType`, plus the attributes as JSON when there are any.
    pub fn encode_compact(&self) -> String {
        let mut out = format!(
            "{} {} {} {} {}",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.perm,
            self.topic_filter_type.name()
        );
        if !self.attributes.is_empty() {
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(&crate::json::to_vec(
                &self.attributes,
            )));
        }
        out
    }

    /// Parses the compact text form ([`TopicConfig::encode_compact`]); 5 fields (4.x) or 6
    /// (5.x, with attributes JSON).
    pub fn decode_compact(text: &str) -> Result<Self, WireError> {
        const WHAT: &str = "topic config";
        let mut parts = text.splitn(6, ' ');
        let mut next = |field: &'static str| {
            parts
                .next()
                .filter(|part| !part.is_empty())
                .ok_or(WireError::MissingField { field })
        };
        let topic_name = next("topicName")?.to_owned();
        let number = |field: &'static str, raw: &str| -> Result<i32, WireError> {
            raw.parse()
                .map_err(|_| WireError::invalid_field(field, raw, "not a number"))
        };
        let read_queue_nums = number("readQueueNums", next("readQueueNums")?)?;
        let write_queue_nums = number("writeQueueNums", next("writeQueueNums")?)?;
        let perm = number("perm", next("perm")?)?;
        let filter_raw = next("topicFilterType")?;
        let topic_filter_type = TopicFilterType::parse(filter_raw).ok_or_else(|| {
            WireError::invalid_field("topicFilterType", filter_raw, "not SINGLE_TAG/MULTI_TAG")
        })?;
        let attributes = match parts.next() {
            Some(json) if !json.trim().is_empty() => {
                let wrapper: AttributesOnly =
                    crate::json::parse(WHAT, format!("{{\"attributes\":{json}}}").as_bytes())?;
                wrapper.attributes
            }
            _ => BTreeMap::new(),
        };
        Ok(TopicConfig {
            attributes,
            order: false,
            perm,
            read_queue_nums,
            topic_filter_type,
            topic_name,
            topic_sys_flag: 0,
            write_queue_nums,
        })
    }
}

#[derive(Deserialize)]
struct AttributesOnly {
    #[serde(default, deserialize_with = "lenient::string_map")]
    attributes: BTreeMap<String, String>,
}

/// A list of topic names (`TopicList`), the body of the NameServer's topic-list answers.
/// Java keeps a set; it is written as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    /// A broker address, set only by `GET_SYSTEM_TOPIC_LIST_FROM_NS` (a master to ask next).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub broker_addr: Option<String>,
    /// The topic names, sorted.
    #[serde(default, deserialize_with = "string_set")]
    pub topic_list: BTreeSet<String>,
}

/// A set of strings that may arrive as `null`.
fn string_set<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    struct SetVisitor;
    impl<'de> Visitor<'de> for SetVisitor {
        type Value = BTreeSet<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of strings, or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeSet::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeSet::new())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeSet::new();
            while let Some(item) = seq.next_element::<Option<String>>()? {
                out.extend(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(SetVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_vec};

    #[test]
    fn topic_config_json_round_trip_and_defaults() {
        let mut config = TopicConfig::new("TopicTest", 8);
        config
            .attributes
            .insert("+message.type".into(), "NORMAL".into());
        config.topic_sys_flag = sys_flag::UNIT;
        let json = to_vec(&config);
        assert_eq!(parse::<TopicConfig>("topic config", &json).unwrap(), config);

        let sparse: TopicConfig = parse(
            "topic config",
            br#"{"topicName":"T","perm":"4","order":"true","unknown":[1],"topicFilterType":1}"#,
        )
        .unwrap();
        assert_eq!(sparse.read_queue_nums, DEFAULT_QUEUE_NUMS);
        assert_eq!(sparse.perm, perm::READ);
        assert!(sparse.order);
        assert_eq!(sparse.topic_filter_type, TopicFilterType::MultiTag);
        assert!(parse::<TopicConfig>("topic config", br#"{"perm":"rw"}"#).is_err());
    }

    #[test]
    fn compact_form_round_trip() {
        let mut config = TopicConfig::new("T1", 4);
        config.perm = perm::READ;
        let text = config.encode_compact();
        assert_eq!(text, "T1 4 4 4 SINGLE_TAG");
        assert_eq!(TopicConfig::decode_compact(&text).unwrap(), config);

        config.attributes.insert("a".into(), "b c".into());
        let text = config.encode_compact();
        assert_eq!(text, r#"T1 4 4 4 SINGLE_TAG {"a":"b c"}"#);
        assert_eq!(TopicConfig::decode_compact(&text).unwrap(), config);

        assert_eq!(
            TopicConfig::decode_compact("T1 4 4"),
            Err(WireError::MissingField { field: "perm" })
        );
        assert!(TopicConfig::decode_compact("T1 x 4 6 SINGLE_TAG").is_err());
        assert!(TopicConfig::decode_compact("T1 4 4 6 NO_TAG").is_err());
    }

    #[test]
    fn topic_list_round_trip_and_null() {
        let list = TopicList {
            broker_addr: None,
            topic_list: ["B", "A"].into_iter().map(String::from).collect(),
        };
        let json = to_vec(&list);
        assert_eq!(json, br#"{"topicList":["A","B"]}"#);
        assert_eq!(parse::<TopicList>("topic list", &json).unwrap(), list);
        let empty: TopicList =
            parse("topic list", br#"{"topicList":null,"brokerAddr":null}"#).unwrap();
        assert!(empty.topic_list.is_empty() && empty.broker_addr.is_none());
    }

    #[test]
    fn perm_helpers() {
        assert!(perm::is_readable(6) && perm::is_writeable(6));
        assert!(!perm::is_writeable(perm::READ));
        assert_eq!(perm::to_display(7), "RWX");
        assert_eq!(perm::to_display(4), "R--");
        assert!(sys_flag::has_unit_sub(sys_flag::UNIT_SUB));
        assert!(!sys_flag::has_unit(sys_flag::UNIT_SUB));
    }
}
