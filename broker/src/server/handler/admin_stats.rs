//! Statistics and introspection: `GET_BROKER_RUNTIME_INFO` (28), `GET_TOPIC_STATS_INFO`
//! (202), `GET_CONSUME_STATS` (208), `GET_CONSUMER_CONNECTION_LIST` (203),
//! `GET_BROKER_CONFIG` (26), `GET_ALL_CONSUMER_OFFSET` (43).

use std::collections::BTreeMap;

use ringmq_wire::body::consumer::{
    Connection, ConsumerConnection, ConsumerOffsetSerializeWrapper, MessageQueue,
    ProducerConnection,
};
use ringmq_wire::body::kv::KvTable;
use ringmq_wire::body::stats::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
use ringmq_wire::header::admin::{
    GetBrokerConfigResponseHeader, GetConsumeStatsRequestHeader,
    GetConsumerConnectionListRequestHeader, GetProducerConnectionListRequestHeader,
    GetTopicConfigRequestHeader, GetTopicStatsInfoRequestHeader, encode_properties,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::handler::stats_times::StoreTimes;
use crate::server::handler::{HandlerResult, decode_header, error, success, success_with};
use crate::server::state::{Conn, ShardState};
use crate::server::store::ShardStore;

/// `GET_BROKER_RUNTIME_INFO`: a `KVTable` of counters, with RocketMQ's key names where we
/// have the value.
pub fn runtime_info<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let stats = state.stats;
    let mut table = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        table.insert(k.to_owned(), v);
    };
    put(
        "brokerVersionDesc",
        format!("ringmq {}", env!("CARGO_PKG_VERSION")),
    );
    put(
        "brokerVersion",
        ringmq_wire::command::CURRENT_VERSION.to_string(),
    );
    put("bootTimestamp", stats.boot_timestamp_ms.to_string());
    put(
        "runtime",
        format!("{} ms", now_ms.saturating_sub(stats.boot_timestamp_ms)),
    );
    put("msgPutTotalTodayNow", stats.put_messages.to_string());
    put("msgGetTotalTodayNow", stats.get_messages.to_string());
    put("putMessageFailedTimes", stats.put_failures.to_string());
    put("sendBackToRetryTimes", stats.send_back_retry.to_string());
    put("sendBackToDlqTimes", stats.send_back_dlq.to_string());
    put(
        "commitLogMinOffset",
        state.store.commit_log_min_offset().to_string(),
    );
    put(
        "commitLogMaxOffset",
        state.store.commit_log_max_offset().to_string(),
    );
    put("durableOffset", state.store.durable_offset().to_string());
    put("pendingLongPolls", state.pulls.len().to_string());
    put("shard", state.identity.shard.to_string());
    put(
        "flushMode",
        format!("{:?}", state.config.store.flush_mode).to_lowercase(),
    );
    if let Some(driver) = crate::runtime::current_driver() {
        put("runtimeDriver", driver.name().to_owned());
    }
    for (key, value) in crate::features::schedule::runtime_info(state) {
        put(&key, value);
    }
    let body = ringmq_wire::json::to_vec(&KvTable { table });
    Ok(Some(success(request).with_body(body)))
}

/// `GET_TOPIC_STATS_INFO`: min/max offset and last store time of each queue (records not in
/// memory read on the ring, [`super::stats_times`]).
pub fn topic_stats<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetTopicStatsInfoRequestHeader = decode_header(request)?;
    let Some(config) = state.topics.get(&h.topic) else {
        return Err(error(
            request,
            ResponseCode::TopicNotExist,
            format!("topic[{}] not exist", h.topic),
        ));
    };
    let mut table = TopicStatsTable::default();
    let mut times = StoreTimes::new(state);
    for queue_id in 0..config.write_queue_nums.max(config.read_queue_nums) {
        let min_offset = state.store.min_offset(&h.topic, queue_id);
        let max_offset = state.store.max_offset(&h.topic, queue_id);
        let queue = MessageQueue::new(
            h.topic.clone(),
            state.identity.broker_name.clone(),
            queue_id,
        );
        let last_update_timestamp = if max_offset > 0 {
            times.get(state, (&h.topic, queue_id, max_offset - 1), queue.clone())
        } else {
            0
        };
        table.offset_table.insert(
            queue,
            TopicOffset {
                last_update_timestamp,
                max_offset,
                min_offset,
            },
        );
    }
    let fill = |table: &mut TopicStatsTable, queue: &MessageQueue, ts: i64| {
        if let Some(offset) = table.offset_table.get_mut(queue) {
            offset.last_update_timestamp = ts;
        }
    };
    times.answer(
        state,
        (conn, request),
        table,
        (fill, TopicStatsTable::encode),
    )
}

