//! Broker registration: `RegisterBrokerBody`, `TopicConfigSerializeWrapper` (with 5.x's
//! static-topic mapping fields) and `DataVersion`.
//!
//! A `REGISTER_BROKER` body comes in two forms, chosen by the header's `compressed` flag:
//!
//! * plain: the JSON of [`RegisterBrokerBody`],
//!   `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{…},"topicConfigTable":{"T":{…}}}}`;
//! * compressed: a zlib stream (Java's `DeflaterOutputStream`) of big-endian `i32`-length-prefixed
//!   parts:
//!
//! ```text
//! | len | DataVersion JSON | topicCount | { len | TopicConfig compact text }* |
//! | len | filterServerList JSON | [ mappingCount | { len | TopicQueueMappingInfo JSON }* ] (5.x only) |
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Deserializer, Serialize};

use crate::body::topic::TopicConfig;
use crate::error::WireError;
use crate::json::{lenient, parse, to_vec};
use crate::limits::FRAME_BYTES_MAX;

/// Largest inflated compressed registration body. A broker with 100 000 topics needs about
/// 6 MiB; the cap keeps a zip bomb of a few KiB from allocating gigabytes.
pub const INFLATED_REGISTER_BODY_BYTES_MAX: usize = 4 * FRAME_BYTES_MAX;

/// A version stamp of a broker's topic configuration (`DataVersion`). The NameServer rewrites
/// its route tables only when a registration carries a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataVersion {
    /// Bumped on every change.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub counter: i64,
    /// Bumped on master/slave role changes (5.x).
    #[serde(default, deserialize_with = "lenient::i64")]
    pub state_version: i64,
    /// Milliseconds since the epoch of the last change.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub timestamp: i64,
}

/// All topic configurations of a broker with their version (`TopicConfigSerializeWrapper`,
/// and 5.x's `TopicConfigAndMappingSerializeWrapper`, whose extra fields are kept opaque).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfigSerializeWrapper {
    /// Version of the topic configuration.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_version: DataVersion,
    /// Version of the static-topic mapping (5.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_data_version: Option<DataVersion>,
    /// Topic name → configuration.
    #[serde(default, deserialize_with = "null_as_default")]
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Static-topic mapping details (5.x), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_queue_mapping_detail_map: Option<serde_json::Value>,
    /// Static-topic mapping info per topic (5.x), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_queue_mapping_info_map: Option<BTreeMap<String, serde_json::Value>>,
}

/// The body of a `REGISTER_BROKER` request (`RegisterBrokerBody`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBrokerBody {
    /// Filter-server addresses of the broker (empty since 4.3).
    #[serde(default, deserialize_with = "null_as_default")]
    pub filter_server_list: Vec<String>,
    /// The broker's topics.
    #[serde(default, deserialize_with = "null_as_default")]
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

const WHAT: &str = "register broker body";

impl RegisterBrokerBody {
    /// Encodes the body, compressed (the zlib layout above) or as plain JSON.
    pub fn encode(&self, compressed: bool) -> Vec<u8> {
        if !compressed {
            return to_vec(self);
        }
        let wrapper = &self.topic_config_serialize_wrapper;
        let mut raw = Vec::with_capacity(64 + wrapper.topic_config_table.len() * 48);
        put_part(&mut raw, &to_vec(&wrapper.data_version));
        put_len(&mut raw, wrapper.topic_config_table.len());
        for config in wrapper.topic_config_table.values() {
            put_part(&mut raw, config.encode_compact().as_bytes());
        }
        put_part(&mut raw, &to_vec(&self.filter_server_list));
        let mappings = wrapper.topic_queue_mapping_info_map.as_ref();
        put_len(&mut raw, mappings.map_or(0, BTreeMap::len));
        for info in mappings.into_iter().flat_map(BTreeMap::values) {
            put_part(&mut raw, &to_vec(info));
        }
        let mut encoder = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(raw.len() / 4 + 64),
            flate2::Compression::best(),
        );
        // Writing into a Vec cannot fail.
        encoder
            .write_all(&raw)
            .and_then(|()| encoder.flush())
            .unwrap_or_else(|e| panic!("deflating into memory failed: {e}"));
        encoder
            .finish()
            .unwrap_or_else(|e| panic!("deflating into memory failed: {e}"))
    }

    /// Decodes a body in the form the header's `compressed` flag announces.
    pub fn decode(body: &[u8], compressed: bool) -> Result<Self, WireError> {
        if !compressed {
            return parse(WHAT, body);
        }
        let mut inflated = Vec::with_capacity(body.len() * 4);
        flate2::read::ZlibDecoder::new(body)
            .take(INFLATED_REGISTER_BODY_BYTES_MAX as u64 + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| WireError::InvalidJson {
                what: WHAT,
                reason: format!("zlib stream is corrupt: {e}"),
            })?;
        if inflated.len() > INFLATED_REGISTER_BODY_BYTES_MAX {
            return Err(WireError::TooLong {
                what: "inflated register broker body",
                len: inflated.len(),
                max: INFLATED_REGISTER_BODY_BYTES_MAX,
            });
        }
        let mut reader = PartReader(&inflated);
        let data_version: DataVersion = parse("data version", reader.part("dataVersion")?)?;
        let topic_count = reader.len("topic count")?;
        let mut topic_config_table = BTreeMap::new();
        for _ in 0..topic_count {
            let text = std::str::from_utf8(reader.part("topic config")?).map_err(|_| {
                WireError::InvalidUtf8 {
                    what: "topic config",
                }
            })?;
            let config = TopicConfig::decode_compact(text)?;
            topic_config_table.insert(config.topic_name.clone(), config);
        }
        let filter_server_list: Option<Vec<String>> =
            parse("filter server list", reader.part("filterServerList")?)?;
        // 4.x brokers stop here; 5.x ones append the static-topic mappings.
        let mut mapping_info = None;
        if !reader.0.is_empty() {
            let count = reader.len("topic queue mapping count")?;
            let mut map = BTreeMap::new();
            for _ in 0..count {
                let info: serde_json::Value =
                    parse("topic queue mapping", reader.part("topicQueueMapping")?)?;
                let topic = info
                    .get("topic")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                map.insert(topic, info);
            }
            mapping_info = Some(map);
        }
        Ok(RegisterBrokerBody {
            filter_server_list: filter_server_list.unwrap_or_default(),
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                data_version,
                topic_config_table,
                topic_queue_mapping_info_map: mapping_info,
                ..TopicConfigSerializeWrapper::default()
            },
        })
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Every part is bounded far below i32::MAX by the frame limit.
    out.extend_from_slice(&(len as i32).to_be_bytes());
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    put_len(out, part.len());
    out.extend_from_slice(part);
}

