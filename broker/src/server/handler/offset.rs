//! Offsets: `QUERY_CONSUMER_OFFSET` (14), `UPDATE_CONSUMER_OFFSET` (15),
//! `GET_MAX_OFFSET` (30), `GET_MIN_OFFSET` (31). (`SEARCH_OFFSET_BY_TIMESTAMP` and
//! `GET_EARLIEST_MSG_STORETIME`, which read records, are in [`super::search_offset`].)

use ringmq_wire::header::offset::{
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::handler::{HandlerResult, decode_header, error, success, success_with};
use crate::server::offset::{OffsetAnswer, answer_query};
use crate::server::state::ShardState;
use crate::server::store::ShardStore;

/// `QUERY_CONSUMER_OFFSET`: the committed offset; for a group without one, 0 while the
/// queue still starts at 0 and its first message is hot, else QUERY_NOT_FOUND.
pub fn query_consumer_offset<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: QueryConsumerOffsetRequestHeader = decode_header(request)?;
    let committed = state.offsets.query(&h.consumer_group, &h.topic, h.queue_id);
    let min = state.store.min_offset(&h.topic, h.queue_id);
    let hot = state.store.is_hot(&h.topic, h.queue_id, 0);
    match answer_query(committed, min, hot, h.set_zero_if_not_found) {
        OffsetAnswer::Offset(offset) => Ok(Some(success_with(
            request,
            &QueryConsumerOffsetResponseHeader { offset },
        ))),
        OffsetAnswer::NotFound => Err(error(
            request,
            ResponseCode::QueryNotFound,
            "Not found, maybe this group consumer boot first",
        )),
    }
}

/// `UPDATE_CONSUMER_OFFSET` (usually oneway): records the offset.
pub fn update_consumer_offset<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: UpdateConsumerOffsetRequestHeader = decode_header(request)?;
    let Some(topic) = state.topics.get(&h.topic) else {
        return Err(error(
            request,
            ResponseCode::TopicNotExist,
            format!("Topic {} not exist!", h.topic),
        ));
    };
    if h.queue_id < 0 || h.queue_id >= topic.read_queue_nums.max(topic.write_queue_nums) {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("QueueId {} is illegal for topic {}", h.queue_id, h.topic),
        ));
    }
    if !state
        .offsets
        .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset)
    {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "offset {} not recorded (negative, or table full)",
                h.commit_offset
            ),
        ));
    }
    Ok(Some(success(request)))
}

/// `GET_MAX_OFFSET`: the offset the next message of the queue will get.
pub fn get_max_offset<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetMaxOffsetRequestHeader = decode_header(request)?;
    let offset = state.store.max_offset(&h.topic, h.queue_id);
    Ok(Some(success_with(
        request,
        &OffsetResponseHeader { offset },
    )))
}

/// `GET_MIN_OFFSET`.
pub fn get_min_offset<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetMinOffsetRequestHeader = decode_header(request)?;
    let offset = state.store.min_offset(&h.topic, h.queue_id);
    Ok(Some(success_with(
        request,
        &OffsetResponseHeader { offset },
    )))
}

#[cfg(test)]
#[path = "offset_tests.rs"]
mod tests;
