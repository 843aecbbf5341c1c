//! The broker requests consumers make: pull, offsets, group membership, heartbeats, send
//! back, queue locks. Each function is one request; policy (when, how often, what on
//! failure) lives in the consumers.

use std::time::Duration;

use bytes::Bytes;
use ringmq_wire::body::consumer::{
    GetConsumerListByGroupResponseBody, LockBatchRequestBody, LockBatchResponseBody,
};
use ringmq_wire::body::heartbeat::{HeartbeatData, SubscriptionData};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::{
    ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};
use ringmq_wire::header::offset::{
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use ringmq_wire::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use ringmq_wire::header::send::RpcFields;
use ringmq_wire::record::decode_records;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::consumer::message_ext::MessageExt;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::queue::MessageQueue;
use crate::remoting::broker_error;

/// Messages decoded from one pull response at most (a pull asks for 32 by default; the
/// bound guards against a broker sending far more than asked).
pub const PULLED_MESSAGES_MAX: usize = 4096;

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// Messages were returned.
    Found,
    /// Nothing new at the offset (after the long-poll wait).
    NoNewMsg,
    /// Messages exist but none matched the filter.
    NoMatchedMsg,
    /// The offset is outside the queue; restart from `next_begin_offset`.
    OffsetIllegal,
}

/// The result of one pull.
#[derive(Debug, Clone)]
pub struct PullResult {
    /// What was found.
    pub status: PullStatus,
    /// Where the next pull starts.
    pub next_begin_offset: i64,
    /// The queue's smallest offset.
    pub min_offset: i64,
    /// The queue's next offset to be written.
    pub max_offset: i64,
    /// The messages (only for [`PullStatus::Found`]).
    pub messages: Vec<MessageExt>,
}

fn rpc(queue: &MessageQueue) -> RpcFields {
    RpcFields {
        broker_name: Some(queue.broker_name.clone()),
        ..RpcFields::default()
    }
}

/// Sends `command` and waits for a `SUCCESS` answer, whose content is not needed.
async fn invoke_acked(
    instance: &ClientInstance,
    addr: &str,
    command: RemotingCommand,
) -> Result<()> {
    instance
        .remoting()
        .invoke_ok(addr, command, instance.api_timeout())
        .await
        .map(drop)
}

fn request(code: RequestCode, header: &impl CommandHeader) -> RemotingCommand {
    let mut request = RemotingCommand::request(code);
    header.encode_into(&mut request);
    request
}

fn wire(addr: &str) -> impl FnOnce(ringmq_wire::WireError) -> ClientError + '_ {
    move |source| ClientError::Wire {
        addr: addr.to_owned(),
        source,
    }
}

/// `PULL_MESSAGE` with `header` (whose topic and queue id are `queue`'s), waiting up to
/// `timeout` (which must exceed the header's suspend time for a long poll).
pub async fn pull(
    instance: &ClientInstance,
    addr: &str,
    queue: &MessageQueue,
    header: &PullMessageRequestHeader,
    timeout: Duration,
) -> Result<PullResult> {
    let response = instance
        .remoting()
        .invoke(addr, request(RequestCode::PullMessage, header), timeout)
        .await?;
    let status = match ResponseCode::from_i32(response.code) {
        Some(ResponseCode::Success) => PullStatus::Found,
        Some(ResponseCode::PullNotFound) => PullStatus::NoNewMsg,
        Some(ResponseCode::PullRetryImmediately) => PullStatus::NoMatchedMsg,
        Some(ResponseCode::PullOffsetMoved) => PullStatus::OffsetIllegal,
        _ => {
            return Err(broker_error(
                addr,
                RequestCode::PullMessage.as_i32(),
                &response,
            ));
        }
    };
    let fields = PullMessageResponseHeader::decode(&response).map_err(wire(addr))?;
    let messages = if status == PullStatus::Found {
        decode_pulled(addr, queue, response.body)?
    } else {
        Vec::new()
    };
    Ok(PullResult {
        status,
        next_begin_offset: fields.next_begin_offset,
        min_offset: fields.min_offset,
        max_offset: fields.max_offset,
        messages,
    })
}

fn decode_pulled(addr: &str, queue: &MessageQueue, body: Bytes) -> Result<Vec<MessageExt>> {
    let stored = decode_records(&body, true, PULLED_MESSAGES_MAX).map_err(wire(addr))?;
    stored
        .iter()
        .map(|record| MessageExt::from_stored(record, &queue.broker_name))
        .collect()
}