/// `GET_CONSUME_STATS`: per queue, the broker's max offset and the group's committed one
/// (the store time of the last consumed message read on the ring when it is not in memory).
pub fn consume_stats<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetConsumeStatsRequestHeader = decode_header(request)?;
    let topics: Vec<String> = match &h.topic {
        Some(topic) if !topic.is_empty() => vec![topic.clone()],
        _ => state.offsets.topics_of_group(&h.consumer_group),
    };
    let mut stats = ConsumeStats::default();
    let mut times = StoreTimes::new(state);
    for topic in topics {
        let Some(config) = state.topics.get(&topic) else {
            continue;
        };
        for queue_id in 0..config.read_queue_nums {
            let broker_offset = state.store.max_offset(&topic, queue_id);
            let consumer_offset = state
                .offsets
                .query(&h.consumer_group, &topic, queue_id)
                .unwrap_or(0)
                .max(0);
            let queue =
                MessageQueue::new(topic.clone(), state.identity.broker_name.clone(), queue_id);
            let last_timestamp = if consumer_offset > 0 {
                times.get(
                    state,
                    (&topic, queue_id, consumer_offset - 1),
                    queue.clone(),
                )
            } else {
                0
            };
            stats.offset_table.insert(
                queue,
                OffsetWrapper {
                    broker_offset,
                    consumer_offset,
                    last_timestamp,
                    pull_offset: consumer_offset,
                },
            );
        }
    }
    let fill = |stats: &mut ConsumeStats, queue: &MessageQueue, ts: i64| {
        if let Some(offset) = stats.offset_table.get_mut(queue) {
            offset.last_timestamp = ts;
        }
    };
    times.answer(state, (conn, request), stats, (fill, ConsumeStats::encode))
}

/// `GET_CONSUMER_CONNECTION_LIST`: the group's live clients and subscriptions.
pub fn consumer_connections<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetConsumerConnectionListRequestHeader = decode_header(request)?;
    let Some(info) = state.consumers.group(&h.consumer_group) else {
        return Err(error(
            request,
            ResponseCode::ConsumerNotOnline,
            format!("the consumer group[{}] not online", h.consumer_group),
        ));
    };
    let mut connection_set: Vec<Connection> = info.clients.values().map(connection_of).collect();
    connection_set.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let body = ConsumerConnection {
        connection_set,
        consume_from_where: info.consume_from_where,
        consume_type: info.consume_type,
        message_model: info.message_model,
        subscription_table: info.subscriptions.clone(),
    };
    Ok(Some(success(request).with_body(body.encode())))
}

/// A client's row in the consumer and producer connection lists.
fn connection_of(c: &crate::server::ClientInfo) -> Connection {
    Connection {
        client_addr: c.remote_addr.clone(),
        client_id: c.client_id.clone(),
        language: c.language,
        version: c.version,
    }
}

/// `GET_PRODUCER_CONNECTION_LIST` (204): the live producers of a group (from their
/// heartbeats), as mqadmin's `producerConnection` lists them; a group with none is
/// `SYSTEM_ERROR` with RocketMQ's remark.
pub fn producer_connections<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetProducerConnectionListRequestHeader = decode_header(request)?;
    let connection_set: Vec<Connection> = state
        .producers
        .producers(&h.producer_group)
        .into_iter()
        .map(connection_of)
        .collect();
    if connection_set.is_empty() {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("the producer group[{}] not exist", h.producer_group),
        ));
    }
    let body = ProducerConnection { connection_set };
    Ok(Some(success(request).with_body(body.encode())))
}

