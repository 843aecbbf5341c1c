//! The route tables (RocketMQ's `RouteInfoManager`): which broker groups exist, which
//! addresses they have, which queues of which topic they hold, and when each broker was last
//! heard from. Pure data and rules, no I/O: the caller passes the time and holds the lock
//! (the server keeps one `RwLock<RouteTables>`; every operation here is short).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ringmq_wire::body::register::{DataVersion, TopicConfigSerializeWrapper};
use ringmq_wire::body::route::{BrokerData, MASTER_ID, QueueData, TopicRouteData};
use ringmq_wire::body::topic::{TopicConfig, perm};
use tracing::{info, warn};

use crate::limits::{BROKER_ADDRS_MAX, TOPICS_MAX};

/// Identifies one client connection of the server, so that a closed connection can drop
/// the brokers that registered through it.
pub type ConnectionId = u64;

/// A live broker is keyed by cluster and address, as in RocketMQ 5.x.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddrKey {
    /// The broker's cluster.
    pub cluster: String,
    /// The broker's `ip:port`.
    pub addr: String,
}

impl BrokerAddrKey {
    fn new(cluster: &str, addr: &str) -> Self {
        BrokerAddrKey {
            cluster: cluster.to_owned(),
            addr: addr.to_owned(),
        }
    }
}

/// What the NameServer remembers of a live broker (`BrokerLiveInfo`).
#[derive(Debug, Clone)]
struct BrokerLiveInfo {
    last_update: Instant,
    timeout: Duration,
    data_version: DataVersion,
    connection: ConnectionId,
    ha_server_addr: String,
    broker_name: String,
    broker_id: i64,
}

/// One `REGISTER_BROKER` request, decoded.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The broker's cluster.
    pub cluster: String,
    /// The broker's `ip:port`.
    pub broker_addr: String,
    /// The broker group name.
    pub broker_name: String,
    /// 0 for the master.
    pub broker_id: i64,
    /// The broker's HA address.
    pub ha_server_addr: String,
    /// The broker's own expiry, if it announced one.
    pub timeout: Option<Duration>,
    /// `None` for 4.x brokers, which do not know acting masters.
    pub enable_acting_master: Option<bool>,
    /// The broker's zone, if any.
    pub zone_name: Option<String>,
    /// Its topics and their version.
    pub topics: TopicConfigSerializeWrapper,
    /// Its filter servers (always empty since 4.3).
    pub filter_servers: Vec<String>,
    /// The connection it came on.
    pub connection: ConnectionId,
}

/// The answer to a registration: for a slave, where its master is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationResult {
    /// The master's HA address.
    pub ha_server_addr: Option<String>,
    /// The master's address.
    pub master_addr: Option<String>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// Too many live brokers.
    #[error("the NameServer already tracks {BROKER_ADDRS_MAX} live brokers; refusing {0}")]
    TooManyBrokers(String),
    /// Too many topics.
    #[error("the NameServer already tracks {TOPICS_MAX} topics; refusing more")]
    TooManyTopics,
    /// Another live broker holds this id with a newer state version.
    #[error(
        "broker id {broker_id} of {broker_name} is held by {holder}, which has a newer state version; refusing {addr}"
    )]
    StaleRegistration {
        /// The group.
        broker_name: String,
        /// The id.
        broker_id: i64,
        /// The live holder's address.
        holder: String,
        /// The refused address.
        addr: String,
    },
}

/// Why `REGISTER_TOPIC_IN_NAMESRV` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterTopicError {
    /// The queue data names a broker group that is not registered.
    #[error("broker {0} is not registered; register the broker before its topics")]
    UnknownBroker(String),
    /// Too many topics.
    #[error("the NameServer already tracks {TOPICS_MAX} topics; refusing more")]
    TooManyTopics,
}

/// Which unit-flag filter a topic-list request applies (codes 311, 312, 313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFilter {
    /// Topics with the unit flag.
    Unit,
    /// Topics with the unit-subscription flag.
    HasUnitSub,
    /// Topics with the unit-subscription flag but not the unit flag.
    HasUnitSubNotUnit,
}

/// The route tables.
#[derive(Debug, Default)]
pub struct RouteTables {
    /// topic → broker name → queues (RocketMQ ≥ 4.9.4's map form).
    topic_queue: HashMap<String, BTreeMap<String, QueueData>>,
    /// broker name → group.
    broker_addr: BTreeMap<String, BrokerData>,
    /// cluster → broker names.
    cluster_addr: BTreeMap<String, BTreeSet<String>>,
    broker_live: HashMap<BrokerAddrKey, BrokerLiveInfo>,
    filter_server: HashMap<BrokerAddrKey, Vec<String>>,
    /// Bumped on every change of what a route answer can contain, so that cached answers
    /// can be checked for staleness.
    generation: u64,
}

