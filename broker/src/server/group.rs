//! The subscription group manager of one shard: per consumer group, whether it may consume,
//! its retry settings and its broadcast flag (`SubscriptionGroupConfig`).
//!
//! Lives on its shard's thread. Groups are created by admin requests or, when
//! `auto_create_subscription_group` is on, on first use.

use std::collections::BTreeMap;

pub use ringmq_wire::body::subscription::SubscriptionGroupConfig;

use crate::server::topic::{DataVersion, bump};

/// Most groups one shard holds.
pub const GROUPS_MAX: usize = 100_000;

/// Why a group operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Unknown group and auto-creation is off.
    #[error("subscription group [{group}] does not exist, apply first please!")]
    NotExist {
        /// The group.
        group: String,
    },
    /// Empty or oversized group name.
    #[error("group name {group:?} is invalid: use 1-255 characters")]
    InvalidName {
        /// The group, truncated.
        group: String,
    },
    /// The table is full.
    #[error("too many subscription groups on this broker (limit {max})")]
    TooManyGroups {
        /// The limit.
        max: usize,
    },
}

/// Every subscription group of one shard.
#[derive(Debug)]
pub struct SubscriptionGroupManager {
    groups: BTreeMap<String, SubscriptionGroupConfig>,
    auto_create: bool,
    data_version: DataVersion,
}

impl SubscriptionGroupManager {
    /// An empty manager.
    pub fn new(auto_create: bool) -> Self {
        SubscriptionGroupManager {
            groups: BTreeMap::new(),
            auto_create,
            data_version: DataVersion::default(),
        }
    }

    /// A group's settings.
    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.groups.get(group)
    }

    /// The group's settings, creating them with defaults when auto-creation is on.
    pub fn find_or_create(
        &mut self,
        group: &str,
        now_ms: u64,
    ) -> Result<SubscriptionGroupConfig, GroupError> {
        if let Some(config) = self.groups.get(group) {
            return Ok(config.clone());
        }
        if !self.auto_create {
            return Err(GroupError::NotExist {
                group: group.to_owned(),
            });
        }
        let config = SubscriptionGroupConfig::new(group);
        self.update(config.clone(), now_ms)?;
        Ok(config)
    }

    /// Creates or replaces a group (admin `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP`).
    pub fn update(
        &mut self,
        config: SubscriptionGroupConfig,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        if config.group_name.is_empty() || config.group_name.len() > 255 {
            return Err(GroupError::InvalidName {
                group: config.group_name.chars().take(64).collect(),
            });
        }
        if !self.groups.contains_key(&config.group_name) && self.groups.len() >= GROUPS_MAX {
            return Err(GroupError::TooManyGroups { max: GROUPS_MAX });
        }
        tracing::info!(target: "ringmq::server::group", group = %config.group_name, "subscription group created or updated");
        self.groups.insert(config.group_name.clone(), config);
        bump(&mut self.data_version, now_ms);
        Ok(())
    }

    /// Deletes a group (admin `DELETE_SUBSCRIPTIONGROUP`). Returns whether it existed.
    pub fn delete(&mut self, group: &str, now_ms: u64) -> bool {
        let existed = self.groups.remove(group).is_some();
        if existed {
            bump(&mut self.data_version, now_ms);
        }
        existed
    }

    /// Every group, by name.
    pub fn all(&self) -> impl Iterator<Item = &SubscriptionGroupConfig> {
        self.groups.values()
    }

    /// The table's data version.
    pub fn data_version(&self) -> DataVersion {
        self.data_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_group_is_auto_created_with_defaults() {
        let mut manager = SubscriptionGroupManager::new(true);
        let config = manager.find_or_create("G", 1).expect("auto-created");
        assert_eq!(config.retry_max_times, 16);
        assert_eq!(config.retry_queue_nums, 1);
        assert!(config.consume_enable);
        assert_eq!(manager.data_version().counter, 1);
        manager.find_or_create("G", 2).expect("exists");
        assert_eq!(manager.data_version().counter, 1);
    }

    #[test]
    fn unknown_group_is_refused_without_auto_create() {
        let mut manager = SubscriptionGroupManager::new(false);
        assert_eq!(
            manager.find_or_create("G", 1),
            Err(GroupError::NotExist { group: "G".into() })
        );
    }

    #[test]
    fn update_and_delete() {
        let mut manager = SubscriptionGroupManager::new(false);
        let mut config = SubscriptionGroupConfig::new("G");
        config.consume_enable = false;
        manager.update(config, 1).expect("created");
        assert!(manager.get("G").is_some_and(|g| !g.consume_enable));
        assert!(manager.delete("G", 2));
        assert!(!manager.delete("G", 3));
        assert!(matches!(
            manager.update(SubscriptionGroupConfig::new(""), 4),
            Err(GroupError::InvalidName { .. })
        ));
    }
}