/// `QUERY_CONSUMER_OFFSET`: the group's committed offset of a queue; `None` if the broker
/// has none (`QUERY_NOT_FOUND`).
pub async fn query_consumer_offset(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
) -> Result<Option<i64>> {
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        set_zero_if_not_found: None,
        rpc: rpc(queue),
    };
    let response = instance
        .remoting()
        .invoke(
            addr,
            request(RequestCode::QueryConsumerOffset, &header),
            instance.api_timeout(),
        )
        .await?;
    match ResponseCode::from_i32(response.code) {
        Some(ResponseCode::Success) => Ok(Some(
            QueryConsumerOffsetResponseHeader::decode(&response)
                .map_err(wire(addr))?
                .offset,
        )),
        Some(ResponseCode::QueryNotFound) => Ok(None),
        _ => Err(broker_error(
            addr,
            RequestCode::QueryConsumerOffset.as_i32(),
            &response,
        )),
    }
}

/// `UPDATE_CONSUMER_OFFSET`, oneway (as RocketMQ's periodic persistence sends it).
pub async fn update_consumer_offset_oneway(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> Result<()> {
    instance
        .remoting()
        .invoke_oneway(
            addr,
            update_offset_request(group, queue, offset),
            instance.api_timeout(),
        )
        .await
}

/// `UPDATE_CONSUMER_OFFSET`, waiting for the broker's answer.
pub async fn update_consumer_offset(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> Result<()> {
    invoke_acked(instance, addr, update_offset_request(group, queue, offset)).await
}

/// The `UPDATE_CONSUMER_OFFSET` request both variants send.
fn update_offset_request(group: &str, queue: &MessageQueue, offset: i64) -> RemotingCommand {
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        commit_offset: offset,
        rpc: rpc(queue),
    };
    request(RequestCode::UpdateConsumerOffset, &header)
}

async fn offset_request(
    instance: &ClientInstance,
    addr: &str,
    command: RemotingCommand,
) -> Result<i64> {
    let response = instance
        .remoting()
        .invoke_ok(addr, command, instance.api_timeout())
        .await?;
    Ok(OffsetResponseHeader::decode(&response)
        .map_err(wire(addr))?
        .offset)
}

/// `GET_MAX_OFFSET`: the queue's next offset to be written.
pub async fn max_offset(
    instance: &ClientInstance,
    addr: &str,
    queue: &MessageQueue,
) -> Result<i64> {
    let header = GetMaxOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        committed: None,
        rpc: rpc(queue),
    };
    offset_request(instance, addr, request(RequestCode::GetMaxOffset, &header)).await
}

/// `GET_MIN_OFFSET`: the queue's smallest offset still stored.
pub async fn min_offset(
    instance: &ClientInstance,
    addr: &str,
    queue: &MessageQueue,
) -> Result<i64> {
    let header = GetMinOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        rpc: rpc(queue),
    };
    offset_request(instance, addr, request(RequestCode::GetMinOffset, &header)).await
}

/// `SEARCH_OFFSET_BY_TIMESTAMP`.
pub async fn search_offset(
    instance: &ClientInstance,
    addr: &str,
    queue: &MessageQueue,
    timestamp_ms: i64,
) -> Result<i64> {
    let header = SearchOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        timestamp: timestamp_ms,
        boundary_type: None,
        rpc: rpc(queue),
    };
    offset_request(
        instance,
        addr,
        request(RequestCode::SearchOffsetByTimestamp, &header),
    )
    .await
}

/// `GET_CONSUMER_LIST_BY_GROUP`: the client ids of the group's live members.
pub async fn consumer_ids(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
) -> Result<Vec<String>> {
    let header = GetConsumerListByGroupRequestHeader {
        consumer_group: group.to_owned(),
        rpc: RpcFields::default(),
    };
    let response = instance
        .remoting()
        .invoke_ok(
            addr,
            request(RequestCode::GetConsumerListByGroup, &header),
            instance.api_timeout(),
        )
        .await?;
    Ok(GetConsumerListByGroupResponseBody::decode(&response.body)
        .map_err(wire(addr))?
        .consumer_id_list)
}