impl RouteTables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter that changes whenever a route answer could change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Registers (or refreshes) a broker (`REGISTER_BROKER`).
    pub fn register_broker(
        &mut self,
        reg: Registration,
        now: Instant,
        default_timeout: Duration,
        delete_unreported_topics: bool,
    ) -> Result<RegistrationResult, RegistrationError> {
        let key = BrokerAddrKey::new(&reg.cluster, &reg.broker_addr);
        if !self.broker_live.contains_key(&key) && self.broker_live.len() >= BROKER_ADDRS_MAX {
            return Err(RegistrationError::TooManyBrokers(reg.broker_addr));
        }
        let new_version = reg.topics.data_version;
        // A newer holder of the same id wins over a late registration of an old address.
        if let Some(holder) = self
            .broker_addr
            .get(&reg.broker_name)
            .and_then(|group| group.broker_addrs.get(&reg.broker_id))
            .filter(|holder| **holder != reg.broker_addr)
            && let Some(live) = self
                .broker_live
                .get(&BrokerAddrKey::new(&reg.cluster, holder))
            && live.data_version.state_version > new_version.state_version
        {
            return Err(RegistrationError::StaleRegistration {
                broker_name: reg.broker_name,
                broker_id: reg.broker_id,
                holder: holder.clone(),
                addr: reg.broker_addr,
            });
        }
        let topics_changed = self
            .broker_live
            .get(&key)
            .is_none_or(|live| live.data_version != new_version);
        let is_master = reg.broker_id == MASTER_ID;
        if is_master
            && topics_changed
            && self.topic_queue.len() + reg.topics.topic_config_table.len() > TOPICS_MAX
        {
            let new_topics = reg
                .topics
                .topic_config_table
                .keys()
                .filter(|topic| !self.topic_queue.contains_key(*topic))
                .count();
            if self.topic_queue.len() + new_topics > TOPICS_MAX {
                return Err(RegistrationError::TooManyTopics);
            }
        }

        self.cluster_addr
            .entry(reg.cluster.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let mut register_first = !self.broker_addr.contains_key(&reg.broker_name);
        let group = self
            .broker_addr
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                broker_addrs: BTreeMap::new(),
                broker_name: reg.broker_name.clone(),
                cluster: reg.cluster.clone(),
                enable_acting_master: false,
                zone_name: None,
            });
        group.enable_acting_master = reg.enable_acting_master.unwrap_or(false);
        if reg.zone_name.is_some() {
            group.zone_name = reg.zone_name.clone();
        }
        // A slave switched to master (or vice versa) keeps its address under a new id.
        group
            .broker_addrs
            .retain(|id, addr| *addr != reg.broker_addr || *id == reg.broker_id);
        let old_addr = group
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone());
        register_first |= old_addr.is_none();
        let min_id = group.broker_addrs.keys().next().copied();
        let acting_master = group.enable_acting_master;
        let is_prime_slave =
            reg.enable_acting_master.is_some() && !is_master && min_id == Some(reg.broker_id);

        if (is_master || is_prime_slave) && (topics_changed || register_first) {
            for config in reg.topics.topic_config_table.values() {
                let mut config = config.clone();
                if is_prime_slave && acting_master {
                    // An acting master serves reads only.
                    config.perm &= !perm::WRITE;
                }
                self.put_queue_data(&reg.broker_name, &config);
            }
            if is_master && delete_unreported_topics {
                self.drop_unreported_topics(&reg.broker_name, &reg.topics);
            }
        }

        let timeout = reg.timeout.unwrap_or(default_timeout);
        if self.broker_live.contains_key(&key) {
            tracing::debug!(broker = %reg.broker_addr, name = %reg.broker_name, id = reg.broker_id, "broker registration refreshed");
        } else {
            info!(broker = %reg.broker_addr, name = %reg.broker_name, id = reg.broker_id, cluster = %reg.cluster, "new broker registered");
        }
        self.broker_live.insert(
            key.clone(),
            BrokerLiveInfo {
                last_update: now,
                timeout,
                data_version: new_version,
                connection: reg.connection,
                ha_server_addr: reg.ha_server_addr,
                broker_name: reg.broker_name.clone(),
                broker_id: reg.broker_id,
            },
        );
        if reg.filter_servers.is_empty() {
            self.filter_server.remove(&key);
        } else {
            self.filter_server.insert(key, reg.filter_servers);
        }
        self.touch();

        let mut result = RegistrationResult::default();
        if !is_master
            && let Some(master_addr) = self
                .broker_addr
                .get(&reg.broker_name)
                .and_then(|group| group.master_addr())
            && let Some(master) = self
                .broker_live
                .get(&BrokerAddrKey::new(&reg.cluster, master_addr))
        {
            result.ha_server_addr = Some(master.ha_server_addr.clone());
            result.master_addr = Some(master_addr.to_owned());
        }
        Ok(result)
    }

    fn put_queue_data(&mut self, broker_name: &str, config: &TopicConfig) {
        let queue = QueueData {
            broker_name: broker_name.to_owned(),
            perm: config.perm,
            read_queue_nums: config.read_queue_nums,
            topic_sys_flag: config.topic_sys_flag,
            write_queue_nums: config.write_queue_nums,
        };
        let queues = self
            .topic_queue
            .entry(config.topic_name.clone())
            .or_default();
        match queues.get(broker_name) {
            Some(existing) if *existing == queue => {}
            Some(_) => {
                info!(topic = %config.topic_name, broker = broker_name, "topic queue data changed");
                queues.insert(broker_name.to_owned(), queue);
            }
            None => {
                info!(topic = %config.topic_name, broker = broker_name, "new topic registered");
                queues.insert(broker_name.to_owned(), queue);
            }
        }
    }

    fn drop_unreported_topics(&mut self, broker_name: &str, topics: &TopicConfigSerializeWrapper) {
        self.topic_queue.retain(|topic, queues| {
            if !topics.topic_config_table.contains_key(topic) && queues.remove(broker_name).is_some()
            {
                info!(topic = %topic, broker = broker_name, "topic no longer reported by its broker; queues removed");
            }
            !queues.is_empty()
        });
    }

    /// Removes a broker (`UNREGISTER_BROKER`, connection close, expiry). When its group has
    /// no address left, the group and its queues go too.
    pub fn unregister_broker(
        &mut self,
        cluster: &str,
        broker_addr: &str,
        broker_name: &str,
        broker_id: i64,
    ) {
        let key = BrokerAddrKey::new(cluster, broker_addr);
        let was_live = self.broker_live.remove(&key).is_some();
        self.filter_server.remove(&key);
        let mut remove_group = false;
        if let Some(group) = self.broker_addr.get_mut(broker_name) {
            if group.broker_addrs.get(&broker_id).map(String::as_str) == Some(broker_addr) {
                group.broker_addrs.remove(&broker_id);
            }
            remove_group = group.broker_addrs.is_empty();
        }
        if remove_group {
            self.broker_addr.remove(broker_name);
            if let Some(names) = self.cluster_addr.get_mut(cluster) {
                names.remove(broker_name);
                if names.is_empty() {
                    self.cluster_addr.remove(cluster);
                }
            }
            self.topic_queue.retain(|_, queues| {
                queues.remove(broker_name);
                !queues.is_empty()
            });
        }
        info!(
            broker = broker_addr,
            name = broker_name,
            id = broker_id,
            was_live,
            group_removed = remove_group,
            "broker unregistered"
        );
        self.touch();
    }

    /// Drops every broker that registered through a connection that has closed.
    pub fn on_connection_closed(&mut self, connection: ConnectionId) -> usize {
        let gone: Vec<(BrokerAddrKey, String, i64)> = self
            .broker_live
            .iter()
            .filter(|(_, live)| live.connection == connection)
            .map(|(key, live)| (key.clone(), live.broker_name.clone(), live.broker_id))
            .collect();
        for (key, name, id) in &gone {
            warn!(broker = %key.addr, name = %name, "broker connection closed; dropping the broker");
            self.unregister_broker(&key.cluster, &key.addr, name, *id);
        }
        gone.len()
    }

    /// Drops every broker silent for longer than its timeout; returns how many.
    pub fn expire_brokers(&mut self, now: Instant) -> usize {
        let expired: Vec<(BrokerAddrKey, String, i64, Duration)> = self
            .broker_live
            .iter()
            .filter(|(_, live)| now.saturating_duration_since(live.last_update) > live.timeout)
            .map(|(key, live)| {
                (
                    key.clone(),
                    live.broker_name.clone(),
                    live.broker_id,
                    live.timeout,
                )
            })
            .collect();
        for (key, name, id, timeout) in &expired {
            warn!(broker = %key.addr, name = %name, timeout_ms = timeout.as_millis() as u64, "broker expired: no registration or heartbeat within its timeout");
            self.unregister_broker(&key.cluster, &key.addr, name, *id);
        }
        expired.len()
    }

    /// Refreshes a broker's last-update time (`BROKER_HEARTBEAT`); false if unknown.
    pub fn heartbeat(&mut self, cluster: &str, broker_addr: &str, now: Instant) -> bool {
        match self
            .broker_live
            .get_mut(&BrokerAddrKey::new(cluster, broker_addr))
        {
            Some(live) => {
                live.last_update = now;
                true
            }
            None => false,
        }
    }

    /// `QUERY_DATA_VERSION`: whether the broker's version differs from the stored one
    /// (refreshing the broker when it does not), and the stored one.
    pub fn query_data_version(
        &mut self,
        cluster: &str,
        broker_addr: &str,
        version: &DataVersion,
        now: Instant,
    ) -> (bool, Option<DataVersion>) {
        match self
            .broker_live
            .get_mut(&BrokerAddrKey::new(cluster, broker_addr))
        {
            Some(live) => {
                let changed = live.data_version != *version;
                if !changed {
                    live.last_update = now;
                }
                (changed, Some(live.data_version))
            }
            None => (true, None),
        }
    }

    /// The route of a topic, or `None` if no registered broker holds it.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topic_queue.get(topic)?;
        let mut route = TopicRouteData {
            queue_datas: queues.values().cloned().collect(),
            ..TopicRouteData::default()
        };
        for name in queues.keys() {
            let Some(group) = self.broker_addr.get(name) else {
                continue;
            };
            for addr in group.broker_addrs.values() {
                if let Some(servers) = self
                    .filter_server
                    .get(&BrokerAddrKey::new(&group.cluster, addr))
                {
                    route
                        .filter_server_table
                        .insert(addr.clone(), servers.clone());
                }
            }
            route.broker_datas.push(group.clone());
        }
        (!route.broker_datas.is_empty() && !route.queue_datas.is_empty()).then_some(route)
    }

    /// Removes a topic, or only its queues on the cluster's brokers (`DELETE_TOPIC_IN_NAMESRV`).
    /// Returns whether anything was removed.
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) -> bool {
        let removed = match cluster {
            None => self.topic_queue.remove(topic).is_some(),
            Some(cluster) => {
                let Some(names) = self.cluster_addr.get(cluster) else {
                    return false;
                };
                let Some(queues) = self.topic_queue.get_mut(topic) else {
                    return false;
                };
                let before = queues.len();
                queues.retain(|name, _| !names.contains(name));
                let removed = queues.len() != before;
                if queues.is_empty() {
                    self.topic_queue.remove(topic);
                }
                removed
            }
        };
        if removed {
            info!(topic, cluster = cluster.unwrap_or("*"), "topic deleted");
            self.touch();
        }
        removed
    }

    /// Adds queues of a topic on registered brokers (`REGISTER_TOPIC_IN_NAMESRV`).
    pub fn register_topic(
        &mut self,
        topic: &str,
        queues: &[QueueData],
    ) -> Result<(), RegisterTopicError> {
        if let Some(unknown) = queues
            .iter()
            .find(|queue| !self.broker_addr.contains_key(&queue.broker_name))
        {
            return Err(RegisterTopicError::UnknownBroker(
                unknown.broker_name.clone(),
            ));
        }
        if queues.is_empty() {
            return Ok(());
        }
        if !self.topic_queue.contains_key(topic) && self.topic_queue.len() >= TOPICS_MAX {
            return Err(RegisterTopicError::TooManyTopics);
        }
        let entry = self.topic_queue.entry(topic.to_owned()).or_default();
        for queue in queues {
            entry.insert(queue.broker_name.clone(), queue.clone());
        }
        info!(topic, brokers = queues.len(), "topic registered by request");
        self.touch();
        Ok(())
    }

    /// Removes (`add = false`, `WIPE_WRITE_PERM_OF_BROKER`) or restores (`add = true`,
    /// `ADD_WRITE_PERM_OF_BROKER`, which sets read+write) write permission of every topic's
    /// queues on a broker group; returns how many topics were touched.
    pub fn set_write_perm(&mut self, broker_name: &str, add: bool) -> i32 {
        let mut count = 0;
        for queues in self.topic_queue.values_mut() {
            if let Some(queue) = queues.get_mut(broker_name) {
                queue.perm = if add {
                    perm::READ | perm::WRITE
                } else {
                    queue.perm & !perm::WRITE
                };
                count += 1;
            }
        }
        info!(
            broker = broker_name,
            add,
            topics = count,
            "write permission changed"
        );
        self.touch();
        count
    }

    /// Number of live broker addresses.
    pub fn live_broker_count(&self) -> usize {
        self.broker_live.len()
    }

    /// Number of topics.
    pub fn topic_count(&self) -> usize {
        self.topic_queue.len()
    }
}

#[cfg(test)]
mod tests;

mod lists;
