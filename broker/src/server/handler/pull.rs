//! `PULL_MESSAGE` (11) and `LITE_PULL_MESSAGE` (361), as RocketMQ's `PullMessageProcessor`
//! and `DefaultMessageStore.getMessage` answer them: permission, group and subscription
//! checks; the read with tag filtering (ConsumeQueue tag hash, then the record's exact tag);
//! the offset-moved/illegal statuses and `nextBeginOffset` corrections; the piggy-backed
//! offset commit; and long polling of pulls that find nothing.
//!
//! SQL92 subscriptions are compiled and applied by `crate::features::filter`.
//!
//! The body of a FOUND response is the stored records, concatenated byte for byte: in memory
//! when they all are (tail cache), otherwise parked in [`crate::server::body`] so that the
//! connection writer splices the records from the CommitLog files.

use bytes::{Bytes, BytesMut};
use ringmq_wire::body::heartbeat::SubscriptionData;
use ringmq_wire::header::pull::{
    PullMessageRequestHeader, PullMessageResponseHeader, pull_sys_flag,
};
use ringmq_wire::record::StoredMessage;
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::features::filter::{self, SqlFilter};
use crate::server::consumer::{MessageModel, matches_all, matches_tags};
use crate::server::handler::{HandlerResult, decode_header, error};
use crate::server::state::{Conn, ParkedPull, ShardState};
use crate::server::store::{
    GetStatus, QueueRead, QueueReadResult, RecordBytes, ShardStore, StoreError,
};
use crate::server::topic::perm;

/// Longest suspend a client may ask for; longer requests are clamped (clients use 15–30 s).
pub const SUSPEND_MS_MAX: u64 = 60_000;

/// Reads a queue through the store (ConsumeQueue tag-hash filter), then keeps only the
/// in-memory records whose exact tag matches the subscription (hash codes collide). Records
/// left in the files for `splice` are filtered by tag hash only, as RocketMQ's broker does:
/// clients check the exact tag again. A record that does not decode is passed through
/// untouched, as RocketMQ does: the client reports it. With a SQL92 `sql` filter, records
/// are read into memory and judged on their properties instead (never spliced).
pub fn read_queue<S: ShardStore>(
    store: &S,
    read: &QueueRead<'_>,
    subscription: &SubscriptionData,
    sql: Option<&SqlFilter>,
) -> Result<QueueReadResult, StoreError> {
    if let Some(sql) = sql {
        return filter::read_filtered(store, read, sql);
    }
    let mut result = store.get(read)?;
    if !matches_all(subscription) {
        result.records.retain(|record| {
            let Some(record) = record.memory() else {
                return true;
            };
            StoredMessage::decode(record, false)
                .map(|m| matches_tags(subscription, m.tags()))
                .unwrap_or(true)
        });
        if result.status == GetStatus::Found && result.records.is_empty() {
            result.status = GetStatus::NoMatchedMessage;
        }
    }
    Ok(result)
}

/// Handles a pull as it arrives (suspension allowed).
pub fn handle<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    process(state, conn, request, true, PAGE_LOADS_MAX, now_ms)
}

/// Re-runs a parked pull after a wake-up or its timeout (no second suspension).
pub fn rerun<S: ShardStore>(
    state: &mut ShardState<S>,
    parked: ParkedPull,
    now_ms: u64,
) -> Option<RemotingCommand> {
    match process(
        state,
        parked.conn,
        &parked.request,
        false,
        PAGE_LOADS_MAX,
        now_ms,
    ) {
        Ok(response) => response,
        Err(error) => Some(error),
    }
}

