//! What push and lite pull consumers share about their group: heartbeats, queue
//! allocation (client-side rebalance) and the start offset of a newly owned queue.

use std::collections::BTreeMap;

use ringmq_wire::body::heartbeat::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, MessageModel, SubscriptionData,
};
use tracing::warn;

use crate::admin::RETRY_GROUP_TOPIC_PREFIX;
use crate::consumer::api;
use crate::consumer::offset_store::OffsetStore;
use crate::consumer::rebalance::AllocateStrategy;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::queue::MessageQueue;

/// A consumer group as one client runs it.
#[derive(Debug, Clone)]
pub(crate) struct GroupSpec {
    pub group: String,
    pub consume_type: ConsumeType,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    pub consume_timestamp_ms: Option<i64>,
    pub strategy: AllocateStrategy,
}

/// Masters of every topic in `topics` (sorted, deduplicated).
pub(crate) async fn master_addrs<'a>(
    instance: &ClientInstance,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut addrs = Vec::new();
    for topic in topics {
        if let Ok(route) = instance.routes().get(topic).await {
            addrs.extend(route.masters.values().cloned());
        }
    }
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Sends `HEART_BEAT` for the group to every master of its topics.
pub(crate) async fn heartbeat(
    instance: &ClientInstance,
    spec: &GroupSpec,
    subscriptions: &BTreeMap<String, SubscriptionData>,
) {
    let data = HeartbeatData {
        client_id: instance.client_id().to_owned(),
        consumer_data_set: vec![ConsumerData {
            consume_from_where: spec.consume_from_where,
            consume_type: spec.consume_type,
            group_name: spec.group.clone(),
            message_model: spec.message_model,
            subscription_data_set: subscriptions.values().cloned().collect(),
            unit_mode: false,
        }],
        ..HeartbeatData::default()
    };
    for addr in master_addrs(instance, subscriptions.keys()).await {
        if let Err(error) = api::heartbeat(instance, &addr, &data).await {
            warn!(%addr, %error, "heartbeat failed");
        }
    }
}

/// The queues of `topic` this client should own: all readable queues when broadcasting,
/// else its share among the group's members (as listed by a master of the topic).
pub(crate) async fn allocate(
    instance: &ClientInstance,
    spec: &GroupSpec,
    topic: &str,
) -> Result<Vec<MessageQueue>> {
    let route = instance.routes().get(topic).await?;
    if spec.message_model == MessageModel::Broadcasting {
        return Ok(route.read_queues.clone());
    }
    let mut last_error = None;
    for addr in route.masters.values() {
        match api::consumer_ids(instance, addr, &spec.group).await {
            Ok(ids) if !ids.is_empty() => {
                return Ok(spec
                    .strategy
                    .allocate(instance.client_id(), &route.read_queues, &ids));
            }
            Ok(_) => {
                last_error = Some(ClientError::InvalidArgument(format!(
                    "broker {addr} lists no member of group {}",
                    spec.group
                )));
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| ClientError::NoRoute {
        topic: topic.to_owned(),
        reason: "no master broker in the route".into(),
    }))
}

/// The master address of a queue's broker.
pub(crate) async fn master_addr(instance: &ClientInstance, queue: &MessageQueue) -> Result<String> {
    let route = instance.routes().get(&queue.topic).await?;
    Ok(route.master_addr(&queue.broker_name)?.to_owned())
}

/// Where a newly owned queue starts: the stored offset, else per consume-from-where
/// (spec §C.8.2; retry topics start at 0, or at their end for timestamp starts).
pub(crate) async fn start_offset(
    instance: &ClientInstance,
    spec: &GroupSpec,
    offsets: &OffsetStore,
    queue: &MessageQueue,
) -> Result<i64> {
    if let Some(offset) = offsets.read_stored(instance, queue).await?
        && offset >= 0
    {
        return Ok(offset);
    }
    let is_retry = queue.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX);
    let addr = master_addr(instance, queue).await?;
    match spec.consume_from_where {
        ConsumeFromWhere::ConsumeFromFirstOffset => Ok(0),
        ConsumeFromWhere::ConsumeFromTimestamp => {
            if is_retry {
                return api::max_offset(instance, &addr, queue).await;
            }
            let timestamp = spec
                .consume_timestamp_ms
                .unwrap_or_else(|| crate::producer::now_ms() - 30 * 60 * 1000);
            api::search_offset(instance, &addr, queue, timestamp).await
        }
        _ if is_retry => Ok(0),
        _ => api::max_offset(instance, &addr, queue).await,
    }
}

/// Whether a pulled message matches a tag subscription (the broker filters by tag hash;
/// the client checks the tag itself, since hashes collide).
pub(crate) fn matches(
    subscription: &SubscriptionData,
    message: &crate::consumer::message_ext::MessageExt,
) -> bool {
    subscription.tags_set.is_empty()
        || subscription.sub_string == ringmq_wire::body::heartbeat::SUB_ALL
        || message
            .tags()
            .is_some_and(|tag| subscription.tags_set.iter().any(|t| t == tag))
}
