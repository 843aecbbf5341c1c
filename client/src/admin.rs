//! [`Admin`]: the operations behind `mqadmin`'s most used commands (spec §C.3.2), as a
//! library, so that the broker's `admin` subcommands are thin layers over it.
//!
//! Cluster-wide operations follow `mqadmin`: "in a cluster" means "on every master of the
//! cluster" (from the NameServer's cluster info); NameServer-side changes go to every
//! NameServer, since they do not share state. A fan-out stops at the first failure and names
//! the broker that failed; what was already done stays done (as in `mqadmin`).
//!
//! | mqadmin | method |
//! |---|---|
//! | clusterList | [`Admin::cluster_info`], [`Admin::broker_runtime_info`] |
//! | updateTopic | [`Admin::create_topic`], [`Admin::create_topic_in_cluster`] |
//! | deleteTopic | [`Admin::delete_topic`] |
//! | topicList | [`Admin::topic_list`], [`Admin::topics_by_cluster`] |
//! | topicRoute | [`Admin::topic_route`] |
//! | topicStatus | [`Admin::topic_stats`] |
//! | updateTopicPerm | [`Admin::topic_config`] then [`Admin::create_topic`] |
//! | updateSubGroup / deleteSubGroup | [`Admin::create_subscription_group`], [`Admin::delete_subscription_group`] (and `_in_cluster`) |
//! | consumerProgress | [`Admin::consume_stats`] |
//! | consumerConnection | [`Admin::consumer_connection`] |
//! | consumerStatus | [`Admin::consumer_running_info`] (relayed by the broker to the client) |
//! | producerConnection | [`Admin::producer_connection`] |
//! | brokerStatus | [`Admin::broker_runtime_info`] |
//! | getBrokerConfig / updateBrokerConfig | [`Admin::broker_config`], [`Admin::update_broker_config`] |
//! | wipeWritePerm / addWritePerm | [`Admin::wipe_write_perm`], [`Admin::add_write_perm`] |
//! | queryMsgById | [`Admin::view_message_by_id`] |
//! | queryMsgByKey / queryMsgByUniqueKey | [`Admin::query_messages_by_key`], [`Admin::query_message_by_unique_key`] |
//! | queryMsgByOffset | [`Admin::view_message_at`] |
//! | resetOffsetByTime | [`Admin::reset_offset_by_time_online`] (consumers running: 222 → 220; brokers without one: offline), [`Admin::reset_offset_by_time`] (offline only) |

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ringmq_wire::body::cluster::ClusterInfo;
use ringmq_wire::body::consumer::ConsumerConnection;
use ringmq_wire::body::kv::KvTable;
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::stats::{ConsumeStats, TopicStatsTable};
use ringmq_wire::body::subscription::SubscriptionGroupConfig;
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::admin::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader, DeleteTopicRequestHeader,
    GetConsumeStatsRequestHeader, GetConsumerConnectionListRequestHeader,
    GetTopicConfigRequestHeader, GetTopicStatsInfoRequestHeader, parse_properties,
};
use ringmq_wire::header::namesrv::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};
use ringmq_wire::header::offset::{
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    SearchOffsetRequestHeader,
};
use ringmq_wire::header::pull::PullMessageRequestHeader;
use ringmq_wire::header::query::{QueryMessageRequestHeader, ViewMessageRequestHeader};
use ringmq_wire::header::send::RpcFields;
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::record::{StoredMessage, decode_records};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, WireError};
use tracing::info;

use crate::consumer::api;
use crate::consumer::message_ext::MessageExt;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::producer::DEFAULT_TOPIC;
use crate::queue::MessageQueue;

/// The prefix of a consumer group's retry topic.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// The prefix of a consumer group's dead-letter topic.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

/// The retry topic of a consumer group.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// Admin operations; cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    instance: ClientInstance,
    timeout: Duration,
}

/// RocketMQ's `GroupList` body.
#[derive(Debug, Default, serde::Deserialize)]
struct GroupList {
    #[serde(rename = "groupList", default)]
    group_list: Vec<String>,
}

