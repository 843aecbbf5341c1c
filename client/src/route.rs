//! Topic routes as the client uses them, and the route cache.
//!
//! A [`TopicRoute`] is a NameServer's `TopicRouteData` turned into what producers and
//! consumers need: the writable queues (on brokers with a master, sorted by broker name then
//! queue id), the readable queues, and the master address of each broker name.
//!
//! [`RouteCache`] keeps one route per topic. A cached route older than the refresh interval
//! (30 s, RocketMQ's `pollNameServerInterval`) is fetched again on its next use, and
//! [`RouteCache::invalidate`] drops it after a send failure so the next attempt sees the
//! NameServer's current view. A background task started by [`RouteCache::spawn_refresher`]
//! also refreshes every cached topic each interval, so that routes of idle topics do not go
//! stale. The number of cached topics is bounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::topic::perm;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::{ClientError, Result};
use crate::namesrv::NameServerClient;
use crate::queue::MessageQueue;

/// Topics whose routes one client caches at most.
pub const CACHED_TOPICS_MAX: usize = 10_000;

/// A topic's route, ready for queue selection.
#[derive(Debug, Clone)]
pub struct TopicRoute {
    /// The topic.
    pub topic: String,
    /// The NameServer's route data.
    pub data: TopicRouteData,
    /// Writable queues on brokers with a master, sorted by broker name, then queue id.
    pub write_queues: Vec<MessageQueue>,
    /// Readable queues, sorted by broker name, then queue id.
    pub read_queues: Vec<MessageQueue>,
    /// Broker name → master address.
    pub masters: BTreeMap<String, String>,
    /// When the route was fetched.
    pub fetched_at: Instant,
}

impl TopicRoute {
    /// Builds the route of `topic` from the NameServer's data.
    pub fn new(topic: &str, data: TopicRouteData) -> Self {
        let masters: BTreeMap<String, String> = data
            .broker_datas
            .iter()
            .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
            .collect();
        let mut queue_datas = data.queue_datas.clone();
        queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut write_queues = Vec::new();
        let mut read_queues = Vec::new();
        for queue_data in &queue_datas {
            if perm::is_writeable(queue_data.perm) && masters.contains_key(&queue_data.broker_name)
            {
                write_queues.extend(
                    (0..queue_data.write_queue_nums.max(0))
                        .map(|id| MessageQueue::new(topic, queue_data.broker_name.clone(), id)),
                );
            }
            if perm::is_readable(queue_data.perm) {
                read_queues.extend(
                    (0..queue_data.read_queue_nums.max(0))
                        .map(|id| MessageQueue::new(topic, queue_data.broker_name.clone(), id)),
                );
            }
        }
        TopicRoute {
            topic: topic.to_owned(),
            data,
            write_queues,
            read_queues,
            masters,
            fetched_at: Instant::now(),
        }
    }

    /// The master address of a broker name.
    pub fn master_addr(&self, broker_name: &str) -> Result<&str> {
        self.masters
            .get(broker_name)
            .map(String::as_str)
            .ok_or_else(|| ClientError::NoBrokerAddress {
                broker_name: broker_name.to_owned(),
            })
    }

    /// Every address (masters and slaves) of a broker name, master first.
    pub fn broker_addrs(&self, broker_name: &str) -> Vec<&str> {
        self.data
            .broker_datas
            .iter()
            .filter(|b| b.broker_name == broker_name)
            .flat_map(|b| b.broker_addrs.values().map(String::as_str))
            .collect()
    }
}

struct CacheInner {
    nameserver: NameServerClient,
    refresh_interval: Duration,
    routes: RwLock<HashMap<String, Arc<TopicRoute>>>,
}

/// Cached topic routes; cheap to clone.
#[derive(Clone)]
pub struct RouteCache {
    inner: Arc<CacheInner>,
}

impl std::fmt::Debug for RouteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteCache")
            .field("refresh_interval", &self.inner.refresh_interval)
            .finish_non_exhaustive()
    }
}

impl RouteCache {
    /// An empty cache over `nameserver`.
    pub fn new(nameserver: NameServerClient, refresh_interval: Duration) -> Self {
        RouteCache {
            inner: Arc::new(CacheInner {
                nameserver,
                refresh_interval,
                routes: RwLock::default(),
            }),
        }
    }

    /// The NameServer client.
    pub fn nameserver(&self) -> &NameServerClient {
        &self.inner.nameserver
    }

    /// The route of `topic`, from the cache if fresh, else from the NameServer.
    pub async fn get(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        if let Some(route) = self.cached(topic)
            && route.fetched_at.elapsed() < self.inner.refresh_interval
        {
            return Ok(route);
        }
        self.refresh(topic).await
    }