fn process<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    allow_suspend: bool,
    page_loads_left: u32,
    now_ms: u64,
) -> HandlerResult {
    let header: PullMessageRequestHeader = decode_header(request)?;
    let (subscription, registered) = check(state, request, &header, now_ms)?;
    let sql = filter::for_subscription(
        &mut state.filters,
        state.config.filter.enable_property_filter,
        &header.consumer_group,
        &subscription,
        registered,
    )
    .map_err(|e| {
        tracing::info!(target: "ringmq::server::pull", group = %header.consumer_group,
            topic = %header.topic, error = %e, "pull subscription rejected");
        error(request, e.response_code(), e.to_string())
    })?;
    let max_msgs = usize::try_from(header.max_msg_nums)
        .unwrap_or(0)
        .clamp(1, state.config.limits.max_pull_messages);
    let max_bytes = header
        .max_msg_bytes
        .and_then(|b| usize::try_from(b).ok())
        .filter(|b| *b > 0)
        .unwrap_or(usize::MAX)
        .min(state.config.limits.max_pull_bytes);
    let codes: Vec<i64> = subscription
        .code_set
        .iter()
        .map(|c| i64::from(*c))
        .collect();
    let read = QueueRead {
        topic: &header.topic,
        queue_id: header.queue_id,
        offset: header.queue_offset,
        max_count: max_msgs,
        max_bytes,
        tag_codes: (!matches_all(&subscription)).then_some(codes.as_slice()),
        splice: sql.is_none() && state.config.store.splice_pulls,
    };
    if page_loads_left > 0
        && state.deferred.enabled()
        && let Some(load) = state.store.load_for(&read)
    {
        return defer_page_load(state, conn, request, allow_suspend, page_loads_left, load);
    }
    let result = read_queue(&state.store, &read, &subscription, sql.as_deref()).map_err(|e| {
        tracing::warn!(target: "ringmq::server::pull", error = %e, "store read failed");
        error(request, ResponseCode::SystemError, e.to_string())
    })?;
    let code = response_code(result.status, header.queue_offset);
    let mut response = RemotingCommand::response_to(request, code);
    use ringmq_wire::header::CommandHeader;
    PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: result.next_begin_offset,
        min_offset: result.min_offset,
        max_offset: result.max_offset,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    }
    .encode_into(&mut response);
    let outcome = match code {
        ResponseCode::Success => {
            let total: usize = result.records.iter().map(RecordBytes::len).sum();
            state.stats.get_messages += result.records.len() as u64;
            state.stats.get_bytes += total as u64;
            let in_memory: Option<Vec<&Bytes>> =
                result.records.iter().map(RecordBytes::memory).collect();
            match in_memory {
                Some(records) => {
                    let mut body = BytesMut::with_capacity(total);
                    for record in records {
                        body.extend_from_slice(record);
                    }
                    response.body = body.freeze();
                }
                // Some records are only in the files: the writer splices them after the
                // response's header frame.
                None => state
                    .bodies
                    .put(conn.id, response.opaque, coalesce(result.records)),
            }
            Some(response)
        }
        ResponseCode::PullNotFound if allow_suspend && header.has_flag(pull_sys_flag::SUSPEND) => {
            let hold_ms = if state.config.polling.long_polling {
                u64::try_from(header.suspend_timeout_millis)
                    .unwrap_or(0)
                    .min(SUSPEND_MS_MAX)
            } else {
                state.config.polling.short_polling_time_ms
            };
            let parked = ParkedPull {
                conn,
                request: request.clone(),
            };
            match state.pulls.park(
                &header.topic,
                header.queue_id,
                header.queue_offset,
                conn.id,
                now_ms + hold_ms,
                parked,
            ) {
                Ok(_) => None,
                Err(_) => Some(response),
            }
        }
        ResponseCode::PullOffsetMoved => {
            tracing::info!(target: "ringmq::server::pull", group = %header.consumer_group,
                topic = %header.topic, queue = header.queue_id, request_offset = header.queue_offset,
                next = result.next_begin_offset, min = result.min_offset, max = result.max_offset,
                "pull offset moved");
            response.remark = Some(format!(
                "the request offset {} is not in the queue [{}, {}), fix it to {}",
                header.queue_offset, result.min_offset, result.max_offset, result.next_begin_offset
            ));
            Some(response)
        }
        _ => Some(response),
    };
    let commit = allow_suspend && header.has_flag(pull_sys_flag::COMMIT_OFFSET);
    if commit {
        state.offsets.commit(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
    }
    Ok(outcome)
}

/// Page loads one pull may wait for before it reads what is still missing on the shard
/// thread: a filtered scan covers at most 16 Ki entries, 16 pages of 1024.
const PAGE_LOADS_MAX: u32 = 16;

/// The pull needs a ConsumeQueue page that is no longer in memory: a deferred task reads it
/// on the shard's ring ([`crate::server::deferred`]) and the pull runs again once it is in
/// the store's page cache, answering through the outbox. Past
/// [`crate::server::deferred::DEFERRED_TASKS_MAX`] tasks the pull is answered `SYSTEM_BUSY`.
fn defer_page_load<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    allow_suspend: bool,
    page_loads_left: u32,
    load: crate::server::store::ReadFuture<()>,
) -> HandlerResult {
    let kept = request.clone();
    let spawned = state.deferred.spawn(async move {
        let loaded = load.await;
        Box::new(move |state: &mut ShardState<S>, now_ms: u64| {
            // A failed load leaves the page to the read itself, which reports any error.
            let left = match loaded {
                Ok(()) => page_loads_left - 1,
                Err(error) => {
                    tracing::warn!(target: "ringmq::server::pull", %error,
                        "queue page read on the ring failed");
                    0
                }
            };
            let response = match process(state, conn, &kept, allow_suspend, left, now_ms) {
                Ok(response) => response,
                Err(error) => Some(error),
            };
            if let Some(response) = response {
                state.respond_later(conn.id, response);
            }
        }) as crate::server::deferred::Continuation<S>
    });
    match spawned {
        Ok(()) => Ok(None),
        Err(e) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
    }
}