fn wire_error(addr: &str) -> impl FnOnce(WireError) -> ClientError + '_ {
    move |source| ClientError::Wire {
        addr: addr.to_owned(),
        source,
    }
}

impl Admin {
    /// Admin operations over a client instance, with its API timeout.
    pub fn new(instance: ClientInstance) -> Self {
        let timeout = instance.api_timeout();
        Admin { instance, timeout }
    }

    /// The client instance.
    pub fn instance(&self) -> &ClientInstance {
        &self.instance
    }

    async fn call(&self, addr: &str, request: RemotingCommand) -> Result<RemotingCommand> {
        self.instance
            .remoting()
            .invoke_ok(addr, request, self.timeout)
            .await
    }

    fn request(code: RequestCode, header: &impl CommandHeader) -> RemotingCommand {
        let mut request = RemotingCommand::request(code);
        header.encode_into(&mut request);
        request
    }

    // -------------------------------------------------------------------------------------
    // Cluster and brokers

    /// The NameServer's cluster map (`clusterList`).
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        self.instance.nameserver().cluster_info().await
    }

    /// `(broker name, master address)` of every master of `cluster`, sorted by broker name.
    /// Errors if the cluster is unknown or has no master.
    pub async fn cluster_masters(&self, cluster: &str) -> Result<Vec<(String, String)>> {
        let info = self.cluster_info().await?;
        let names = info.cluster_addr_table.get(cluster).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "cluster {cluster:?} is unknown to the NameServers (known: {})",
                info.cluster_addr_table
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let masters: Vec<(String, String)> = names
            .iter()
            .filter_map(|name| {
                let addr = info.broker_addr_table.get(name)?.master_addr()?;
                Some((name.clone(), addr.to_owned()))
            })
            .collect();
        if masters.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "cluster {cluster:?} has no master broker registered"
            )));
        }
        Ok(masters)
    }

    /// `GET_BROKER_RUNTIME_INFO`: the broker's runtime statistics table (`brokerStatus`).
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request = RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo);
        let response = self.call(addr, request).await?;
        let table: KvTable = ringmq_wire::json::parse("broker runtime info", &response.body)
            .map_err(wire_error(addr))?;
        Ok(table.table)
    }

    /// `GET_BROKER_CONFIG`: the broker's configuration (`getBrokerConfig`).
    pub async fn broker_config(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request = RemotingCommand::request(RequestCode::GetBrokerConfig);
        let response = self.call(addr, request).await?;
        parse_properties(&response.body).map_err(wire_error(addr))
    }

    /// `UPDATE_BROKER_CONFIG`: sets configuration keys on one broker (`updateBrokerConfig`).
    pub async fn update_broker_config(
        &self,
        addr: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Err(ClientError::InvalidArgument(
                "no configuration key to update".into(),
            ));
        }
        let body = ringmq_wire::header::admin::encode_properties(
            entries.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let request =
            RemotingCommand::request(RequestCode::UpdateBrokerConfig).with_body(body.into_bytes());
        self.call(addr, request).await?;
        info!(%addr, keys = entries.len(), "broker config updated");
        Ok(())
    }

    /// `WIPE_WRITE_PERM_OF_BROKER` on every NameServer: producers stop sending to the
    /// broker (drain). Returns the number of topics changed per NameServer.
    pub async fn wipe_write_perm(&self, broker_name: &str) -> Result<Vec<(String, i32)>> {
        let request = Self::request(
            RequestCode::WipeWritePermOfBroker,
            &WipeWritePermOfBrokerRequestHeader {
                broker_name: broker_name.to_owned(),
            },
        );
        self.on_every_nameserver(request, |h: WipeWritePermOfBrokerResponseHeader| {
            h.wipe_topic_count
        })
        .await
    }

    /// `ADD_WRITE_PERM_OF_BROKER` on every NameServer: undoes [`Self::wipe_write_perm`].
    pub async fn add_write_perm(&self, broker_name: &str) -> Result<Vec<(String, i32)>> {
        let request = Self::request(
            RequestCode::AddWritePermOfBroker,
            &AddWritePermOfBrokerRequestHeader {
                broker_name: broker_name.to_owned(),
            },
        );
        self.on_every_nameserver(request, |h: AddWritePermOfBrokerResponseHeader| {
            h.add_topic_count
        })
        .await
    }

    /// Sends `request` to every NameServer (each gets its own opaque) and returns, per
    /// NameServer, the topic count its response header reports.
    async fn on_every_nameserver<H: CommandHeader>(
        &self,
        request: RemotingCommand,
        count: impl Fn(H) -> i32,
    ) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for addr in self.instance.nameserver().addrs() {
            let mut request = request.clone();
            request.opaque = ringmq_wire::command::next_opaque();
            let response = self.call(addr, request).await?;
            let header = H::decode(&response).map_err(wire_error(addr))?;
            out.push((addr.clone(), count(header)));
        }
        Ok(out)
    }

    // -------------------------------------------------------------------------------------
    // Topics

    /// `UPDATE_AND_CREATE_TOPIC` on one broker (`updateTopic -b`).
    pub async fn create_topic(&self, addr: &str, config: &TopicConfig) -> Result<()> {
        crate::message::validate_topic(&config.topic_name)?;
        let attributes = (!config.attributes.is_empty()).then(|| {
            config
                .attributes
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        });
        let header = CreateTopicRequestHeader {
            topic: config.topic_name.clone(),
            default_topic: DEFAULT_TOPIC.into(),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_filter_type: config.topic_filter_type.name().to_owned(),
            topic_sys_flag: Some(config.topic_sys_flag),
            order: config.order,
            attributes,
            force: None,
            rpc: RpcFields::default(),
        };
        self.call(
            addr,
            Self::request(RequestCode::UpdateAndCreateTopic, &header),
        )
        .await?;
        info!(%addr, topic = %config.topic_name, "topic created/updated");
        Ok(())
    }

    /// Creates or updates a topic on every master of `cluster` (`updateTopic -c`); returns
    /// the addresses written.
    pub async fn create_topic_in_cluster(
        &self,
        cluster: &str,
        config: &TopicConfig,
    ) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for (_, addr) in self.cluster_masters(cluster).await? {
            self.create_topic(&addr, config).await?;
            done.push(addr);
        }
        Ok(done)
    }

    /// `GET_TOPIC_CONFIG`: one topic's configuration on one broker.
    pub async fn topic_config(&self, addr: &str, topic: &str) -> Result<TopicConfig> {
        let header = GetTopicConfigRequestHeader {
            topic: topic.to_owned(),
            rpc: RpcFields::default(),
        };
        let response = self
            .call(addr, Self::request(RequestCode::GetTopicConfig, &header))
            .await?;
        // 5.x answers TopicConfigAndQueueMapping: the TopicConfig fields plus a mapping;
        // unknown fields are ignored.
        ringmq_wire::json::parse("topic config", &response.body).map_err(wire_error(addr))
    }

    /// Deletes a topic from every master of `cluster`, then from every NameServer
    /// (`deleteTopic`).
    pub async fn delete_topic(&self, cluster: &str, topic: &str) -> Result<()> {
        for (_, addr) in self.cluster_masters(cluster).await? {
            let header = DeleteTopicRequestHeader {
                topic: topic.to_owned(),
                rpc: RpcFields::default(),
            };
            self.call(
                &addr,
                Self::request(RequestCode::DeleteTopicInBroker, &header),
            )
            .await?;
        }
        self.instance
            .nameserver()
            .delete_topic(topic, Some(cluster))
            .await?;
        self.instance.routes().invalidate(topic);
        info!(topic, cluster, "topic deleted");
        Ok(())
    }

    /// Every topic the NameServer knows (`topicList`).
    pub async fn topic_list(&self) -> Result<BTreeSet<String>> {
        Ok(self.instance.nameserver().all_topics().await?.topic_list)
    }

    /// The topics of one cluster.
    pub async fn topics_by_cluster(&self, cluster: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .instance
            .nameserver()
            .topics_by_cluster(cluster)
            .await?
            .topic_list)
    }

    /// A topic's route as the NameServer has it (`topicRoute`).
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        self.instance.nameserver().topic_route(topic).await
    }

    /// `QUERY_TOPIC_CONSUME_BY_WHO` on every master of the topic's route, merged: the groups
    /// with online consumers of the topic or offsets committed on it (`topicList -c`).
    pub async fn topic_consumed_by(&self, topic: &str) -> Result<BTreeSet<String>> {
        let route = self.topic_route(topic).await?;
        let mut groups = BTreeSet::new();
        for addr in route.broker_datas.iter().filter_map(|b| b.master_addr()) {
            // The request header is `{topic}` alone, the shape of GET_TOPIC_CONFIG's.
            let header = GetTopicConfigRequestHeader {
                topic: topic.to_owned(),
                rpc: RpcFields::default(),
            };
            let response = self
                .call(
                    addr,
                    Self::request(RequestCode::QueryTopicConsumeByWho, &header),
                )
                .await?;
            let list: GroupList =
                ringmq_wire::json::parse("group list", &response.body).map_err(wire_error(addr))?;
            groups.extend(list.group_list);
        }
        Ok(groups)
    }

    /// `GET_TOPIC_STATS_INFO` from every master of the topic's route, merged: per queue
    /// min/max offset and last update time (`topicStatus`).
    pub async fn topic_stats(&self, topic: &str) -> Result<TopicStatsTable> {
        let route = self.topic_route(topic).await?;
        let mut merged = TopicStatsTable::default();
        for broker in &route.broker_datas {
            let Some(addr) = broker.master_addr() else {
                continue;
            };
            let header = GetTopicStatsInfoRequestHeader {
                topic: topic.to_owned(),
                rpc: RpcFields::default(),
            };
            let response = self
                .call(addr, Self::request(RequestCode::GetTopicStatsInfo, &header))
                .await?;
            let table = TopicStatsTable::decode(&response.body).map_err(wire_error(addr))?;
            merged.offset_table.extend(table.offset_table);
            merged.topic_put_tps += table.topic_put_tps;
        }
        Ok(merged)
    }

    /// `GET_MAX_OFFSET` of one queue (on its broker's master).
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = self.master_of(queue).await?;
        let header = GetMaxOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            committed: None,
            rpc: RpcFields {
                broker_name: Some(queue.broker_name.clone()),
                ..RpcFields::default()
            },
        };
        let response = self
            .call(&addr, Self::request(RequestCode::GetMaxOffset, &header))
            .await?;
        Ok(OffsetResponseHeader::decode(&response)
            .map_err(wire_error(&addr))?
            .offset)
    }

    /// `GET_MIN_OFFSET` of one queue.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64> {
        let addr = self.master_of(queue).await?;
        let header = GetMinOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            rpc: RpcFields {
                broker_name: Some(queue.broker_name.clone()),
                ..RpcFields::default()
            },
        };
        let response = self
            .call(&addr, Self::request(RequestCode::GetMinOffset, &header))
            .await?;
        Ok(OffsetResponseHeader::decode(&response)
            .map_err(wire_error(&addr))?
            .offset)
    }

    /// `SEARCH_OFFSET_BY_TIMESTAMP`: the first offset of a queue stored at or after
    /// `timestamp_ms`.
    pub async fn search_offset(&self, queue: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        let addr = self.master_of(queue).await?;
        let header = SearchOffsetRequestHeader {
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            timestamp: timestamp_ms,
            boundary_type: None,
            rpc: RpcFields {
                broker_name: Some(queue.broker_name.clone()),
                ..RpcFields::default()
            },
        };
        let response = self
            .call(
                &addr,
                Self::request(RequestCode::SearchOffsetByTimestamp, &header),
            )
            .await?;
        Ok(OffsetResponseHeader::decode(&response)
            .map_err(wire_error(&addr))?
            .offset)
    }

    async fn master_of(&self, queue: &MessageQueue) -> Result<String> {
        let route = self.instance.routes().get(&queue.topic).await?;
        Ok(route.master_addr(&queue.broker_name)?.to_owned())
    }

    // -------------------------------------------------------------------------------------
    // Consumer groups

    /// `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP` on one broker (`updateSubGroup -b`).
    pub async fn create_subscription_group(
        &self,
        addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        if config.group_name.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscription group name must not be empty".into(),
            ));
        }
        let request = RemotingCommand::request(RequestCode::UpdateAndCreateSubscriptiongroup)
            .with_body(config.encode());
        self.call(addr, request).await?;
        info!(%addr, group = %config.group_name, "subscription group created/updated");
        Ok(())
    }

    /// Creates or updates a subscription group on every master of `cluster`.
    pub async fn create_subscription_group_in_cluster(
        &self,
        cluster: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for (_, addr) in self.cluster_masters(cluster).await? {
            self.create_subscription_group(&addr, config).await?;
            done.push(addr);
        }
        Ok(done)
    }

    /// `DELETE_SUBSCRIPTIONGROUP` on one broker (`deleteSubGroup -b`); `clean_offset` also
    /// removes the group's committed offsets.
    pub async fn delete_subscription_group(
        &self,
        addr: &str,
        group: &str,
        clean_offset: bool,
    ) -> Result<()> {
        let header = DeleteSubscriptionGroupRequestHeader {
            group_name: group.to_owned(),
            clean_offset: Some(clean_offset),
            rpc: RpcFields::default(),
        };
        self.call(
            addr,
            Self::request(RequestCode::DeleteSubscriptiongroup, &header),
        )
        .await?;
        Ok(())
    }

    /// Deletes a subscription group from every master of `cluster`.
    pub async fn delete_subscription_group_in_cluster(
        &self,
        cluster: &str,
        group: &str,
        clean_offset: bool,
    ) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for (_, addr) in self.cluster_masters(cluster).await? {
            self.delete_subscription_group(&addr, group, clean_offset)
                .await?;
            done.push(addr);
        }
        Ok(done)
    }

    /// The masters that serve a group: those of its retry topic's route, or, when the group
    /// has no retry topic yet, every master the NameServer knows.
    async fn group_masters(&self, group: &str) -> Result<Vec<String>> {
        match self.topic_route(&retry_topic(group)).await {
            Ok(route) => Ok(route
                .broker_datas
                .iter()
                .filter_map(|b| b.master_addr().map(str::to_owned))
                .collect()),
            Err(ClientError::NoRoute { .. }) => {
                let info = self.cluster_info().await?;
                Ok(info
                    .broker_addr_table
                    .values()
                    .filter_map(|b| b.master_addr().map(str::to_owned))
                    .collect())
            }
            Err(error) => Err(error),
        }
    }

    /// `GET_CONSUME_STATS` from every master serving the group, merged: per queue broker
    /// offset, consumer offset and the lag between them (`consumerProgress`).
    pub async fn consume_stats(&self, group: &str, topic: Option<&str>) -> Result<ConsumeStats> {
        let mut merged = ConsumeStats::default();
        for addr in self.group_masters(group).await? {
            let header = GetConsumeStatsRequestHeader {
                consumer_group: group.to_owned(),
                topic: topic.map(str::to_owned),
                topic_list: None,
                rpc: RpcFields::default(),
            };
            let response = self
                .call(&addr, Self::request(RequestCode::GetConsumeStats, &header))
                .await?;
            let stats = ConsumeStats::decode(&response.body).map_err(wire_error(&addr))?;
            merged.offset_table.extend(stats.offset_table);
            merged.consume_tps += stats.consume_tps;
        }
        Ok(merged)
    }

    /// `GET_CONSUMER_CONNECTION_LIST`: the group's online consumers and their subscriptions
    /// (`consumerConnection`), from the first master serving the group that knows it.
    pub async fn consumer_connection(&self, group: &str) -> Result<ConsumerConnection> {
        let mut last_error = None;
        for addr in self.group_masters(group).await? {
            match self.consumer_connection_on(&addr, group).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument(format!("no broker serves consumer group {group:?}"))
        }))
    }

    /// `GET_CONSUMER_CONNECTION_LIST` on one broker (`consumerConnection -b`).
    pub async fn consumer_connection_on(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ConsumerConnection> {
        let header = GetConsumerConnectionListRequestHeader {
            consumer_group: group.to_owned(),
            rpc: RpcFields::default(),
        };
        let response = self
            .call(
                addr,
                Self::request(RequestCode::GetConsumerConnectionList, &header),
            )
            .await?;
        ringmq_wire::json::parse("consumer connection", &response.body).map_err(wire_error(addr))
    }
}