/// `GET_BROKER_CONFIG`: the configuration as Java properties text, with RocketMQ's key
/// names where one exists.
pub fn broker_config<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let c = &state.config;
    let pairs: Vec<(&str, String)> = vec![
        ("brokerClusterName", c.broker.cluster_name.clone()),
        ("brokerName", state.identity.broker_name.clone()),
        ("brokerId", c.broker.broker_id.to_string()),
        ("brokerIP1", state.identity.store_host.ip().to_string()),
        ("listenPort", state.identity.store_host.port().to_string()),
        ("namesrvAddr", c.broker.namesrv_addrs.join(";")),
        ("brokerPermission", c.broker.permission.to_string()),
        (
            "storePathRootDir",
            c.shard_store_path(state.identity.shard)
                .display()
                .to_string(),
        ),
        (
            "flushDiskType",
            match c.store.flush_mode {
                crate::config::FlushMode::Sync => "SYNC_FLUSH".to_owned(),
                _ => "ASYNC_FLUSH".to_owned(),
            },
        ),
        ("mappedFileSizeCommitLog", c.store.segment_bytes.to_string()),
        (
            "fileReservedTime",
            c.retention.file_reserved_time_hours.to_string(),
        ),
        ("deleteWhen", c.retention.delete_when.clone()),
        (
            "diskMaxUsedSpaceRatio",
            c.retention.disk_max_used_space_ratio.to_string(),
        ),
        ("maxMessageSize", c.limits.max_message_bytes.to_string()),
        ("messageDelayLevel", c.schedule.message_delay_level.clone()),
        (
            "enablePropertyFilter",
            c.filter.enable_property_filter.to_string(),
        ),
        (
            "autoCreateTopicEnable",
            c.topics.auto_create_topic.to_string(),
        ),
        (
            "autoCreateSubscriptionGroup",
            c.topics.auto_create_subscription_group.to_string(),
        ),
        (
            "defaultTopicQueueNums",
            c.topics.default_topic_queue_nums.to_string(),
        ),
        ("longPollingEnable", c.polling.long_polling.to_string()),
        (
            "shortPollingTimeMills",
            c.polling.short_polling_time_ms.to_string(),
        ),
        (
            "registerNameServerPeriod",
            c.broker.register_period_ms.to_string(),
        ),
    ];
    let mut sorted = pairs;
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let text = encode_properties(sorted.iter().map(|(k, v)| (*k, v.as_str())));
    let version = String::from_utf8_lossy(&ringmq_wire::json::to_vec(&state.topics.data_version()))
        .into_owned();
    let response = success_with(request, &GetBrokerConfigResponseHeader { version });
    Ok(Some(response.with_body(text.into_bytes())))
}

/// `GET_ALL_CONSUMER_OFFSET`: the whole `topic@group → queue → offset` table.
pub fn all_consumer_offsets<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let wrapper = ConsumerOffsetSerializeWrapper {
        data_version: None,
        offset_table: state.offsets.snapshot(),
    };
    Ok(Some(success(request).with_body(wrapper.encode())))
}

/// `QUERY_TOPIC_CONSUME_BY_WHO` (300): the groups consuming a topic here, as RocketMQ's
/// broker answers it: groups with online consumers subscribed to the topic, and groups with
/// offsets committed on it. Body: `{"groupList":[…]}` (RocketMQ's `GroupList`), sorted.
///
/// The request header is `{topic}` alone, the shape of `GET_TOPIC_CONFIG`'s, so that header
/// type decodes it.
pub fn topic_consumed_by<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let header: GetTopicConfigRequestHeader = decode_header(request)?;
    let topic = header.topic.as_str();
    let mut groups: std::collections::BTreeSet<String> = state
        .consumers
        .groups()
        .filter(|(_, info)| info.subscriptions.contains_key(topic))
        .map(|(group, _)| group.to_owned())
        .collect();
    groups.extend(state.offsets.groups_of_topic(topic));
    let body = serde_json::json!({ "groupList": groups });
    Ok(Some(
        success(request).with_body(body.to_string().into_bytes()),
    ))
}

#[cfg(test)]
#[path = "admin_stats_tests.rs"]
mod tests;
