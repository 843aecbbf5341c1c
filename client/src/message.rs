//! [`Message`], what a producer sends: topic, body, tags, keys, user properties, delay level.
//!
//! Properties travel as one string, `name\x01value\x02name\x01value\x02…` (RocketMQ's
//! `messageProperties2String`); [`encode_properties`] and [`decode_properties`] convert.
//! Names and values may not contain the two separator characters: [`Message::validate`]
//! rejects them, because the broker would split them into other properties.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::{ClientError, Result};

use ringmq_wire::record::Properties;
/// Names of the system properties (RocketMQ's `MessageConst`), from the wire crate.
pub use ringmq_wire::record::property;

/// Encodes properties as `name\x01value\x02…` (the wire crate's codec); names or values
/// containing a separator byte are rejected.
pub fn encode_properties<'a>(
    properties: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String> {
    let mut encoded = Properties::new();
    for (name, value) in properties {
        encoded.insert(name, value);
    }
    encoded
        .encode()
        .map_err(|e| ClientError::InvalidArgument(format!("message properties: {e}")))
}

/// Decodes `name\x01value\x02…`; entries without a separator are skipped, as RocketMQ does.
pub fn decode_properties(text: &str) -> BTreeMap<String, String> {
    ringmq_wire::record::properties_iter(text.as_bytes())
        .filter_map(|(name, value)| {
            Some((
                std::str::from_utf8(name).ok()?.to_owned(),
                std::str::from_utf8(value).ok()?.to_owned(),
            ))
        })
        .collect()
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic.
    pub topic: String,
    /// The body, sent as is (compressed on the wire above the producer's threshold).
    pub body: Bytes,
    /// The user flag, stored with the message and not interpreted.
    pub flag: i32,
    /// System and user properties.
    pub properties: BTreeMap<String, String>,
}

impl Message {
    /// A message with a topic and a body.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: BTreeMap::new(),
        }
    }

    /// Sets the tag (builder style).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(property::TAGS.into(), tags.into());
        self
    }

    /// Sets the keys (builder style); they are indexed by the broker.
    pub fn with_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = keys
            .into_iter()
            .map(|k| k.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.properties.insert(property::KEYS.into(), joined);
        self
    }

    /// Sets a user property (builder style).
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// Sets the delay level, 1 (1 s) to 18 (2 h) (builder style).
    pub fn with_delay_level(mut self, level: u32) -> Self {
        self.properties
            .insert(property::DELAY.into(), level.to_string());
        self
    }

    /// Sets the user flag (builder style).
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    /// The tag, if set.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// The keys, if set.
    pub fn keys(&self) -> Vec<&str> {
        self.property(property::KEYS)
            .map(|k| k.split(' ').filter(|k| !k.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The delay level, if set and numeric.
    pub fn delay_level(&self) -> Option<u32> {
        self.property(property::DELAY)?.parse().ok()
    }

    /// The client-generated unique id (`UNIQ_KEY`), set by the producer at send time.
    pub fn unique_id(&self) -> Option<&str> {
        self.property(property::UNIQ_KEY)
    }

    /// A property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The encoded properties string; fails if a name or value holds a separator byte.
    pub fn encoded_properties(&self) -> Result<String> {
        encode_properties(
            self.properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// Checks what the broker would reject, with a message naming the problem: empty or
    /// over-long topic, topic characters RocketMQ does not allow, empty body, body over
    /// `max_body_bytes`, separator characters in properties, delay level out of range.
    pub fn validate(&self, max_body_bytes: usize) -> Result<()> {
        validate_topic(&self.topic)?;
        if self.body.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "message to topic {} has an empty body",
                self.topic
            )));
        }
        if self.body.len() > max_body_bytes {
            return Err(ClientError::MessageTooLarge {
                size: self.body.len(),
                max: max_body_bytes,
            });
        }
        for (name, value) in &self.properties {
            let bad = |s: &str| s.contains(['\u{1}', '\u{2}']);
            if name.is_empty() || bad(name) || bad(value) {
                return Err(ClientError::InvalidArgument(format!(
                    "property {name:?} has an empty name or contains a separator (\\x01 or \\x02)"
                )));
            }
        }
        if let Some(raw) = self.property(property::DELAY) {
            match raw.parse::<u32>() {
                Ok(level) if level <= crate::limits::DELAY_LEVEL_MAX => {}
                _ => {
                    return Err(ClientError::InvalidArgument(format!(
                        "delay level {raw:?} is not in 0..={}",
                        crate::limits::DELAY_LEVEL_MAX
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Checks a topic name: 1..=127 characters of `[%|a-zA-Z0-9_-]`, as RocketMQ's `Validators`
/// allows (127 keeps V1 records; longer topics are not worth the incompatibility).
pub fn validate_topic(topic: &str) -> Result<()> {
    if topic.is_empty() || topic.len() > ringmq_wire::limits::TOPIC_BYTES_MAX_V1 {
        return Err(ClientError::InvalidArgument(format!(
            "topic {topic:?} must have 1 to {} characters",
            ringmq_wire::limits::TOPIC_BYTES_MAX_V1
        )));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(ClientError::InvalidArgument(format!(
            "topic {topic:?} contains {bad:?}: only letters, digits, %, |, _ and - are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_in_rocketmq_form() {
        let message = Message::new("T", "body")
            .with_tags("TagA")
            .with_keys(["k1", "k2"])
            .with_property("color", "red");
        let encoded = message.encoded_properties().expect("encodes");
        assert_eq!(
            encoded,
            "KEYS\u{1}k1 k2\u{2}TAGS\u{1}TagA\u{2}color\u{1}red\u{2}"
        );
        assert_eq!(decode_properties(&encoded), message.properties);
        assert_eq!(message.keys(), ["k1", "k2"]);
        assert_eq!(message.tags(), Some("TagA"));
        // RocketMQ skips malformed entries and tolerates a missing trailing separator.
        let lenient = decode_properties("a\u{1}1\u{2}junk\u{2}b\u{1}2");
        assert_eq!(lenient.len(), 2);
        assert_eq!(lenient["b"], "2");
        assert!(decode_properties("").is_empty());
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(Message::new("T", "x").validate(10).is_ok());
        assert!(matches!(
            Message::new("T", vec![0u8; 11]).validate(10),
            Err(ClientError::MessageTooLarge { size: 11, max: 10 })
        ));
        assert!(Message::new("T", "").validate(10).is_err());
        assert!(Message::new("", "x").validate(10).is_err());
        assert!(Message::new("a b", "x").validate(10).is_err());
        assert!(Message::new("%RETRY%g", "x").validate(10).is_ok());
        assert!(
            Message::new("T", "x")
                .with_property("k", "v\u{2}")
                .validate(10)
                .is_err()
        );
        assert!(
            Message::new("T", "x")
                .with_delay_level(19)
                .validate(10)
                .is_err()
        );
        assert_eq!(
            Message::new("T", "x").with_delay_level(3).delay_level(),
            Some(3)
        );
    }
}
