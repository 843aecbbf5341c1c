//! The consumer manager of one shard: consumer group → live clients, from `HEART_BEAT`s,
//! with the subscriptions each group declared.
//!
//! Lives on its shard's thread. A client is live from its heartbeat until it unregisters
//! (`UNREGISTER_CLIENT`), its connection closes, or it stays silent for
//! [`CLIENT_EXPIRED_MS`]. Each change of a group's membership is reported to the caller as
//! an [`IdsChanged`] event, so that `NOTIFY_CONSUMER_IDS_CHANGED` (40) reaches the group's
//! remaining clients and they rebalance at once (stock clients need exactly the live members
//! of *that* group, see rocketmq-facts §B.8).

use std::collections::{BTreeMap, HashMap};

use crate::server::{ClientInfo, ConnId};

pub use crate::server::producer::CLIENT_EXPIRED_MS;

/// Most consumer groups tracked per shard.
pub const CONSUMER_GROUPS_MAX: usize = 100_000;

/// Most clients per consumer group.
pub const CONSUMERS_PER_GROUP_MAX: usize = 10_000;

/// Most subscriptions per consumer group.
pub const SUBSCRIPTIONS_PER_GROUP_MAX: usize = 10_000;

pub use ringmq_wire::body::heartbeat::{
    ConsumeFromWhere, ConsumeType, MessageModel, SUB_ALL, SubscriptionData,
};

/// Whether a subscription takes every message (`*` or empty).
pub fn matches_all(sub: &SubscriptionData) -> bool {
    sub.tags_set.is_empty() || sub.sub_string.trim() == SUB_ALL || sub.sub_string.trim().is_empty()
}

/// First-stage tag filter, on a ConsumeQueue entry's tag code (RocketMQ compares the
/// code's `int` value with the subscription's code set).
pub fn matches_code(sub: &SubscriptionData, code: i64) -> bool {
    matches_all(sub) || sub.code_set.contains(&(code as i32))
}

/// Second-stage tag filter, on the stored record's actual tags (hash codes can collide).
pub fn matches_tags(sub: &SubscriptionData, tags: Option<&str>) -> bool {
    if matches_all(sub) {
        return true;
    }
    match tags {
        None => false,
        Some(tags) => tags
            .split("||")
            .any(|t| sub.tags_set.iter().any(|want| want == t.trim())),
    }
}

/// A heartbeat's consumer entry, converted from the wire body.
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeat {
    /// The group.
    pub group: String,
    /// Pull or push.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where a group without offsets starts.
    pub consume_from_where: ConsumeFromWhere,
    /// The subscriptions.
    pub subscriptions: Vec<SubscriptionData>,
}

/// A consumer group whose set of client ids changed; its remaining clients must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsChanged {
    /// The group.
    pub group: String,
    /// Connections of the group's remaining clients.
    pub notify: Vec<ConnId>,
}

/// One consumer group's live state (`ConsumerGroupInfo`).
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupInfo {
    /// Pull or push.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// As sent by the last heartbeat.
    pub consume_from_where: ConsumeFromWhere,
    /// Topic → subscription, from the latest heartbeats.
    pub subscriptions: BTreeMap<String, SubscriptionData>,
    /// Connection → client.
    pub clients: HashMap<ConnId, ClientInfo>,
    /// Last time any subscription changed.
    pub last_update_ms: u64,
}