/// Merges file spans that follow each other in the same segment (records stored back to
/// back), so that a batch of cold records is one splice, not one per record.
fn coalesce(records: Vec<RecordBytes>) -> Vec<RecordBytes> {
    let mut parts: Vec<RecordBytes> = Vec::with_capacity(records.len());
    for record in records {
        if let (Some(RecordBytes::File(last)), RecordBytes::File(next)) =
            (parts.last_mut(), &record)
            && last.path == next.path
            && last.offset + u64::from(last.len) == next.offset
            && let Some(len) = last.len.checked_add(next.len)
        {
            last.len = len;
            // Both guards pin the same segment; one is enough.
            continue;
        }
        parts.push(record);
    }
    parts
}

/// RocketMQ's status → response code mapping.
pub fn response_code(status: GetStatus, request_offset: i64) -> ResponseCode {
    match status {
        GetStatus::Found => ResponseCode::Success,
        GetStatus::MessageWasRemoving | GetStatus::NoMatchedMessage => {
            ResponseCode::PullRetryImmediately
        }
        GetStatus::NoMatchedLogicQueue | GetStatus::NoMessageInQueue => {
            if request_offset != 0 {
                ResponseCode::PullOffsetMoved
            } else {
                ResponseCode::PullNotFound
            }
        }
        GetStatus::OffsetFoundNull | GetStatus::OffsetOverflowOne => ResponseCode::PullNotFound,
        GetStatus::OffsetOverflowBadly | GetStatus::OffsetTooSmall => ResponseCode::PullOffsetMoved,
    }
}

/// Permission, group, topic, queue and subscription checks; returns the subscription to
/// filter with, and whether it came from the group's heartbeat (not the pull header).
fn check<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    now_ms: u64,
) -> Result<(SubscriptionData, bool), RemotingCommand> {
    let addr = state.identity.store_host;
    if !perm::is_readable(state.config.broker.permission as i32) {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!("the broker[{addr}] pulling message is forbidden"),
        ));
    }
    let group = state
        .groups
        .find_or_create(&header.consumer_group, now_ms)
        .map_err(|e| {
            error(
                request,
                ResponseCode::SubscriptionGroupNotExist,
                e.to_string(),
            )
        })?;
    if !group.consume_enable {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!(
                "subscription group [{}] no permission",
                header.consumer_group
            ),
        ));
    }
    let Some(topic) = state.topics.get(&header.topic) else {
        return Err(error(
            request,
            ResponseCode::TopicNotExist,
            format!("topic[{}] not exist, apply first please!", header.topic),
        ));
    };
    if !perm::is_readable(topic.perm) {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!("the topic[{}] pulling message is forbidden", header.topic),
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic.read_queue_nums {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[{}]",
                header.queue_id,
                header.topic,
                topic.read_queue_nums,
                conn_hint(request)
            ),
        ));
    }
    if header.has_flag(pull_sys_flag::SUBSCRIPTION) {
        let expression = header.subscription.clone().unwrap_or_default();
        let expression_type = header.expression_type.as_deref().unwrap_or_default();
        if filter::is_tag_type(expression_type) {
            let tags = SubscriptionData::tags(&header.topic, &expression, header.sub_version);
            return Ok((tags, false));
        }
        let sql = SubscriptionData {
            topic: header.topic.clone(),
            sub_string: expression,
            sub_version: header.sub_version,
            expression_type: expression_type.to_owned(),
            ..SubscriptionData::default()
        };
        return Ok((sql, false));
    }
    let Some(info) = state.consumers.group(&header.consumer_group) else {
        return Err(error(
            request,
            ResponseCode::SubscriptionNotExist,
            format!(
                "the consumer's group info not exist, group: {}",
                header.consumer_group
            ),
        ));
    };
    if !group.consume_broadcast_enable && info.message_model == MessageModel::Broadcasting {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!(
                "the consumer group[{}] can not consume by broadcast way",
                header.consumer_group
            ),
        ));
    }
    let Some(subscription) = info.subscriptions.get(&header.topic) else {
        return Err(error(
            request,
            ResponseCode::SubscriptionNotExist,
            format!(
                "the consumer's subscription not exist, group: {} topic: {}",
                header.consumer_group, header.topic
            ),
        ));
    };
    if subscription.sub_version < header.sub_version {
        return Err(error(
            request,
            ResponseCode::SubscriptionNotLatest,
            format!(
                "the consumer's subscription not latest, group: {} topic: {}",
                header.consumer_group, header.topic
            ),
        ));
    }
    Ok((subscription.clone(), true))
}

fn conn_hint(request: &RemotingCommand) -> String {
    request.ext("consumerGroup").unwrap_or_default().to_owned()
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
