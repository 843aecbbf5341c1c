//! Topic routes: `TopicRouteData`, `QueueData`, `BrokerData` — the body of
//! `GET_ROUTEINFO_BY_TOPIC` answers and of `REGISTER_TOPIC_IN_NAMESRV` requests.
//!
//! ```text
//! {"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},
//!                  "brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],
//!  "filterServerTable":{},
//!  "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,
//!                 "writeQueueNums":8}]}
//! ```
//!
//! Encoding is standard JSON with fields in fastjson's alphabetical order, null fields
//! omitted, `brokerAddrs` keyed by quoted broker ids, and `enableActingMaster` always present
//! (one stock client fails every send without it). Decoding accepts what older peers write:
//! bare numeric keys (`{0:"…"}`, see [`crate::json::parse`]), `topicSynFlag` (≤ 4.8.0) for
//! `topicSysFlag`, `queueDatas` as a list or as a `brokerName → QueueData` map, numbers as
//! strings, unknown fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::json::lenient;

/// The broker id of a master; slaves have ids ≥ 1.
pub const MASTER_ID: i64 = 0;

/// One broker group's queues of a topic (`QueueData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    /// The broker group owning the queues.
    #[serde(default, deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// Permission bits ([`crate::body::topic::perm`]).
    #[serde(default, deserialize_with = "lenient::i32")]
    pub perm: i32,
    /// Number of readable queues.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub read_queue_nums: i32,
    /// Topic system flags ([`crate::body::topic::sys_flag`]); `topicSynFlag` up to 4.8.0.
    #[serde(default, alias = "topicSynFlag", deserialize_with = "lenient::i32")]
    pub topic_sys_flag: i32,
    /// Number of writable queues.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub write_queue_nums: i32,
}

/// One broker group: its name, cluster and the address of each member (`BrokerData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    /// Broker id → `"ip:port"`; id 0 is the master.
    #[serde(default, deserialize_with = "broker_addrs")]
    pub broker_addrs: BTreeMap<i64, String>,
    /// The broker group's name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// The cluster the group belongs to.
    #[serde(default, deserialize_with = "lenient::string")]
    pub cluster: String,
    /// Whether a slave may act as master when the master is gone (5.x). Always written.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enable_acting_master: bool,
    /// The zone, if the broker declared one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// The master's address, if the master is registered.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}

/// A topic's route (`TopicRouteData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    /// The broker groups holding queues of the topic.
    #[serde(default, deserialize_with = "broker_datas")]
    pub broker_datas: Vec<BrokerData>,
    /// Broker address → filter-server addresses (kept for compatibility; always empty in 4.3+).
    #[serde(default, deserialize_with = "filter_server_table")]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// Ordered-topic configuration, `brokerName:queueNums;…`, from the KV store.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub order_topic_conf: Option<String>,
    /// The queues per broker group.
    #[serde(default, deserialize_with = "queue_datas")]
    pub queue_datas: Vec<QueueData>,
    /// Static-topic mapping per broker (5.x); kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_queue_mapping_by_broker: Option<serde_json::Value>,
}

/// `brokerAddrs`: id keys as numbers or numeric strings (bare keys are quoted by
/// [`crate::json::parse`]); null values dropped; null map reads as empty.
fn broker_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, String>, D::Error> {
    let raw: BTreeMap<String, String> = lenient::string_map(d)?;
    raw.into_iter()
        .map(|(key, value)| {
            key.trim()
                .parse::<i64>()
                .map(|id| (id, value))
                .map_err(|_| de::Error::custom(format!("broker id {key:?} is not a number")))
        })
        .collect()
}

/// `brokerDatas`: a list, or null.
fn broker_datas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BrokerData>, D::Error> {
    Ok(Option::<Vec<BrokerData>>::deserialize(d)?.unwrap_or_default())
}

/// `filterServerTable`: a map of address → list, or null.
fn filter_server_table<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    Ok(
        Option::<BTreeMap<String, Option<Vec<String>>>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|(addr, servers)| (addr, servers.unwrap_or_default()))
            .collect(),
    )
}

