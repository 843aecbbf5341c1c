//! The topic config manager of one shard: every topic the shard serves, with its queue
//! counts, permission and order flag, and the data version the NameServer registration
//! carries.
//!
//! Lives on its shard's thread (no locks). A topic created through the admin fan-out is
//! applied to every shard's manager separately; each bumps its own data version.

use std::collections::BTreeMap;

pub use ringmq_wire::body::register::DataVersion;
pub use ringmq_wire::body::topic::{TopicConfig, TopicFilterType, perm};

/// Names of RocketMQ's system topics and prefixes (`TopicValidator`, `MixAll`).
pub mod system {
    /// Template for auto-created topics.
    pub const AUTO_CREATE_TOPIC: &str = "TBW102";
    /// Delayed messages wait here, one queue per delay level.
    pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
    /// Transactional half (prepared) messages.
    pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
    /// Commit/rollback op log of half messages.
    pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
    /// Half messages that exceeded their check limit.
    pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
    /// Self-test topic.
    pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
    /// Offset-moved events.
    pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";
    /// Prefix of a group's retry topic.
    pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
    /// Prefix of a group's dead-letter topic.
    pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
    /// Queues of `SCHEDULE_TOPIC_XXXX`: one per delay level.
    pub const SCHEDULE_QUEUE_NUMS: i32 = 18;

    /// Topics producers may not send to directly.
    pub fn is_not_allowed_send_topic(topic: &str) -> bool {
        matches!(
            topic,
            SCHEDULE_TOPIC
                | TRANS_HALF_TOPIC
                | TRANS_OP_HALF_TOPIC
                | TRANS_CHECK_MAX_TIME_TOPIC
                | SELF_TEST_TOPIC
                | OFFSET_MOVED_EVENT
        )
    }

    /// `%RETRY%<group>`.
    pub fn retry_topic(group: &str) -> String {
        format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
    }

    /// `%DLQ%<group>`.
    pub fn dlq_topic(group: &str) -> String {
        format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
    }
}

/// Longest topic name (RocketMQ's `TopicValidator.TOPIC_MAX_LENGTH`).
pub const TOPIC_NAME_BYTES_MAX: usize = 127;

/// Most queues one topic may have on one shard: bounds per-topic tables, and RocketMQ's
/// admin tools never create more.
pub const TOPIC_QUEUE_NUMS_MAX: i32 = 1024;

/// Most topics one shard holds: bounds the table that every registration sends in full.
pub const TOPICS_MAX: usize = 100_000;

/// Why a topic operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The name is empty, too long or has characters outside `[%|a-zA-Z0-9_-]`.
    #[error("topic name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name, truncated to 64 bytes.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The topic does not exist and cannot be auto-created.
    #[error("topic[{topic}] not exist, apply first please!")]
    NotExist {
        /// The topic.
        topic: String,
    },
    /// Queue counts out of range.
    #[error("topic {topic}: queue nums read={read} write={write} must be 1..={max}")]
    InvalidQueueNums {
        /// The topic.
        topic: String,
        /// Requested read queues.
        read: i32,
        /// Requested write queues.
        write: i32,
        /// The limit.
        max: i32,
    },
    /// Permission not among 2/4/6 (plus the inherit bit on the template).
    #[error("topic {topic}: permission {perm} is invalid, use 2 (write), 4 (read) or 6 (both)")]
    InvalidPerm {
        /// The topic.
        topic: String,
        /// Requested permission.
        perm: i32,
    },
    /// The shard's topic table is full.
    #[error("too many topics on this broker (limit {max})")]
    TooManyTopics {
        /// The limit.
        max: usize,
    },
    /// System topics cannot be deleted or overwritten by admin requests.
    #[error("topic {topic} is a system topic and cannot be changed")]
    SystemTopic {
        /// The topic.
        topic: String,
    },
}

/// Checks a topic name as RocketMQ's `TopicValidator.validateTopic` does.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let reason = if name.trim().is_empty() {
        Some("it is blank")
    } else if name.len() > TOPIC_NAME_BYTES_MAX {
        Some("it is longer than 127 characters")
    } else if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'%' | b'|' | b'_' | b'-'))
    {
        Some("only letters, digits, '%', '|', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => {
            let mut end = name.len().min(64);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            Err(TopicError::InvalidName {
                name: name[..end].to_owned(),
                reason,
            })
        }
    }
}

/// The settings the manager needs from the broker config.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    /// Auto-create topics from `TBW102` on send.
    pub auto_create_topic: bool,
    /// Queues of `TBW102` (and so of auto-created topics).
    pub default_topic_queue_nums: i32,
    /// The cluster name: RocketMQ registers a topic of that name (1 queue) so that
    /// `updateTopic -c <cluster>` style tools can find the cluster's brokers.
    pub cluster_name: String,
    /// This shard's broker name, registered as a topic too.
    pub broker_name: String,
}