    /// The cached route, however old.
    pub fn cached(&self, topic: &str) -> Option<Arc<TopicRoute>> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
            .cloned()
    }

    /// Fetches the route of `topic` now and caches it. When the NameServers cannot be
    /// reached, a cached route (however old) is kept and returned, as RocketMQ does.
    pub async fn refresh(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        match self.inner.nameserver.topic_route(topic).await {
            Ok(data) => {
                let route = Arc::new(TopicRoute::new(topic, data));
                let mut routes = self
                    .inner
                    .routes
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if routes.len() >= CACHED_TOPICS_MAX && !routes.contains_key(topic) {
                    // Forget the stalest route to stay bounded.
                    if let Some(oldest) = routes
                        .iter()
                        .min_by_key(|(_, r)| r.fetched_at)
                        .map(|(t, _)| t.clone())
                    {
                        routes.remove(&oldest);
                    }
                }
                routes.insert(topic.to_owned(), route.clone());
                debug!(topic, queues = route.write_queues.len(), "route refreshed");
                Ok(route)
            }
            Err(error @ ClientError::NameServerUnavailable { .. }) => match self.cached(topic) {
                Some(stale) => {
                    warn!(topic, %error, "keeping a stale route: no NameServer reachable");
                    Ok(stale)
                }
                None => Err(error),
            },
            Err(error) => {
                if matches!(error, ClientError::NoRoute { .. }) {
                    self.invalidate(topic);
                }
                Err(error)
            }
        }
    }

    /// Marks the cached route of `topic` stale: the next [`Self::get`] fetches it again.
    pub fn invalidate(&self, topic: &str) {
        let mut routes = self
            .inner
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(route) = routes.get_mut(topic) {
            let mut stale = (**route).clone();
            stale.fetched_at = Instant::now()
                .checked_sub(self.inner.refresh_interval)
                .unwrap_or(stale.fetched_at);
            *route = Arc::new(stale);
        }
    }

    /// Topics currently cached.
    pub fn topics(&self) -> Vec<String> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Starts a task refreshing every cached route each interval; it stops by itself when
    /// the last handle of the cache is dropped.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<CacheInner> = Arc::downgrade(&self.inner);
        let interval = self.inner.refresh_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = RouteCache { inner };
                for topic in cache.topics() {
                    if let Err(error) = cache.refresh(&topic).await {
                        debug!(topic, %error, "periodic route refresh failed");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use ringmq_wire::body::route::{BrokerData, QueueData};

    use super::*;

    fn broker(name: &str, master: Option<&str>) -> BrokerData {
        BrokerData {
            broker_addrs: master
                .map(|addr| (0, addr.to_owned()))
                .into_iter()
                .chain([(1, format!("{name}-slave:10911"))])
                .collect(),
            broker_name: name.into(),
            cluster: "C".into(),
            ..BrokerData::default()
        }
    }

    fn queues(name: &str, perm: i32, read: i32, write: i32) -> QueueData {
        QueueData {
            broker_name: name.into(),
            perm,
            read_queue_nums: read,
            write_queue_nums: write,
            topic_sys_flag: 0,
        }
    }

    #[test]
    fn write_queues_need_write_perm_and_a_master() {
        let data = TopicRouteData {
            broker_datas: vec![
                broker("b", Some("10.0.0.2:10911")),
                broker("a", Some("10.0.0.1:10911")),
                broker("orphan", None),
                broker("readonly", Some("10.0.0.3:10911")),
            ],
            queue_datas: vec![
                queues("b", perm::READ_WRITE, 2, 2),
                queues("a", perm::READ_WRITE, 3, 2),
                queues("orphan", perm::READ_WRITE, 1, 1),
                queues("readonly", perm::READ, 1, 1),
            ],
            ..TopicRouteData::default()
        };
        let route = TopicRoute::new("T", data);
        let written: Vec<_> = route
            .write_queues
            .iter()
            .map(|q| (q.broker_name.as_str(), q.queue_id))
            .collect();
        assert_eq!(written, [("a", 0), ("a", 1), ("b", 0), ("b", 1)]);
        assert_eq!(route.read_queues.len(), 3 + 2 + 1 + 1);
        assert_eq!(route.master_addr("a").expect("master"), "10.0.0.1:10911");
        assert!(matches!(
            route.master_addr("orphan"),
            Err(ClientError::NoBrokerAddress { .. })
        ));
        assert_eq!(route.broker_addrs("a"), ["10.0.0.1:10911", "a-slave:10911"]);
    }
}
