//! Headers of the topic, group and broker administration commands:
//!
//! | code | command | header |
//! |---|---|---|
//! | 17 | `UPDATE_AND_CREATE_TOPIC` | [`CreateTopicRequestHeader`] |
//! | 25 | `UPDATE_BROKER_CONFIG` | none; body = properties text ([`parse_properties`]) |
//! | 26 | `GET_BROKER_CONFIG` | response [`GetBrokerConfigResponseHeader`] + properties text |
//! | 28 | `GET_BROKER_RUNTIME_INFO` | none; response body = [`crate::body::kv::KvTable`] JSON |
//! | 202 | `GET_TOPIC_STATS_INFO` | [`GetTopicStatsInfoRequestHeader`] |
//! | 203 | `GET_CONSUMER_CONNECTION_LIST` | [`GetConsumerConnectionListRequestHeader`] |
//! | 204 | `GET_PRODUCER_CONNECTION_LIST` | [`GetProducerConnectionListRequestHeader`] |
//! | 207 | `DELETE_SUBSCRIPTIONGROUP` | [`DeleteSubscriptionGroupRequestHeader`] |
//! | 208 | `GET_CONSUME_STATS` | [`GetConsumeStatsRequestHeader`] |
//! | 215 | `DELETE_TOPIC_IN_BROKER` | [`DeleteTopicRequestHeader`] |
//! | 303 | `QUERY_CONSUME_TIME_SPAN` | [`QueryConsumeTimeSpanRequestHeader`] |
//! | 351 | `GET_TOPIC_CONFIG` | [`GetTopicConfigRequestHeader`] |
//! | 352 | `GET_SUBSCRIPTIONGROUP_CONFIG` | [`GetSubscriptionGroupConfigRequestHeader`] |

use std::collections::BTreeMap;

use crate::error::WireError;
use crate::header::{RpcFields, header_struct};

/// Topic and queue permission bits (`PermName`).
pub mod perm {
    /// Priority queue (unused by brokers).
    pub const PRIORITY: i32 = 0x8;
    /// Consumers may read.
    pub const READ: i32 = 0x4;
    /// Producers may write.
    pub const WRITE: i32 = 0x2;
    /// Inherited by auto-created topics.
    pub const INHERIT: i32 = 0x1;
}

/// `topicFilterType` values (`TopicFilterType`).
pub mod topic_filter_type {
    /// One tag per message (the default).
    pub const SINGLE_TAG: &str = "SINGLE_TAG";
    /// Several tags per message.
    pub const MULTI_TAG: &str = "MULTI_TAG";
}