impl Admin {
    // -------------------------------------------------------------------------------------
    // Messages

    /// `VIEW_MESSAGE_BY_ID`: the message with a broker-generated id (store host + CommitLog
    /// offset), read from that broker (`queryMsgById`).
    pub async fn view_message_by_id(&self, offset_msg_id: &str) -> Result<MessageExt> {
        let (store_host, physical_offset) = parse_offset_msg_id(offset_msg_id).map_err(|e| {
            ClientError::InvalidArgument(format!(
                "{offset_msg_id:?} is not a broker message id: {e}"
            ))
        })?;
        let addr = store_host.to_string();
        let header = ViewMessageRequestHeader {
            topic: None,
            offset: physical_offset,
        };
        let response = self
            .call(&addr, Self::request(RequestCode::ViewMessageById, &header))
            .await?;
        let stored = StoredMessage::decode(&response.body, true).map_err(wire_error(&addr))?;
        let broker_name = self.broker_name_of(&addr).await.unwrap_or_default();
        MessageExt::from_stored(&stored, &broker_name)
    }

    async fn broker_name_of(&self, addr: &str) -> Option<String> {
        let info = self.cluster_info().await.ok()?;
        info.broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| a == addr))
            .map(|b| b.broker_name.clone())
    }

    /// `QUERY_MESSAGE` on every master of the topic: messages whose keys include `key`,
    /// stored between `begin_ms` and `end_ms`, at most `max` per broker (`queryMsgByKey`).
    pub async fn query_messages_by_key(
        &self,
        topic: &str,
        key: &str,
        max: i32,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<MessageExt>> {
        let found = self
            .query_messages(topic, key, max, begin_ms, end_ms, false)
            .await?;
        Ok(found
            .into_iter()
            .filter(|m| m.keys().contains(&key))
            .collect())
    }

    /// `QUERY_MESSAGE` by the client-generated id (`UNIQ_KEY`) (`queryMsgByUniqueKey`); the
    /// newest match if several were stored (retries may store a message twice).
    pub async fn query_message_by_unique_key(
        &self,
        topic: &str,
        unique_id: &str,
    ) -> Result<Option<MessageExt>> {
        let found = self
            .query_messages(topic, unique_id, 32, 0, i64::MAX, true)
            .await?;
        Ok(found
            .into_iter()
            .filter(|m| m.msg_id() == unique_id)
            .max_by_key(|m| m.store_timestamp))
    }

    async fn query_messages(
        &self,
        topic: &str,
        key: &str,
        max: i32,
        begin_ms: i64,
        end_ms: i64,
        unique: bool,
    ) -> Result<Vec<MessageExt>> {
        let route = self.topic_route(topic).await?;
        let mut found = Vec::new();
        for broker in &route.broker_datas {
            let Some(addr) = broker.master_addr() else {
                continue;
            };
            let header = QueryMessageRequestHeader {
                topic: topic.to_owned(),
                key: key.to_owned(),
                max_num: max.max(1),
                begin_timestamp: begin_ms,
                end_timestamp: end_ms,
                unique_key_query: unique.then_some(true),
                rpc: RpcFields::default(),
            };
            let response = self
                .instance
                .remoting()
                .invoke(
                    addr,
                    Self::request(RequestCode::QueryMessage, &header),
                    self.timeout,
                )
                .await?;
            match ResponseCode::from_i32(response.code) {
                Some(ResponseCode::Success) => {}
                Some(ResponseCode::QueryNotFound) => continue,
                _ => {
                    return Err(crate::remoting::broker_error(
                        addr,
                        RequestCode::QueryMessage.as_i32(),
                        &response,
                    ));
                }
            }
            let records = decode_records(&response.body, true, api::PULLED_MESSAGES_MAX)
                .map_err(wire_error(addr))?;
            for record in &records {
                found.push(MessageExt::from_stored(record, &broker.broker_name)?);
            }
        }
        Ok(found)
    }

    /// The message at `offset` of a queue, pulled without holding (`queryMsgByOffset`);
    /// `None` if there is none at that offset.
    pub async fn view_message_at(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<Option<MessageExt>> {
        let result = self.pull_messages(queue, offset, 1).await?;
        Ok(result
            .messages
            .into_iter()
            .find(|m| m.queue_offset == offset))
    }

    /// Up to `max` messages of a queue from `offset`, in one pull without holding, as the
    /// tools consumer group (`consumeMessage`); the result says where the next pull starts.
    pub async fn pull_messages(
        &self,
        queue: &MessageQueue,
        offset: i64,
        max: i32,
    ) -> Result<api::PullResult> {
        let addr = self.master_of(queue).await?;
        let header = PullMessageRequestHeader {
            consumer_group: TOOLS_CONSUMER_GROUP.to_owned(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            queue_offset: offset,
            max_msg_nums: max.max(1),
            // The request carries its own subscription, as Java's pull consumer sends it;
            // without the flag the broker looks for the group's registered subscription.
            sys_flag: ringmq_wire::header::pull::pull_sys_flag::SUBSCRIPTION,
            commit_offset: 0,
            suspend_timeout_millis: 0,
            subscription: Some("*".into()),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
            request_source: None,
            proxy_forward_client_id: None,
            rpc: RpcFields {
                broker_name: Some(queue.broker_name.clone()),
                ..RpcFields::default()
            },
        };
        api::pull(&self.instance, &addr, queue, &header, self.timeout).await
    }
}

impl Admin {
    /// Moves a group's committed offset of every queue of `topic` to the first message
    /// stored at or after `timestamp_ms` (`SEARCH_OFFSET_BY_TIMESTAMP`, then
    /// `UPDATE_CONSUMER_OFFSET` on each queue's master); returns the new offsets.
    ///
    /// Meant for a group with no consumer online: a running consumer persists its own
    /// offsets every 5 s and would overwrite these. With consumers running, use
    /// [`Admin::reset_offset_by_time_online`].
    pub async fn reset_offset_by_time(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
    ) -> Result<Vec<(MessageQueue, i64)>> {
        let route = self.instance.routes().refresh(topic).await?;
        let mut done = Vec::with_capacity(route.read_queues.len());
        for queue in &route.read_queues {
            let addr = route.master_addr(&queue.broker_name)?.to_owned();
            let offset = api::search_offset(&self.instance, &addr, queue, timestamp_ms).await?;
            api::update_consumer_offset(&self.instance, &addr, group, queue, offset).await?;
            done.push((queue.clone(), offset));
        }
        info!(
            group,
            topic,
            timestamp_ms,
            queues = done.len(),
            "offsets reset"
        );
        Ok(done)
    }
}

/// The consumer group admin tools pull as (RocketMQ's `TOOLS_CONSUMER`).
pub const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";

mod clients;
mod reset;
pub use clients::RELAYED_CALL_TIMEOUT;
pub use reset::{ResetOutcome, ResetPath};

#[cfg(test)]
mod tests;
