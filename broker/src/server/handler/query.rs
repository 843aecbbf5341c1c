//! Message lookups: `QUERY_MESSAGE` (12, by key or unique key through the index) and
//! `VIEW_MESSAGE_BY_ID` (33, by CommitLog offset decoded from an offset msgId).

use bytes::BytesMut;
use ringmq_wire::header::query::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::handler::{HandlerResult, decode_header, error, success, success_with};
use crate::server::state::ShardState;
use crate::server::store::ShardStore;

/// Most messages one query returns (RocketMQ's `maxMsgsNumBatch` default, 64).
pub const QUERY_MESSAGES_MAX: usize = 64;

/// `QUERY_MESSAGE`: messages of a topic indexed under a key, in a time range.
pub fn query_message<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: QueryMessageRequestHeader = decode_header(request)?;
    let max = usize::try_from(h.max_num)
        .unwrap_or(0)
        .clamp(1, QUERY_MESSAGES_MAX);
    let records = state
        .store
        .query_by_key(&h.topic, &h.key, max, h.begin_timestamp, h.end_timestamp)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    let mut body = BytesMut::new();
    for record in records {
        body.extend_from_slice(&record);
    }
    if body.is_empty() {
        return Err(error(
            request,
            ResponseCode::QueryNotFound,
            "can not find message, maybe time range not correct",
        ));
    }
    let mut response = success_with(
        request,
        &QueryMessageResponseHeader {
            index_last_update_timestamp: 0,
            index_last_update_phyoffset: state.store.commit_log_max_offset(),
        },
    );
    response.body = body.freeze();
    Ok(Some(response))
}

/// `VIEW_MESSAGE_BY_ID`: the record at a CommitLog offset.
pub fn view_message_by_id<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: ViewMessageRequestHeader = decode_header(request)?;
    match state.store.read_at(h.offset) {
        Ok(record) => Ok(Some(success(request).with_body(record))),
        Err(e) => Err(error(
            request,
            ResponseCode::SystemError,
            format!("can not find message by the offset, {}: {e}", h.offset),
        )),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