header_struct! {
    /// `UPDATE_AND_CREATE_TOPIC` (17) request header (`CreateTopicRequestHeader`).
    pub struct CreateTopicRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `defaultTopic`: the template topic (`TBW102`).
        req default_topic: String => "defaultTopic",
        /// `readQueueNums`.
        req read_queue_nums: i32 => "readQueueNums",
        /// `writeQueueNums`.
        req write_queue_nums: i32 => "writeQueueNums",
        /// `perm`, see [`perm`].
        req perm: i32 => "perm",
        /// `topicFilterType`, see [`topic_filter_type`].
        req topic_filter_type: String => "topicFilterType",
        /// `topicSysFlag`.
        opt topic_sys_flag: i32 => "topicSysFlag",
        /// `order`: an ordered topic.
        req order: bool => "order",
        /// `attributes` (5.x): `+key=value,-key` edits of the topic attributes.
        opt attributes: String => "attributes",
        /// `force` (5.x): allow changing a topic's message type.
        opt force: bool => "force",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `DELETE_SUBSCRIPTIONGROUP` (207) request header (`DeleteSubscriptionGroupRequestHeader`).
    pub struct DeleteSubscriptionGroupRequestHeader {
        /// `groupName`.
        req group_name: String => "groupName",
        /// `cleanOffset`: also delete the group's consumer offsets (absent = false).
        opt clean_offset: bool => "cleanOffset",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `DELETE_TOPIC_IN_BROKER` (215) request header (`DeleteTopicRequestHeader`).
    pub struct DeleteTopicRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_TOPIC_CONFIG` (351) request header (`GetTopicConfigRequestHeader`).
    pub struct GetTopicConfigRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_SUBSCRIPTIONGROUP_CONFIG` (352) request header
    /// (`GetSubscriptionGroupConfigRequestHeader`).
    pub struct GetSubscriptionGroupConfigRequestHeader {
        /// `group`.
        req group: String => "group",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_TOPIC_STATS_INFO` (202) request header (`GetTopicStatsInfoRequestHeader`); the
    /// response body is a [`crate::body::stats::TopicStatsTable`].
    pub struct GetTopicStatsInfoRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_CONSUMER_CONNECTION_LIST` (203) request header
    /// (`GetConsumerConnectionListRequestHeader`); the response body is a
    /// [`crate::body::consumer::ConsumerConnection`].
    pub struct GetConsumerConnectionListRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_PRODUCER_CONNECTION_LIST` (204) request header
    /// (`GetProducerConnectionListRequestHeader`); the response body is a
    /// [`crate::body::consumer::ProducerConnection`].
    pub struct GetProducerConnectionListRequestHeader {
        /// `producerGroup`.
        req producer_group: String => "producerGroup",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_CONSUME_STATS` (208) request header (`GetConsumeStatsRequestHeader`); the response
    /// body is a [`crate::body::stats::ConsumeStats`].
    pub struct GetConsumeStatsRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// `topic`: only this topic (absent = every topic the group consumes).
        opt topic: String => "topic",
        /// `topicList` (5.x): several topics, `;`-separated.
        opt topic_list: String => "topicList",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `QUERY_CONSUME_TIME_SPAN` (303) request header (`QueryConsumeTimeSpanRequestHeader`);
    /// the response body is a [`crate::body::stats::QueryConsumeTimeSpanBody`].
    pub struct QueryConsumeTimeSpanRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `group`.
        req group: String => "group",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_BROKER_CONFIG` (26) response header (`GetBrokerConfigResponseHeader`); the body is
    /// the configuration as properties text.
    pub struct GetBrokerConfigResponseHeader {
        /// `version`: the configuration's data version, as JSON text.
        req version: String => "version",
    }
}

/// Longest properties body accepted (a broker configuration is a few KiB; this bounds what a
/// hostile `UPDATE_BROKER_CONFIG` can make us parse and keep).
pub const PROPERTIES_BYTES_MAX: usize = 1024 * 1024;

/// Parses a properties body (`UPDATE_BROKER_CONFIG` request, `GET_BROKER_CONFIG` response) as
/// Java's `Properties.load` reads it: one `key=value` (or `key:value`, or `key value`) per
/// line, `#`/`!` comments, backslash escapes (`\\`, `\=`, `\:`, `\ `, `\t`, `\n`, `\r`,
/// `\uXXXX`) and backslash line continuations. Later keys replace earlier ones.
pub fn parse_properties(body: &[u8]) -> Result<BTreeMap<String, String>, WireError> {
    if body.len() > PROPERTIES_BYTES_MAX {
        return Err(WireError::TooLong {
            what: "properties body",
            len: body.len(),
            max: PROPERTIES_BYTES_MAX,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| WireError::InvalidUtf8 {
        what: "properties body",
    })?;
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let piece = if logical.is_empty() {
            line.trim_start()
        } else {
            line.trim_start_matches([' ', '\t', '\x0c'])
        };
        if logical.is_empty() && (piece.is_empty() || piece.starts_with(['#', '!'])) {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = piece.len() - piece.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&piece[..piece.len() - 1]);
            continue;
        }
        logical.push_str(piece);
        let (key, value) = split_property(&logical);
        out.insert(key, value);
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_property(&logical);
        out.insert(key, value);
    }
    Ok(out)
}

/// Splits one logical line into its unescaped key and value.
fn split_property(line: &str) -> (String, String) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                key_end = i;
                value_start = i + c.len_utf8();
                break;
            }
            _ => {}
        }
    }
    let mut rest = line[value_start..].trim_start_matches([' ', '\t', '\x0c']);
    // `key = value`: the separator may follow whitespace.
    if key_end < line.len()
        && line[key_end..].starts_with([' ', '\t', '\x0c'])
        && let Some(stripped) = rest.strip_prefix(['=', ':'])
    {
        rest = stripped.trim_start_matches([' ', '\t', '\x0c']);
    }
    (unescape(&line[..key_end]), unescape(rest))
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => out.push(decoded),
                    // Java throws on a malformed \u escape; we keep the text as it was.
                    _ => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Writes properties as RocketMQ's `MixAll.properties2String` does: `key=value\n` per entry,
