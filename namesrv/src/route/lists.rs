//! Read-only listings of the route tables: the cluster map and the topic lists.

use ringmq_wire::body::cluster::ClusterInfo;
use ringmq_wire::body::topic::{TopicList, sys_flag};

use super::{RouteTables, UnitFilter};

impl RouteTables {
    /// The cluster map (`GET_BROKER_CLUSTER_INFO`).
    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.broker_addr.clone(),
            cluster_addr_table: self.cluster_addr.clone(),
        }
    }

    /// Every topic (`GET_ALL_TOPIC_LIST_FROM_NAMESERVER`).
    pub fn all_topics(&self) -> TopicList {
        TopicList {
            broker_addr: None,
            topic_list: self.topic_queue.keys().cloned().collect(),
        }
    }

    /// Topics with queues on a broker of the cluster (`GET_TOPICS_BY_CLUSTER`).
    pub fn topics_of_cluster(&self, cluster: &str) -> TopicList {
        let names = self.cluster_addr.get(cluster);
        let topic_list = self
            .topic_queue
            .iter()
            .filter(|(_, queues)| {
                names.is_some_and(|names| queues.keys().any(|name| names.contains(name)))
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            broker_addr: None,
            topic_list,
        }
    }

    /// Cluster and broker names, plus one broker address (`GET_SYSTEM_TOPIC_LIST_FROM_NS`,
    /// as RocketMQ answers it).
    pub fn system_topics(&self) -> TopicList {
        let mut list = TopicList::default();
        for (cluster, names) in &self.cluster_addr {
            list.topic_list.insert(cluster.clone());
            list.topic_list.extend(names.iter().cloned());
        }
        list.broker_addr = self
            .broker_addr
            .values()
            .find_map(|group| group.broker_addrs.values().next().cloned());
        list
    }

    /// Topics by unit flags (`GET_UNIT_TOPIC_LIST` and the two `HAS_UNIT_SUB` lists); as in
    /// RocketMQ, the flags of the first broker's queues decide.
    pub fn unit_topics(&self, filter: UnitFilter) -> TopicList {
        let topic_list = self
            .topic_queue
            .iter()
            .filter(|(_, queues)| {
                queues.values().next().is_some_and(|queue| {
                    let flag = queue.topic_sys_flag;
                    match filter {
                        UnitFilter::Unit => sys_flag::has_unit(flag),
                        UnitFilter::HasUnitSub => sys_flag::has_unit_sub(flag),
                        UnitFilter::HasUnitSubNotUnit => {
                            !sys_flag::has_unit(flag) && sys_flag::has_unit_sub(flag)
                        }
                    }
                })
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            broker_addr: None,
            topic_list,
        }
    }
}
