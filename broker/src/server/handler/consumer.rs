//! Client management: `HEART_BEAT` (34), `UNREGISTER_CLIENT` (35),
//! `GET_CONSUMER_LIST_BY_GROUP` (38), `LOCK_BATCH_MQ` (41), `UNLOCK_BATCH_MQ` (42), as
//! RocketMQ's `ClientManageProcessor`/`ConsumerManageProcessor`/`AdminBrokerProcessor` answer
//! them.

use ringmq_wire::body::consumer::{
    GetConsumerListByGroupResponseBody, LockBatchRequestBody, LockBatchResponseBody,
};
use ringmq_wire::body::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
use ringmq_wire::header::consumer::{
    GetConsumerListByGroupRequestHeader, UnregisterClientRequestHeader,
};
use ringmq_wire::record::tag_hash_code;
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::ClientInfo;
use crate::server::consumer::ConsumerHeartbeat;
use crate::server::handler::{HandlerResult, decode_header, error, success, wire_error};
use crate::server::state::{Conn, ShardState};
use crate::server::store::ShardStore;

/// Most queues in one lock/unlock request (a client locks the queues it owns on one broker).
pub const LOCK_BATCH_QUEUES_MAX: usize = 10_000;

/// `HEART_BEAT`: registers the client's producer and consumer groups, creates each consumer
/// group's retry topic, and notifies a group's members when a new client joined.
pub fn heartbeat<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let data = HeartbeatData::decode(&request.body).map_err(|e| wire_error(request, &e))?;
    if data.client_id.is_empty() {
        return Err(error(
            request,
            ResponseCode::SystemError,
            "heartbeat without clientID",
        ));
    }
    let client = ClientInfo {
        conn_id: conn.id,
        client_id: data.client_id.clone(),
        remote_addr: conn.remote.to_string(),
        language: request.language,
        version: request.version,
        last_update_ms: now_ms,
    };
    for consumer in data.consumer_data_set {
        register_consumer(state, request, consumer, client.clone(), now_ms)?;
    }
    for producer in data.producer_data_set {
        if !state
            .producers
            .register(&producer.group_name, client.clone())
        {
            return Err(error(
                request,
                ResponseCode::SystemBusy,
                "too many producers on this broker",
            ));
        }
    }
    Ok(Some(success(request)))
}

fn register_consumer<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    consumer: ConsumerData,
    client: ClientInfo,
    now_ms: u64,
) -> Result<(), RemotingCommand> {
    let group = consumer.group_name.clone();
    let config = state.groups.find_or_create(&group, now_ms).map_err(|e| {
        error(
            request,
            ResponseCode::SubscriptionGroupNotExist,
            e.to_string(),
        )
    })?;
    let (_, created) = state
        .topics
        .find_or_create_retry_topic(&group, config.retry_queue_nums, now_ms)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    if created {
        state.request_register();
    }
    let heartbeat = ConsumerHeartbeat {
        group,
        consume_type: consumer.consume_type,
        message_model: consumer.message_model,
        consume_from_where: consumer.consume_from_where,
        subscriptions: consumer
            .subscription_data_set
            .into_iter()
            .map(with_codes)
            .collect(),
    };
    // Compile SQL92 subscriptions now (RocketMQ's ConsumerFilterManager.register): a broken
    // one is logged here, and pulls find it compiled. The heartbeat itself succeeds either way.
    for sub in &heartbeat.subscriptions {
        if let Err(e) = crate::features::filter::for_subscription(
            &mut state.filters,
            state.config.filter.enable_property_filter,
            &heartbeat.group,
            sub,
            true,
        ) {
            tracing::warn!(target: "ringmq::server::consumer", group = %heartbeat.group,
                topic = %sub.topic, error = %e, "consumer subscription cannot be served");
        }
    }
    let changed = state
        .consumers
        .register(heartbeat, client)
        .map_err(|e| error(request, ResponseCode::SystemBusy, e.to_string()))?;
    if let Some(event) = changed {
        state.notify_ids_changed(vec![event]);
    }
    Ok(())
}

/// Recomputes the tag codes from the tags: not every client fills `codeSet`.
fn with_codes(mut sub: SubscriptionData) -> SubscriptionData {
    sub.code_set = sub
        .tags_set
        .iter()
        .map(|t| tag_hash_code(Some(t)) as i32)
        .collect();
    sub
}

/// `UNREGISTER_CLIENT`: removes the client from its producer and consumer groups.
pub fn unregister<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    _now_ms: u64,
) -> HandlerResult {
    let header: UnregisterClientRequestHeader = decode_header(request)?;
    if let Some(group) = &header.producer_group {
        state.producers.unregister(group, &header.client_id);
    }
    if let Some(group) = &header.consumer_group
        && let Some(event) = state.consumers.unregister(group, &header.client_id)
    {
        state.notify_ids_changed(vec![event]);
    }
    Ok(Some(success(request)))
}

/// `GET_CONSUMER_LIST_BY_GROUP`: the live client ids of that group only.
pub fn consumer_list<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let header: GetConsumerListByGroupRequestHeader = decode_header(request)?;
    let ids = state.consumers.client_ids(&header.consumer_group);
    if ids.is_empty() {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("no consumer for this group, {}", header.consumer_group),
        ));
    }
    let body = GetConsumerListByGroupResponseBody {
        consumer_id_list: ids,
    };
    Ok(Some(success(request).with_body(body.encode())))
}

fn lock_body(request: &RemotingCommand) -> Result<LockBatchRequestBody, RemotingCommand> {
    let body = LockBatchRequestBody::decode(&request.body).map_err(|e| wire_error(request, &e))?;
    if body.mq_set.len() > LOCK_BATCH_QUEUES_MAX {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "{} queues in one lock request; the limit is {LOCK_BATCH_QUEUES_MAX}",
                body.mq_set.len()
            ),
        ));
    }
    Ok(body)
}

/// `LOCK_BATCH_MQ`: locks what can be locked; answers the locked set.
pub fn lock_batch<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let body = lock_body(request)?;
    let locked =
        state
            .locks
            .try_lock_batch(&body.consumer_group, &body.mq_set, &body.client_id, now_ms);
    let response = LockBatchResponseBody {
        lock_ok_mq_set: locked,
    };
    Ok(Some(success(request).with_body(response.encode())))
}

/// `UNLOCK_BATCH_MQ`: releases the client's locks among the queues.
pub fn unlock_batch<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let body = lock_body(request)?;
    state
        .locks
        .unlock_batch(&body.consumer_group, &body.mq_set, &body.client_id);
    Ok(Some(success(request)))
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
