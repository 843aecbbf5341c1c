//! Subscription group configuration: [`SubscriptionGroupConfig`] (the body of
//! `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP` 200 and of the `GET_SUBSCRIPTIONGROUP_CONFIG` 352
//! response) and [`SubscriptionGroupWrapper`] (`GET_ALL_SUBSCRIPTIONGROUP_CONFIG` 201,
//! `config/subscriptionGroup.json`).
//!
//! ```text
//! {"attributes":{},"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,
//!  "consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,
//!  "groupName":"CG","groupRetryPolicy":{"type":"CUSTOMIZED"},"groupSysFlag":0,
//!  "notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,
//!  "whichBrokerWhenConsumeSlowly":1}
//! ```
//!
//! Absent fields take Java's defaults, so a 4.x body (no retry policy, no attributes) reads
//! as the same group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::body::consumer::null_as_empty_map;
use crate::body::heartbeat::{java_enum, json_body};
use crate::body::register::DataVersion;
use crate::json::lenient;

java_enum! {
    /// How retries of a group are delayed (`GroupRetryPolicyType`).
    pub enum GroupRetryPolicyType {
        /// `EXPONENTIAL`: initial × multiplier^n, capped.
        Exponential = 0 => "EXPONENTIAL",
        /// `CUSTOMIZED`: a table of delays (RocketMQ's delay levels by default).
        Customized = 1 => "CUSTOMIZED",
    }
    default Customized;
}

/// `ExponentialRetryPolicy`: delays in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialRetryPolicy {
    /// `initial` delay (default 5 s).
    #[serde(default = "default_initial", deserialize_with = "lenient::i64")]
    pub initial: i64,
    /// `max` delay (default 2 h).
    #[serde(default = "default_max", deserialize_with = "lenient::i64")]
    pub max: i64,
    /// `multiplier` (default 2).
    #[serde(default = "default_multiplier", deserialize_with = "lenient::i64")]
    pub multiplier: i64,
}

fn default_initial() -> i64 {
    5_000
}
fn default_max() -> i64 {
    2 * 60 * 60 * 1000
}
fn default_multiplier() -> i64 {
    2
}

/// `CustomizedRetryPolicy`: the delay, in ms, of each retry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomizedRetryPolicy {
    /// `next`: the delays, retry by retry.
    #[serde(default)]
    pub next: Vec<i64>,
}

/// `GroupRetryPolicy` (5.x).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRetryPolicy {
    /// `customizedRetryPolicy`, used with [`GroupRetryPolicyType::Customized`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_retry_policy: Option<CustomizedRetryPolicy>,
    /// `exponentialRetryPolicy`, used with [`GroupRetryPolicyType::Exponential`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_retry_policy: Option<ExponentialRetryPolicy>,
    /// `type`.
    #[serde(rename = "type", default)]
    pub policy_type: GroupRetryPolicyType,
}

/// One subscription of a group's static subscription set (`SimpleSubscriptionData`, 5.x).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimpleSubscriptionData {
    /// `expression`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub expression: String,
    /// `expressionType`: `TAG` or `SQL92`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub expression_type: String,
    /// `topic`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub topic: String,
    /// `version`.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub version: i64,
}

fn yes() -> bool {
    true
}
fn one_i32() -> i32 {
    1
}
fn one_i64() -> i64 {
    1
}
fn sixteen() -> i32 {
    16
}
fn fifteen() -> i32 {
    15
}

/// A consumer group's configuration (`SubscriptionGroupConfig`), fields in fastjson's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    /// `attributes` (5.x).
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub attributes: BTreeMap<String, String>,
    /// `brokerId`: which broker of the set serves the group (0 = master).
    #[serde(default, deserialize_with = "lenient::i64")]
    pub broker_id: i64,
    /// `consumeBroadcastEnable`.
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub consume_broadcast_enable: bool,
    /// `consumeEnable`: false stops the group's pulls.
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub consume_enable: bool,
    /// `consumeFromMinEnable`: a new group may start at offset 0.
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub consume_from_min_enable: bool,
    /// `consumeMessageOrderly`.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub consume_message_orderly: bool,
    /// `consumeTimeoutMinute` (5.x pop).
    #[serde(default = "fifteen", deserialize_with = "lenient::i32")]
    pub consume_timeout_minute: i32,
    /// `groupName`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub group_name: String,
    /// `groupRetryPolicy` (5.x).
    #[serde(default)]
    pub group_retry_policy: GroupRetryPolicy,
    /// `groupSysFlag`.
    #[serde(default, deserialize_with = "lenient::i32")]
    pub group_sys_flag: i32,
    /// `notifyConsumerIdsChangedEnable`: send `NOTIFY_CONSUMER_IDS_CHANGED` on membership
    /// changes.
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub notify_consumer_ids_changed_enable: bool,
    /// `retryMaxTimes`: deliveries before the dead-letter queue.
    #[serde(default = "sixteen", deserialize_with = "lenient::i32")]
    pub retry_max_times: i32,
    /// `retryQueueNums`: queues of the group's retry topic.
    #[serde(default = "one_i32", deserialize_with = "lenient::i32")]
    pub retry_queue_nums: i32,
    /// `subscriptionDataSet` (5.x static subscriptions; null when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_data_set: Option<Vec<SimpleSubscriptionData>>,
    /// `whichBrokerWhenConsumeSlowly`: the broker id to redirect a slow group to.
    #[serde(default = "one_i64", deserialize_with = "lenient::i64")]
    pub which_broker_when_consume_slowly: i64,
}