/// Every topic of one shard.
#[derive(Debug)]
pub struct TopicConfigManager {
    topics: BTreeMap<String, TopicConfig>,
    data_version: DataVersion,
    settings: TopicSettings,
}

impl TopicConfigManager {
    /// A manager holding RocketMQ's system topics (and `TBW102` when auto-creation is on).
    pub fn new(settings: TopicSettings, now_ms: u64) -> Self {
        let mut topics = BTreeMap::new();
        let rw = perm::READ_WRITE;
        let mut add = |config: TopicConfig| {
            topics.insert(config.topic_name.clone(), config);
        };
        if settings.auto_create_topic {
            add(with_perm(
                TopicConfig::new(system::AUTO_CREATE_TOPIC, settings.default_topic_queue_nums),
                rw | perm::INHERIT,
            ));
        }
        add(TopicConfig::new(system::SELF_TEST_TOPIC, 1));
        add(TopicConfig::new(
            system::SCHEDULE_TOPIC,
            system::SCHEDULE_QUEUE_NUMS,
        ));
        add(TopicConfig::new(system::TRANS_HALF_TOPIC, 1));
        add(TopicConfig::new(system::TRANS_OP_HALF_TOPIC, 1));
        add(TopicConfig::new(system::OFFSET_MOVED_EVENT, 1));
        add(with_perm(
            TopicConfig::new(settings.cluster_name.clone(), 16),
            rw,
        ));
        add(with_perm(
            TopicConfig::new(settings.broker_name.clone(), 1),
            rw,
        ));
        let mut data_version = DataVersion::default();
        bump(&mut data_version, now_ms);
        TopicConfigManager {
            topics,
            data_version,
            settings,
        }
    }

    /// A topic's config.
    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.topics.get(topic)
    }

    /// Every topic, by name.
    pub fn all(&self) -> impl Iterator<Item = &TopicConfig> {
        self.topics.values()
    }

    /// Number of topics.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Whether there are no topics (never true: system topics always exist).
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// The current data version.
    pub fn data_version(&self) -> DataVersion {
        self.data_version
    }

    /// Moves the data version without changing the table: what the broker registers changed
    /// otherwise (its permission), and NameServers take a registration only with a new
    /// version.
    pub fn touch(&mut self, now_ms: u64) {
        bump(&mut self.data_version, now_ms);
    }

    /// Whether topics are auto-created on send.
    pub fn auto_create_topic(&self) -> bool {
        self.settings.auto_create_topic
    }

    /// Creates or replaces a topic (admin `UPDATE_AND_CREATE_TOPIC`). Returns whether the
    /// table changed.
    pub fn create_or_update(
        &mut self,
        config: TopicConfig,
        now_ms: u64,
    ) -> Result<bool, TopicError> {
        validate_topic_name(&config.topic_name)?;
        check_queue_nums(&config)?;
        if !matches!(config.perm & !perm::INHERIT, 2 | 4 | 6) {
            return Err(TopicError::InvalidPerm {
                topic: config.topic_name.clone(),
                perm: config.perm,
            });
        }
        if self.topics.get(&config.topic_name) == Some(&config) {
            return Ok(false);
        }
        self.insert(config, now_ms)?;
        Ok(true)
    }

    fn insert(&mut self, config: TopicConfig, now_ms: u64) -> Result<(), TopicError> {
        if !self.topics.contains_key(&config.topic_name) && self.topics.len() >= TOPICS_MAX {
            return Err(TopicError::TooManyTopics { max: TOPICS_MAX });
        }
        tracing::info!(target: "ringmq::server::topic", topic = %config.topic_name,
            read = config.read_queue_nums, write = config.write_queue_nums, perm = config.perm,
            "topic created or updated");
        self.topics.insert(config.topic_name.clone(), config);
        bump(&mut self.data_version, now_ms);
        Ok(())
    }

    /// Deletes a topic (admin `DELETE_TOPIC_IN_BROKER`). Returns whether it existed.
    pub fn delete(&mut self, topic: &str, now_ms: u64) -> Result<bool, TopicError> {
        if topic == system::AUTO_CREATE_TOPIC
            || system::is_not_allowed_send_topic(topic)
            || topic == self.settings.cluster_name
            || topic == self.settings.broker_name
        {
            return Err(TopicError::SystemTopic {
                topic: topic.to_owned(),
            });
        }
        let existed = self.topics.remove(topic).is_some();
        if existed {
            bump(&mut self.data_version, now_ms);
            tracing::info!(target: "ringmq::server::topic", topic, "topic deleted");
        }
        Ok(existed)
    }

    /// The topic a send goes to, auto-creating it from `default_topic` when that template
    /// exists and is inheritable (RocketMQ's `createTopicInSendMessageMethod`). Returns the
    /// config and whether it was just created (then the caller registers with the
    /// NameServers at once).
    pub fn find_or_create_for_send(
        &mut self,
        topic: &str,
        default_topic: &str,
        client_queue_nums: i32,
        topic_sys_flag: i32,
        now_ms: u64,
    ) -> Result<(TopicConfig, bool), TopicError> {
        if let Some(config) = self.topics.get(topic) {
            return Ok((config.clone(), false));
        }
        validate_topic_name(topic)?;
        let not_exist = || TopicError::NotExist {
            topic: topic.to_owned(),
        };
        let template = self.topics.get(default_topic).ok_or_else(not_exist)?;
        if default_topic != system::AUTO_CREATE_TOPIC
            || !self.settings.auto_create_topic
            || template.perm & perm::INHERIT == 0
        {
            return Err(not_exist());
        }
        let queues = client_queue_nums.max(1).min(template.write_queue_nums);
        let mut config = with_perm(
            TopicConfig::new(topic, queues),
            template.perm & !perm::INHERIT,
        );
        config.topic_sys_flag = topic_sys_flag;
        self.insert(config.clone(), now_ms)?;
        Ok((config, true))
    }

    /// The retry topic of a consumer group, created on its first heartbeat
    /// (`createTopicInSendMessageBackMethod`): `retry_queue_nums` queues, read/write.
    /// Returns the config and whether it was created.
    pub fn find_or_create_retry_topic(
        &mut self,
        group: &str,
        retry_queue_nums: i32,
        now_ms: u64,
    ) -> Result<(TopicConfig, bool), TopicError> {
        self.find_or_create_internal(system::retry_topic(group), retry_queue_nums, now_ms)
    }

    /// The dead-letter topic of a consumer group: 1 queue, read/write (RocketMQ ≥ 4.9.2).
    pub fn find_or_create_dlq_topic(
        &mut self,
        group: &str,
        now_ms: u64,
    ) -> Result<(TopicConfig, bool), TopicError> {
        self.find_or_create_internal(system::dlq_topic(group), 1, now_ms)
    }

    fn find_or_create_internal(
        &mut self,
        topic: String,
        queues: i32,
        now_ms: u64,
    ) -> Result<(TopicConfig, bool), TopicError> {
        if let Some(config) = self.topics.get(&topic) {
            return Ok((config.clone(), false));
        }
        validate_topic_name(&topic)?;
        let config = TopicConfig::new(topic, queues.clamp(1, TOPIC_QUEUE_NUMS_MAX));
        self.insert(config.clone(), now_ms)?;
        Ok((config, true))
    }
}