/// in key order, without escaping (RocketMQ's configuration keys and values need none).
pub fn encode_properties<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::assert_header_contract;

    #[test]
    fn create_topic_has_all_fields() {
        assert_header_contract(
            &GetProducerConnectionListRequestHeader {
                producer_group: "PG".into(),
                rpc: RpcFields::default(),
            },
            &["producerGroup"],
            &["producerGroup"],
        );
        assert_header_contract(
            &CreateTopicRequestHeader {
                topic: "T".into(),
                default_topic: "TBW102".into(),
                read_queue_nums: 8,
                write_queue_nums: 8,
                perm: perm::READ | perm::WRITE,
                topic_filter_type: topic_filter_type::SINGLE_TAG.into(),
                topic_sys_flag: Some(0),
                order: false,
                attributes: Some("+message.type=NORMAL".into()),
                force: Some(false),
                rpc: RpcFields::default(),
            },
            &[
                "topic",
                "defaultTopic",
                "readQueueNums",
                "writeQueueNums",
                "perm",
                "topicFilterType",
                "topicSysFlag",
                "order",
                "attributes",
                "force",
            ],
            &[
                "topic",
                "defaultTopic",
                "readQueueNums",
                "writeQueueNums",
                "perm",
                "topicFilterType",
                "order",
            ],
        );
    }

    #[test]
    fn group_and_topic_admin_headers() {
        let rpc = RpcFields::default();
        assert_header_contract(
            &DeleteSubscriptionGroupRequestHeader {
                group_name: "CG".into(),
                clean_offset: Some(true),
                rpc: rpc.clone(),
            },
            &["groupName", "cleanOffset"],
            &["groupName"],
        );
        assert_header_contract(
            &DeleteTopicRequestHeader {
                topic: "T".into(),
                rpc: rpc.clone(),
            },
            &["topic"],
            &["topic"],
        );
        assert_header_contract(
            &GetTopicConfigRequestHeader {
                topic: "T".into(),
                rpc: rpc.clone(),
            },
            &["topic"],
            &["topic"],
        );
        assert_header_contract(
            &GetSubscriptionGroupConfigRequestHeader {
                group: "CG".into(),
                rpc: rpc.clone(),
            },
            &["group"],
            &["group"],
        );
        assert_header_contract(
            &GetTopicStatsInfoRequestHeader {
                topic: "T".into(),
                rpc: rpc.clone(),
            },
            &["topic"],
            &["topic"],
        );
        assert_header_contract(
            &GetConsumerConnectionListRequestHeader {
                consumer_group: "CG".into(),
                rpc: rpc.clone(),
            },
            &["consumerGroup"],
            &["consumerGroup"],
        );
        assert_header_contract(
            &GetConsumeStatsRequestHeader {
                consumer_group: "CG".into(),
                topic: Some("T".into()),
                topic_list: None,
                rpc: rpc.clone(),
            },
            &["consumerGroup", "topic"],
            &["consumerGroup"],
        );
        assert_header_contract(
            &QueryConsumeTimeSpanRequestHeader {
                topic: "T".into(),
                group: "CG".into(),
                rpc,
            },
            &["topic", "group"],
            &["topic", "group"],
        );
        assert_header_contract(
            &GetBrokerConfigResponseHeader {
                version: r#"{"counter":1,"timestamp":2}"#.into(),
            },
            &["version"],
            &["version"],
        );
    }

    #[test]
    fn properties_like_java() {
        let text = "# comment\n! also\n\nbrokerName=broker-a\r\nlistenPort = 10911\n\
                    flushDiskType:ASYNC_FLUSH\nkey\\=with\\:seps=v\\u0041l\nlong=a\\\n   b\n\
                    spaced value here\nempty=\n";
        let parsed = parse_properties(text.as_bytes()).unwrap();
        assert_eq!(parsed["brokerName"], "broker-a");
        assert_eq!(parsed["listenPort"], "10911");
        assert_eq!(parsed["flushDiskType"], "ASYNC_FLUSH");
        assert_eq!(parsed["key=with:seps"], "vAl");
        assert_eq!(parsed["long"], "ab");
        assert_eq!(parsed["spaced"], "value here");
        assert_eq!(parsed["empty"], "");
        assert_eq!(parsed.len(), 7);

        let encoded = encode_properties(parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert!(encoded.starts_with("brokerName=broker-a\n"));
        let simple: BTreeMap<String, String> = [("a", "1"), ("b", "x y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let text = encode_properties(simple.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(text, "a=1\nb=x y\n");
        assert_eq!(parse_properties(text.as_bytes()).unwrap(), simple);
    }

    #[test]
    fn properties_limits() {
        assert!(parse_properties(&[0xff, b'=']).is_err());
        assert!(parse_properties(&vec![b'a'; PROPERTIES_BYTES_MAX + 1]).is_err());
        assert!(parse_properties(b"x=\\u12").is_ok());
        assert!(parse_properties(b"\\").is_ok());
    }
}
