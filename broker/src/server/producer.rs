//! The producer manager of one shard: which connections belong to which producer group,
//! from `HEART_BEAT`s. Used to list producers and, for transactions, to find a live
//! producer of a group to ask about a half message.
//!
//! Lives on its shard's thread. A producer silent for [`CLIENT_EXPIRED_MS`] is dropped.

use std::collections::{BTreeMap, HashMap};

use crate::server::{ClientInfo, ConnId};

/// A client without a heartbeat for this long is considered gone (RocketMQ's
/// `channelExpiredTimeout`, 120 s).
pub const CLIENT_EXPIRED_MS: u64 = 120_000;

/// Most producer groups tracked per shard.
pub const PRODUCER_GROUPS_MAX: usize = 100_000;

/// Most connections tracked per producer group.
pub const PRODUCERS_PER_GROUP_MAX: usize = 10_000;

/// Producer groups and their live connections.
#[derive(Debug, Default)]
pub struct ProducerManager {
    groups: BTreeMap<String, HashMap<ConnId, ClientInfo>>,
}

impl ProducerManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a heartbeat of a producer of `group`. Returns false (and records nothing)
    /// when a table bound is reached.
    pub fn register(&mut self, group: &str, client: ClientInfo) -> bool {
        if !self.groups.contains_key(group) && self.groups.len() >= PRODUCER_GROUPS_MAX {
            return false;
        }
        let members = self.groups.entry(group.to_owned()).or_default();
        if !members.contains_key(&client.conn_id) && members.len() >= PRODUCERS_PER_GROUP_MAX {
            return false;
        }
        members.insert(client.conn_id, client);
        true
    }

    /// Removes a producer by client id (`UNREGISTER_CLIENT`).
    pub fn unregister(&mut self, group: &str, client_id: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.retain(|_, c| c.client_id != client_id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// Removes everything registered over a closed connection.
    pub fn connection_closed(&mut self, conn: ConnId) {
        self.groups.retain(|_, members| {
            members.remove(&conn);
            !members.is_empty()
        });
    }

    /// Drops producers silent for [`CLIENT_EXPIRED_MS`]; returns how many.
    pub fn scan_expired(&mut self, now_ms: u64) -> usize {
        let mut dropped = 0;
        self.groups.retain(|group, members| {
            members.retain(|_, c| {
                let alive = now_ms.saturating_sub(c.last_update_ms) <= CLIENT_EXPIRED_MS;
                if !alive {
                    dropped += 1;
                    tracing::info!(target: "ringmq::server::producer", group, client = %c.client_id, "producer expired");
                }
                alive
            });
            !members.is_empty()
        });
        dropped
    }

    /// The live producers of a group.
    pub fn producers(&self, group: &str) -> Vec<&ClientInfo> {
        let mut list: Vec<_> = self
            .groups
            .get(group)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    /// Every producer group with at least one live producer.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(conn: u64, id: &str, now: u64) -> ClientInfo {
        ClientInfo::new(ConnId(conn), id, now)
    }

    #[test]
    fn producers_are_listed_until_unregistered_closed_or_expired() {
        let mut manager = ProducerManager::new();
        assert!(manager.register("P", client(1, "c1", 0)));
        assert!(manager.register("P", client(2, "c2", 100_000)));
        assert_eq!(manager.producers("P").len(), 2);
        manager.unregister("P", "c1");
        assert_eq!(manager.producers("P")[0].client_id, "c2");
        assert!(manager.register("P", client(3, "c3", 0)));
        assert_eq!(manager.scan_expired(130_000), 1);
        assert_eq!(manager.producers("P").len(), 1);
        manager.connection_closed(ConnId(2));
        assert!(manager.producers("P").is_empty());
        assert_eq!(manager.groups().count(), 0);
    }
}