/// Builder-style permission setter for a wire [`TopicConfig`].
pub fn with_perm(mut config: TopicConfig, perm: i32) -> TopicConfig {
    config.perm = perm;
    config
}

/// Records one change of a data version at `now_ms`.
pub fn bump(version: &mut DataVersion, now_ms: u64) {
    version.timestamp = i64::try_from(now_ms).unwrap_or(i64::MAX);
    version.counter += 1;
}

fn check_queue_nums(config: &TopicConfig) -> Result<(), TopicError> {
    let range = 1..=TOPIC_QUEUE_NUMS_MAX;
    if range.contains(&config.read_queue_nums) && range.contains(&config.write_queue_nums) {
        Ok(())
    } else {
        Err(TopicError::InvalidQueueNums {
            topic: config.topic_name.clone(),
            read: config.read_queue_nums,
            write: config.write_queue_nums,
            max: TOPIC_QUEUE_NUMS_MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auto_create_topic: bool) -> TopicSettings {
        TopicSettings {
            auto_create_topic,
            default_topic_queue_nums: 8,
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a-s0".into(),
        }
    }

    #[test]
    fn system_topics_exist_from_the_start() {
        let manager = TopicConfigManager::new(settings(true), 1);
        for topic in [
            "TBW102",
            "SCHEDULE_TOPIC_XXXX",
            "RMQ_SYS_TRANS_HALF_TOPIC",
            "RMQ_SYS_TRANS_OP_HALF_TOPIC",
            "SELF_TEST_TOPIC",
            "DefaultCluster",
            "broker-a-s0",
        ] {
            assert!(manager.get(topic).is_some(), "{topic} missing");
        }
        assert_eq!(manager.get("TBW102").map(|t| t.perm), Some(7));
        assert_eq!(
            manager
                .get("SCHEDULE_TOPIC_XXXX")
                .map(|t| t.read_queue_nums),
            Some(18)
        );
    }

    #[test]
    fn template_topic_is_absent_when_auto_create_is_off() {
        let mut manager = TopicConfigManager::new(settings(false), 1);
        assert!(manager.get("TBW102").is_none());
        assert_eq!(
            manager.find_or_create_for_send("T1", "TBW102", 4, 0, 2),
            Err(TopicError::NotExist { topic: "T1".into() })
        );
    }

    #[test]
    fn auto_create_takes_min_of_client_and_template_queues_and_drops_inherit() {
        let mut manager = TopicConfigManager::new(settings(true), 1);
        let before = manager.data_version();
        let (config, created) = manager
            .find_or_create_for_send("Orders", "TBW102", 4, 0, 2)
            .expect("auto-created");
        assert!(created);
        assert_eq!((config.read_queue_nums, config.write_queue_nums), (4, 4));
        assert_eq!(config.perm, 6);
        assert_eq!(manager.data_version().counter, before.counter + 1);
        let (_, again) = manager
            .find_or_create_for_send("Orders", "TBW102", 4, 0, 3)
            .expect("exists");
        assert!(!again);
        let (big, _) = manager
            .find_or_create_for_send("Big", "TBW102", 64, 0, 4)
            .expect("created");
        assert_eq!(big.write_queue_nums, 8);
    }

    #[test]
    fn auto_create_from_a_non_template_topic_is_refused() {
        let mut manager = TopicConfigManager::new(settings(true), 1);
        manager
            .create_or_update(TopicConfig::new("Plain", 4), 2)
            .expect("created");
        assert!(matches!(
            manager.find_or_create_for_send("X", "Plain", 4, 0, 3),
            Err(TopicError::NotExist { .. })
        ));
    }

    #[test]
    fn create_or_update_bumps_version_only_on_change() {
        let mut manager = TopicConfigManager::new(settings(false), 1);
        let v0 = manager.data_version();
        assert_eq!(
            manager.create_or_update(TopicConfig::new("A", 8), 5),
            Ok(true)
        );
        let v1 = manager.data_version();
        assert_eq!(v1.counter, v0.counter + 1);
        assert_eq!(v1.timestamp, 5);
        assert_eq!(
            manager.create_or_update(TopicConfig::new("A", 8), 6),
            Ok(false)
        );
        assert_eq!(manager.data_version(), v1);
        let mut order = TopicConfig::new("A", 8);
        order.order = true;
        assert_eq!(manager.create_or_update(order, 7), Ok(true));
        assert!(manager.get("A").is_some_and(|t| t.order));
    }

    #[test]
    fn invalid_topics_are_refused_with_reasons() {
        let mut manager = TopicConfigManager::new(settings(false), 1);
        assert!(matches!(
            manager.create_or_update(TopicConfig::new("bad topic", 8), 2),
            Err(TopicError::InvalidName { .. })
        ));
        assert!(matches!(
            manager.create_or_update(TopicConfig::new("x".repeat(128), 8), 2),
            Err(TopicError::InvalidName { .. })
        ));
        assert!(matches!(
            manager.create_or_update(TopicConfig::new("Q", 0), 2),
            Err(TopicError::InvalidQueueNums { .. })
        ));
        assert!(matches!(
            manager.create_or_update(with_perm(TopicConfig::new("P", 1), 1), 2),
            Err(TopicError::InvalidPerm { .. })
        ));
        validate_topic_name("%RETRY%group-1|x").expect("retry names are valid");
    }

    #[test]
    fn delete_removes_user_topics_but_not_system_ones() {
        let mut manager = TopicConfigManager::new(settings(true), 1);
        manager
            .create_or_update(TopicConfig::new("A", 2), 2)
            .expect("created");
        let v = manager.data_version();
        assert_eq!(manager.delete("A", 3), Ok(true));
        assert!(manager.data_version().counter > v.counter);
        assert_eq!(manager.delete("A", 4), Ok(false));
        assert!(matches!(
            manager.delete("TBW102", 5),
            Err(TopicError::SystemTopic { .. })
        ));
        assert!(matches!(
            manager.delete("SCHEDULE_TOPIC_XXXX", 5),
            Err(TopicError::SystemTopic { .. })
        ));
    }

    #[test]
    fn retry_and_dlq_topics_are_created_once() {
        let mut manager = TopicConfigManager::new(settings(false), 1);
        let (retry, created) = manager
            .find_or_create_retry_topic("G1", 1, 2)
            .expect("retry");
        assert!(created);
        assert_eq!(retry.topic_name, "%RETRY%G1");
        assert_eq!(retry.perm, 6);
        assert!(
            !manager
                .find_or_create_retry_topic("G1", 1, 3)
                .expect("again")
                .1
        );
        let (dlq, _) = manager.find_or_create_dlq_topic("G1", 4).expect("dlq");
        assert_eq!(
            (dlq.topic_name.as_str(), dlq.write_queue_nums),
            ("%DLQ%G1", 1)
        );
    }
}