/// `HEART_BEAT` with `data`.
pub async fn heartbeat(instance: &ClientInstance, addr: &str, data: &HeartbeatData) -> Result<()> {
    let command = RemotingCommand::request(RequestCode::HeartBeat).with_body(data.encode());
    invoke_acked(instance, addr, command).await
}

/// `CHECK_CLIENT_CONFIG`: asks the broker at `addr` whether it can serve `subscription`
/// (a SQL92 selector must compile there and the broker must have property filtering on),
/// as Java's `checkClientInBroker` does before the first heartbeat. The broker's refusal
/// comes back as [`ClientError::Broker`] with its code and remark (for a syntax error,
/// `SUBSCRIPTION_PARSE_FAILED` and the line and column).
pub async fn check_client_config(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    subscription: &SubscriptionData,
) -> Result<()> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CheckClientRequestBody<'a> {
        client_id: &'a str,
        group: &'a str,
        namespace: Option<&'a str>,
        subscription_data: &'a SubscriptionData,
    }
    let body = CheckClientRequestBody {
        client_id: instance.client_id(),
        group,
        namespace: None,
        subscription_data: subscription,
    };
    let body = serde_json::to_vec(&body).map_err(|e| {
        ClientError::InvalidArgument(format!("cannot encode CHECK_CLIENT_CONFIG body: {e}"))
    })?;
    let command = RemotingCommand::request(RequestCode::CheckClientConfig).with_body(body);
    invoke_acked(instance, addr, command).await
}

/// `UNREGISTER_CLIENT` for a consumer group.
pub async fn unregister_consumer(instance: &ClientInstance, addr: &str, group: &str) -> Result<()> {
    let header = UnregisterClientRequestHeader {
        client_id: instance.client_id().to_owned(),
        producer_group: None,
        consumer_group: Some(group.to_owned()),
        rpc: RpcFields::default(),
    };
    invoke_acked(
        instance,
        addr,
        request(RequestCode::UnregisterClient, &header),
    )
    .await
}

/// `CONSUMER_SEND_MSG_BACK`: hands a message that failed consumption back to the broker,
/// which stores it in the group's retry topic with a growing delay (`delay_level` 0 lets
/// the broker choose, −1 sends it straight to the dead-letter queue).
pub async fn send_back(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    message: &MessageExt,
    delay_level: i32,
    max_reconsume_times: i32,
) -> Result<()> {
    let header = ConsumerSendMsgBackRequestHeader {
        offset: message.commit_log_offset,
        group: group.to_owned(),
        delay_level,
        origin_msg_id: Some(message.msg_id().to_owned()),
        origin_topic: Some(message.original_topic().to_owned()),
        unit_mode: Some(false),
        max_reconsume_times: Some(max_reconsume_times),
        rpc: RpcFields {
            broker_name: Some(message.broker_name.clone()),
            ..RpcFields::default()
        },
    };
    invoke_acked(
        instance,
        addr,
        request(RequestCode::ConsumerSendMsgBack, &header),
    )
    .await
}

/// `LOCK_BATCH_MQ`: locks queues of one broker for this client; returns those now locked.
pub async fn lock_batch(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    queues: &[MessageQueue],
) -> Result<Vec<MessageQueue>> {
    let body = LockBatchRequestBody {
        client_id: instance.client_id().to_owned(),
        consumer_group: group.to_owned(),
        mq_set: queues.to_vec(),
        only_this_broker: false,
    };
    let command = RemotingCommand::request(RequestCode::LockBatchMq).with_body(body.encode());
    let response = instance
        .remoting()
        .invoke_ok(addr, command, instance.api_timeout())
        .await?;
    Ok(LockBatchResponseBody::decode(&response.body)
        .map_err(wire(addr))?
        .lock_ok_mq_set)
}

/// `UNLOCK_BATCH_MQ`: releases queue locks, oneway.
pub async fn unlock_batch(
    instance: &ClientInstance,
    addr: &str,
    group: &str,
    queues: &[MessageQueue],
) -> Result<()> {
    let body = LockBatchRequestBody {
        client_id: instance.client_id().to_owned(),
        consumer_group: group.to_owned(),
        mq_set: queues.to_vec(),
        only_this_broker: false,
    };
    let command = RemotingCommand::request(RequestCode::UnlockBatchMq).with_body(body.encode());
    instance
        .remoting()
        .invoke_oneway(addr, command, instance.api_timeout())
        .await
}