/// Reads the length-prefixed parts of an inflated body, bounds-checked.
struct PartReader<'a>(&'a [u8]);

impl<'a> PartReader<'a> {
    fn len(&mut self, what: &'static str) -> Result<usize, WireError> {
        let Some((head, rest)) = self.0.split_first_chunk::<4>() else {
            return Err(WireError::Truncated {
                what,
                needed: 4 - self.0.len(),
            });
        };
        self.0 = rest;
        let value = i32::from_be_bytes(*head);
        usize::try_from(value)
            .map_err(|_| WireError::invalid_field(what, &value.to_string(), "negative length"))
    }

    fn part(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.len(what)?;
        if len > self.0.len() {
            return Err(WireError::Truncated {
                what,
                needed: len - self.0.len(),
            });
        }
        let (part, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RegisterBrokerBody {
        let mut body = RegisterBrokerBody::default();
        let wrapper = &mut body.topic_config_serialize_wrapper;
        wrapper.data_version = DataVersion {
            counter: 7,
            state_version: 1,
            timestamp: 1_700_000_000_000,
        };
        for (name, queues) in [("TopicA", 8), ("TopicB", 4)] {
            wrapper
                .topic_config_table
                .insert(name.into(), TopicConfig::new(name, queues));
        }
        body
    }

    #[test]
    fn plain_round_trip_and_java_shape() {
        let body = sample();
        let json = body.encode(false);
        assert_eq!(RegisterBrokerBody::decode(&json, false).unwrap(), body);
        let java: RegisterBrokerBody = RegisterBrokerBody::decode(
            br#"{"filterServerList":null,"topicConfigSerializeWrapper":{"dataVersion":{"counter":"3","timestamp":1},"topicConfigTable":{"T":{"topicName":"T","readQueueNums":2,"writeQueueNums":2,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false}},"topicQueueMappingInfoMap":{}}}"#,
            false,
        )
        .unwrap();
        let wrapper = &java.topic_config_serialize_wrapper;
        assert_eq!(wrapper.data_version.counter, 3);
        assert_eq!(wrapper.topic_config_table["T"].read_queue_nums, 2);
        assert!(java.filter_server_list.is_empty());
    }

    #[test]
    fn compressed_round_trip() {
        let mut body = sample();
        let compressed = body.encode(true);
        let decoded = RegisterBrokerBody::decode(&compressed, true).unwrap();
        // The compact form carries no sys flag/order, and the mapping section is present (empty).
        body.topic_config_serialize_wrapper
            .topic_queue_mapping_info_map = Some(BTreeMap::new());
        assert_eq!(decoded, body);
    }

    #[test]
    fn compressed_4x_form_without_mappings() {
        let mut raw = Vec::new();
        put_part(&mut raw, br#"{"counter":1,"timestamp":2}"#);
        put_len(&mut raw, 1);
        put_part(&mut raw, b"T 4 4 6 SINGLE_TAG");
        put_part(&mut raw, b"[]");
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&raw).unwrap();
        let body = RegisterBrokerBody::decode(&encoder.finish().unwrap(), true).unwrap();
        let wrapper = &body.topic_config_serialize_wrapper;
        assert_eq!(wrapper.data_version.counter, 1);
        assert_eq!(wrapper.topic_config_table["T"].write_queue_nums, 4);
        assert_eq!(wrapper.topic_queue_mapping_info_map, None);
    }

    #[test]
    fn corrupt_compressed_bodies_are_errors() {
        assert!(RegisterBrokerBody::decode(b"not zlib", true).is_err());
        let full = sample().encode(true);
        // Every truncation of the zlib stream fails cleanly (no panic).
        for cut in 0..full.len() {
            let _ = RegisterBrokerBody::decode(&full[..cut], true);
        }
        let mut raw = Vec::new();
        put_part(&mut raw, br#"{"counter":1}"#);
        put_len(&mut raw, 1_000_000);
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&raw).unwrap();
        assert!(matches!(
            RegisterBrokerBody::decode(&encoder.finish().unwrap(), true),
            Err(WireError::Truncated { .. })
        ));
        assert!(RegisterBrokerBody::decode(b"{bad json", false).is_err());
    }
}