/// Why a heartbeat was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerError {
    /// A table bound was reached.
    #[error("too many {what} on this broker (limit {max})")]
    TooMany {
        /// What is full.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// Every consumer group with live clients on this shard.
#[derive(Debug, Default)]
pub struct ConsumerManager {
    groups: BTreeMap<String, ConsumerGroupInfo>,
}

impl ConsumerManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a consumer heartbeat. Returns an [`IdsChanged`] when the client is new to
    /// the group (the group's clients must rebalance).
    pub fn register(
        &mut self,
        heartbeat: ConsumerHeartbeat,
        client: ClientInfo,
    ) -> Result<Option<IdsChanged>, ConsumerError> {
        if !self.groups.contains_key(&heartbeat.group) && self.groups.len() >= CONSUMER_GROUPS_MAX {
            return Err(ConsumerError::TooMany {
                what: "consumer groups",
                max: CONSUMER_GROUPS_MAX,
            });
        }
        if heartbeat.subscriptions.len() > SUBSCRIPTIONS_PER_GROUP_MAX {
            return Err(ConsumerError::TooMany {
                what: "subscriptions in one group",
                max: SUBSCRIPTIONS_PER_GROUP_MAX,
            });
        }
        let now_ms = client.last_update_ms;
        let info = self.groups.entry(heartbeat.group.clone()).or_default();
        let is_new = !info.clients.contains_key(&client.conn_id);
        if is_new && info.clients.len() >= CONSUMERS_PER_GROUP_MAX {
            return Err(ConsumerError::TooMany {
                what: "consumers in one group",
                max: CONSUMERS_PER_GROUP_MAX,
            });
        }
        info.consume_type = heartbeat.consume_type;
        info.message_model = heartbeat.message_model;
        info.consume_from_where = heartbeat.consume_from_where;
        // RocketMQ's updateSubscription: the latest heartbeat's set wins; a subscription whose
        // version did not grow is kept as is.
        let mut next = BTreeMap::new();
        for sub in heartbeat.subscriptions {
            match info.subscriptions.get(&sub.topic) {
                Some(old)
                    if old.sub_version >= sub.sub_version && old.sub_string == sub.sub_string =>
                {
                    next.insert(sub.topic.clone(), old.clone());
                }
                _ => {
                    info.last_update_ms = now_ms;
                    next.insert(sub.topic.clone(), sub);
                }
            }
        }
        if next.len() != info.subscriptions.len() {
            info.last_update_ms = now_ms;
        }
        info.subscriptions = next;
        if is_new {
            tracing::info!(target: "ringmq::server::consumer", group = %heartbeat.group,
                client = %client.client_id, conn = client.conn_id.0, "consumer registered");
        }
        info.clients.insert(client.conn_id, client);
        Ok(is_new.then(|| Self::changed(&heartbeat.group, info)))
    }

    /// Removes a client by id (`UNREGISTER_CLIENT`).
    pub fn unregister(&mut self, group: &str, client_id: &str) -> Option<IdsChanged> {
        let info = self.groups.get_mut(group)?;
        let before = info.clients.len();
        info.clients.retain(|_, c| c.client_id != client_id);
        if info.clients.len() == before {
            return None;
        }
        tracing::info!(target: "ringmq::server::consumer", group, client = client_id, "consumer unregistered");
        let event = Self::changed(group, info);
        self.drop_if_empty(group);
        Some(event)
    }

    /// Removes every client registered over a closed connection.
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<IdsChanged> {
        let mut events = Vec::new();
        let mut empty = Vec::new();
        for (group, info) in &mut self.groups {
            if info.clients.remove(&conn).is_some() {
                events.push(Self::changed(group, info));
                if info.clients.is_empty() {
                    empty.push(group.clone());
                }
            }
        }
        for group in empty {
            self.groups.remove(&group);
        }
        events
    }

    /// Drops clients silent for [`CLIENT_EXPIRED_MS`].
    pub fn scan_expired(&mut self, now_ms: u64) -> Vec<IdsChanged> {
        let mut events = Vec::new();
        let mut empty = Vec::new();
        for (group, info) in &mut self.groups {
            let before = info.clients.len();
            info.clients.retain(|_, c| {
                let alive = now_ms.saturating_sub(c.last_update_ms) <= CLIENT_EXPIRED_MS;
                if !alive {
                    tracing::info!(target: "ringmq::server::consumer", group, client = %c.client_id, "consumer expired");
                }
                alive
            });
            if info.clients.len() != before {
                events.push(Self::changed(group, info));
            }
            if info.clients.is_empty() {
                empty.push(group.clone());
            }
        }
        for group in empty {
            self.groups.remove(&group);
        }
        events
    }

    /// The live client ids of a group, sorted (`GET_CONSUMER_LIST_BY_GROUP`).
    pub fn client_ids(&self, group: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .groups
            .get(group)
            .map(|info| info.clients.values().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }

    /// A group's state.
    pub fn group(&self, group: &str) -> Option<&ConsumerGroupInfo> {
        self.groups.get(group)
    }

    /// Every group with live clients.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &ConsumerGroupInfo)> {
        self.groups.iter().map(|(g, i)| (g.as_str(), i))
    }

    /// The subscription of `group` to `topic`, from heartbeats.
    pub fn subscription(&self, group: &str, topic: &str) -> Option<&SubscriptionData> {
        self.groups.get(group)?.subscriptions.get(topic)
    }

    fn changed(group: &str, info: &ConsumerGroupInfo) -> IdsChanged {
        let mut notify: Vec<ConnId> = info.clients.keys().copied().collect();
        notify.sort();
        IdsChanged {
            group: group.to_owned(),
            notify,
        }
    }

    fn drop_if_empty(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(|i| i.clients.is_empty()) {
            self.groups.remove(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(group: &str, topics: &[(&str, &str)]) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            group: group.into(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            subscriptions: topics
                .iter()
                .map(|(t, e)| SubscriptionData::tags(t, e, 1))
                .collect(),
        }
    }

    fn client(conn: u64, id: &str, now: u64) -> ClientInfo {
        ClientInfo::new(ConnId(conn), id, now)
    }

    #[test]
    fn consumer_list_holds_only_live_members_of_that_group() {
        let mut manager = ConsumerManager::new();
        let first = manager
            .register(heartbeat("G1", &[("T", "*")]), client(1, "c1", 0))
            .expect("registered");
        assert_eq!(
            first,
            Some(IdsChanged {
                group: "G1".into(),
                notify: vec![ConnId(1)]
            })
        );
        manager
            .register(heartbeat("G1", &[("T", "*")]), client(2, "c2", 0))
            .expect("registered");
        manager
            .register(heartbeat("G2", &[("T", "*")]), client(3, "c3", 0))
            .expect("registered");
        assert_eq!(manager.client_ids("G1"), vec!["c1", "c2"]);
        assert_eq!(manager.client_ids("G2"), vec!["c3"]);
        assert!(manager.client_ids("G3").is_empty());
    }

    #[test]
    fn repeated_heartbeat_is_not_an_ids_change() {
        let mut manager = ConsumerManager::new();
        manager
            .register(heartbeat("G", &[("T", "*")]), client(1, "c1", 0))
            .expect("registered");
        let again = manager
            .register(heartbeat("G", &[("T", "*")]), client(1, "c1", 10))
            .expect("registered");
        assert_eq!(again, None);
    }

    #[test]
    fn unregister_removes_the_client_and_notifies_the_rest() {
        let mut manager = ConsumerManager::new();
        for (conn, id) in [(1, "c1"), (2, "c2")] {
            manager
                .register(heartbeat("G", &[("T", "*")]), client(conn, id, 0))
                .expect("registered");
        }
        let event = manager.unregister("G", "c1").expect("changed");
        assert_eq!(event.notify, vec![ConnId(2)]);
        assert_eq!(manager.client_ids("G"), vec!["c2"]);
        assert_eq!(manager.unregister("G", "c1"), None);
        manager.unregister("G", "c2").expect("changed");
        assert!(manager.group("G").is_none());
    }

    #[test]
    fn closed_connection_removes_its_clients_from_every_group() {
        let mut manager = ConsumerManager::new();
        manager
            .register(heartbeat("G1", &[("T", "*")]), client(1, "c1", 0))
            .expect("registered");
        manager
            .register(heartbeat("G2", &[("T", "*")]), client(1, "c1", 0))
            .expect("registered");
        manager
            .register(heartbeat("G2", &[("T", "*")]), client(2, "c2", 0))
            .expect("registered");
        let events = manager.connection_closed(ConnId(1));
        assert_eq!(events.len(), 2);
        assert!(manager.client_ids("G1").is_empty());
        assert_eq!(manager.client_ids("G2"), vec!["c2"]);
    }

    #[test]
    fn silent_clients_expire_after_120_seconds() {
        let mut manager = ConsumerManager::new();
        manager
            .register(heartbeat("G", &[("T", "*")]), client(1, "old", 0))
            .expect("registered");
        manager
            .register(heartbeat("G", &[("T", "*")]), client(2, "fresh", 100_000))
            .expect("registered");
        assert!(manager.scan_expired(120_000).is_empty());
        let events = manager.scan_expired(120_001);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].notify, vec![ConnId(2)]);
        assert_eq!(manager.client_ids("G"), vec!["fresh"]);
    }

    #[test]
    fn subscriptions_follow_the_latest_heartbeat() {
        let mut manager = ConsumerManager::new();
        manager
            .register(
                heartbeat("G", &[("T", "A || B"), ("U", "*")]),
                client(1, "c", 0),
            )
            .expect("registered");
        let sub = manager.subscription("G", "T").expect("subscribed");
        assert_eq!(sub.tags_set, vec!["A", "B"]);
        assert!(manager.subscription("G", "U").is_some_and(matches_all));
        manager
            .register(heartbeat("G", &[("T", "C")]), client(1, "c", 5))
            .expect("registered");
        assert_eq!(
            manager.subscription("G", "T").map(|s| s.tags_set.clone()),
            Some(vec!["C".to_owned()])
        );
        assert!(manager.subscription("G", "U").is_none());
    }

    #[test]
    fn tag_filter_checks_hash_then_exact_tag() {
        let sub = SubscriptionData::tags("T", " TagA || TagB ", 1);
        let code_a = ringmq_wire::record::tag_hash_code(Some("TagA"));
        let code_c = ringmq_wire::record::tag_hash_code(Some("TagC"));
        assert!(matches_code(&sub, code_a));
        assert!(!matches_code(&sub, code_c));
        assert!(matches_tags(&sub, Some("TagB")));
        assert!(!matches_tags(&sub, Some("TagC")));
        assert!(!matches_tags(&sub, None));
        let all = SubscriptionData::tags("T", "", 1);
        assert!(matches_all(&all) && matches_code(&all, 99) && matches_tags(&all, None));
        assert_eq!(all.sub_string, "*");
    }
}