impl Default for SubscriptionGroupConfig {
    /// Java's defaults, with an empty group name.
    fn default() -> Self {
        SubscriptionGroupConfig {
            attributes: BTreeMap::new(),
            broker_id: 0,
            consume_broadcast_enable: true,
            consume_enable: true,
            consume_from_min_enable: true,
            consume_message_orderly: false,
            consume_timeout_minute: 15,
            group_name: String::new(),
            group_retry_policy: GroupRetryPolicy::default(),
            group_sys_flag: 0,
            notify_consumer_ids_changed_enable: true,
            retry_max_times: 16,
            retry_queue_nums: 1,
            subscription_data_set: None,
            which_broker_when_consume_slowly: 1,
        }
    }
}

impl SubscriptionGroupConfig {
    /// A group with Java's defaults.
    pub fn new(group_name: impl Into<String>) -> Self {
        SubscriptionGroupConfig {
            group_name: group_name.into(),
            ..SubscriptionGroupConfig::default()
        }
    }
}

/// All subscription groups of a broker (`SubscriptionGroupWrapper`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupWrapper {
    /// `dataVersion`: `{"counter":…,"stateVersion":…,"timestamp":…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_version: Option<DataVersion>,
    /// `forbiddenTable` (5.x): group → topic → forbidden bits.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i32>>,
    /// `subscriptionGroupTable`: group name → configuration.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

json_body!(SubscriptionGroupConfig, "subscription group config");
json_body!(SubscriptionGroupWrapper, "subscription group table");

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA_GROUP: &[u8] = br#"{"attributes":{},"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,"groupName":"CG","groupRetryPolicy":{"type":"CUSTOMIZED"},"groupSysFlag":0,"notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}"#;

    #[test]
    fn java_defaults_byte_for_byte() {
        let config = SubscriptionGroupConfig::decode(JAVA_GROUP).unwrap();
        assert_eq!(config, SubscriptionGroupConfig::new("CG"));
        assert_eq!(config.encode(), JAVA_GROUP.to_vec());
    }

    #[test]
    fn old_bodies_take_defaults() {
        let config = SubscriptionGroupConfig::decode(
            br#"{"groupName":"CG","retryMaxTimes":"3","consumeMessageOrderly":1}"#,
        )
        .unwrap();
        assert_eq!(config.retry_max_times, 3);
        assert!(config.consume_message_orderly);
        assert!(config.consume_enable);
        assert_eq!(config.which_broker_when_consume_slowly, 1);
    }

    #[test]
    fn wrapper_round_trip() {
        let mut wrapper = SubscriptionGroupWrapper::default();
        let mut group = SubscriptionGroupConfig::new("CG");
        group.group_retry_policy = GroupRetryPolicy {
            customized_retry_policy: None,
            exponential_retry_policy: Some(ExponentialRetryPolicy {
                initial: 1000,
                max: 60_000,
                multiplier: 3,
            }),
            policy_type: GroupRetryPolicyType::Exponential,
        };
        group.subscription_data_set = Some(vec![SimpleSubscriptionData {
            expression: "*".into(),
            expression_type: "TAG".into(),
            topic: "T".into(),
            version: 1,
        }]);
        wrapper.subscription_group_table.insert("CG".into(), group);
        wrapper
            .forbidden_table
            .insert("CG".into(), BTreeMap::from([("T".into(), 1)]));
        wrapper.data_version = Some(DataVersion {
            counter: 1,
            state_version: 0,
            timestamp: 2,
        });
        let decoded = SubscriptionGroupWrapper::decode(&wrapper.encode()).unwrap();
        assert_eq!(decoded, wrapper);
        assert!(SubscriptionGroupWrapper::decode(br#"{"subscriptionGroupTable":[]}"#).is_err());
    }
}