/// `queueDatas`: a list (the wire form), a `brokerName → QueueData` map (the ≤ 4.9.3
/// list / ≥ 4.9.4 map split of the NameServer's table, as some tools dump it), or null.
fn queue_datas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<QueueData>, D::Error> {
    struct QueueDatasVisitor;
    impl<'de> Visitor<'de> for QueueDatasVisitor {
        type Value = Vec<QueueData>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of QueueData, a map brokerName -> QueueData, or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(queue) = seq.next_element::<Option<QueueData>>()? {
                out.extend(queue);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, queue)) = map.next_entry::<String, Option<QueueData>>()? {
                if let Some(mut queue) = queue {
                    if queue.broker_name.is_empty() {
                        queue.broker_name = name;
                    }
                    out.push(queue);
                }
            }
            Ok(out)
        }
    }
    d.deserialize_any(QueueDatasVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_vec};

    fn sample() -> TopicRouteData {
        TopicRouteData {
            broker_datas: vec![BrokerData {
                broker_addrs: [(0, "10.0.0.1:10911".into()), (1, "10.0.0.2:10911".into())]
                    .into_iter()
                    .collect(),
                broker_name: "broker-a".into(),
                cluster: "DefaultCluster".into(),
                enable_acting_master: false,
                zone_name: None,
            }],
            filter_server_table: BTreeMap::new(),
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                perm: 6,
                read_queue_nums: 8,
                topic_sys_flag: 0,
                write_queue_nums: 8,
            }],
            topic_queue_mapping_by_broker: None,
        }
    }

    #[test]
    fn encodes_as_stock_clients_parse_it() {
        let json = String::from_utf8(to_vec(&sample())).unwrap();
        assert_eq!(
            json,
            r#"{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}"#
        );
    }

    #[test]
    fn round_trip() {
        let mut route = sample();
        route.order_topic_conf = Some("broker-a:8".into());
        route.broker_datas[0].zone_name = Some("z1".into());
        route.broker_datas[0].enable_acting_master = true;
        route
            .filter_server_table
            .insert("10.0.0.1:10911".into(), vec!["10.0.0.1:30000".into()]);
        let json = to_vec(&route);
        assert_eq!(parse::<TopicRouteData>("route", &json).unwrap(), route);
    }

    /// Regression: fastjson (pre-4.9.4 brokers and NameServers) writes `brokerAddrs` with
    /// bare numeric keys, numbers where strings are expected and the old `topicSynFlag`.
    #[test]
    fn parses_fastjson_legacy_route() {
        let legacy = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSynFlag":0,"writeQueueNums":"8"}],"extra":{"x":1}}"#;
        let route: TopicRouteData = parse("route", legacy).unwrap();
        assert_eq!(route, sample());
    }

    #[test]
    fn queue_datas_map_form_and_nulls() {
        let route: TopicRouteData = parse(
            "route",
            br#"{"brokerDatas":null,"filterServerTable":null,"queueDatas":{"broker-b":{"perm":4,"readQueueNums":2,"writeQueueNums":2}}}"#,
        )
        .unwrap();
        assert!(route.broker_datas.is_empty());
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].broker_name, "broker-b");
        assert_eq!(route.queue_datas[0].perm, 4);
        assert!(
            parse::<TopicRouteData>("route", br#"{"brokerDatas":[{"brokerAddrs":{"x":"a"}}]}"#)
                .is_err()
        );
    }

    #[test]
    fn master_addr() {
        let route = sample();
        assert_eq!(route.broker_datas[0].master_addr(), Some("10.0.0.1:10911"));
        assert_eq!(BrokerData::default().master_addr(), None);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::json::{parse, quote_bare_keys, to_vec};

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_%-]{1,16}"
    }

    fn broker_data() -> impl Strategy<Value = BrokerData> {
        (
            prop::collection::btree_map(0i64..4, "[0-9.:]{1,21}", 0..3),
            name(),
            name(),
            any::<bool>(),
            prop::option::of(name()),
        )
            .prop_map(
                |(broker_addrs, broker_name, cluster, enable_acting_master, zone_name)| {
                    BrokerData {
                        broker_addrs,
                        broker_name,
                        cluster,
                        enable_acting_master,
                        zone_name,
                    }
                },
            )
    }

    fn queue_data() -> impl Strategy<Value = QueueData> {
        (name(), 0i32..8, 0i32..1024, 0i32..4, 0i32..1024).prop_map(
            |(broker_name, perm, read_queue_nums, topic_sys_flag, write_queue_nums)| QueueData {
                broker_name,
                perm,
                read_queue_nums,
                topic_sys_flag,
                write_queue_nums,
            },
        )
    }

    proptest! {
        #[test]
        fn route_round_trips(
            broker_datas in prop::collection::vec(broker_data(), 0..4),
            queue_datas in prop::collection::vec(queue_data(), 0..4),
            order_topic_conf in prop::option::of("[a-z:;0-9]{0,20}"),
        ) {
            let route = TopicRouteData {
                broker_datas,
                filter_server_table: BTreeMap::new(),
                order_topic_conf,
                queue_datas,
                topic_queue_mapping_by_broker: None,
            };
            let json = to_vec(&route);
            prop_assert_eq!(parse::<TopicRouteData>("route", &json).unwrap(), route.clone());
            // The fastjson form (bare numeric keys) parses to the same route.
            let text = String::from_utf8(json).unwrap();
            let fastjson = text.replace("{\"0\":", "{0:").replace(",\"1\":", ",1:");
            prop_assert_eq!(quote_bare_keys(&fastjson).into_owned(), text);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse::<TopicRouteData>("route", &bytes);
            let _ = crate::body::register::RegisterBrokerBody::decode(&bytes, true);
            let _ = crate::body::register::RegisterBrokerBody::decode(&bytes, false);
            let _ = parse::<crate::body::cluster::ClusterInfo>("cluster info", &bytes);
        }

        #[test]
        fn truncated_route_json_is_an_error(cut in 0usize..200) {
            let json = to_vec(&tests_sample());
            let cut = cut.min(json.len().saturating_sub(1));
            prop_assert!(parse::<TopicRouteData>("route", &json[..cut]).is_err());
        }
    }

    fn tests_sample() -> TopicRouteData {
        TopicRouteData {
            broker_datas: vec![BrokerData {
                broker_addrs: [(0, "10.0.0.1:10911".into())].into_iter().collect(),
                broker_name: "broker-a".into(),
                cluster: "C".into(),
                enable_acting_master: false,
                zone_name: None,
            }],
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                perm: 6,
                read_queue_nums: 8,
                topic_sys_flag: 0,
                write_queue_nums: 8,
            }],
            ..TopicRouteData::default()
        }
    }
}
