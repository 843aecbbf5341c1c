//! Message lookups: `QUERY_MESSAGE` (12, by key or unique key through the index) and
//! `VIEW_MESSAGE_BY_ID` (33, by CommitLog offset decoded from an offset msgId).
//!
//! Neither blocks the shard on the disk: records in memory (tail cache, write buffers) are
//! answered at once; records on disk, and the IndexFile slots and entries of a key query
//! that are not held in memory, are read on the shard's io_uring by a deferred task
//! ([`crate::server::deferred`]) while the shard serves other requests, and the answer goes
//! out when the read completes. Past [`crate::server::deferred::DEFERRED_TASKS_MAX`] reads in
//! flight a query is answered `SYSTEM_BUSY`.

use bytes::{Bytes, BytesMut};
use ringmq_wire::header::query::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::deferred::Continuation;
use crate::server::handler::{HandlerResult, decode_header, error, success, success_with};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{RecordRead, RecordsRead, ShardStore, StoreError};

/// Most messages one query returns (RocketMQ's `maxMsgsNumBatch` default, 64).
pub const QUERY_MESSAGES_MAX: usize = 64;

/// `QUERY_MESSAGE`: messages of a topic indexed under a key, in a time range.
pub fn query_message<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: QueryMessageRequestHeader = decode_header(request)?;
    let max = usize::try_from(h.max_num)
        .unwrap_or(0)
        .clamp(1, QUERY_MESSAGES_MAX);
    let read =
        state
            .store
            .query_by_key_read(&h.topic, &h.key, max, h.begin_timestamp, h.end_timestamp);
    answer_records(state, conn, request, read, (h.topic, h.key, max))
}

/// Answers a key query from `read`: now, after the records are read, or after the index
/// entries and then the records are read (each a deferred task).
fn answer_records<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    read: RecordsRead,
    (topic, key, max): (String, String, usize),
) -> HandlerResult {
    match read {
        RecordsRead::Ready(records) => query_answer(state, request, records).map(Some),
        RecordsRead::Pending(read) => {
            let request = header_only(request);
            defer(state, &request.clone(), async move {
                let records = read.await;
                Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                    let response = query_answer(state, &request, records).unwrap_or_else(|e| e);
                    state.respond_later(conn.id, response);
                }) as Continuation<S>
            })
        }
        RecordsRead::Index(read) => {
            let request = header_only(request);
            defer(state, &request.clone(), async move {
                let candidates = read.await;
                Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                    let read = match candidates {
                        Ok(candidates) => {
                            state.store.candidates_read(&topic, &key, max, candidates)
                        }
                        Err(error) => RecordsRead::Ready(Err(error)),
                    };
                    match answer_records(state, conn, &request, read, (topic, key, max)) {
                        Ok(Some(response)) | Err(response) => {
                            state.respond_later(conn.id, response)
                        }
                        Ok(None) => {}
                    }
                }) as Continuation<S>
            })
        }
    }
}

fn query_answer<S: ShardStore>(
    state: &ShardState<S>,
    request: &RemotingCommand,
    records: Result<Vec<Bytes>, StoreError>,
) -> Result<RemotingCommand, RemotingCommand> {
    let records = records.map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
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
    Ok(response)
}

/// `VIEW_MESSAGE_BY_ID`: the record at a CommitLog offset.
pub fn view_message_by_id<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: ViewMessageRequestHeader = decode_header(request)?;
    let offset = h.offset;
    match state.store.read_record(offset) {
        RecordRead::Ready(record) => view_answer(request, offset, record).map(Some),
        RecordRead::Pending(read) => {
            let request = header_only(request);
            defer(state, &request.clone(), async move {
                let record = read.await;
                Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                    let record = match record {
                        // Written while it was located: it is in memory now.
                        Err(e) if crate::server::ring_read::is_past_written(&e) => {
                            state.store.read_at(offset)
                        }
                        other => other,
                    };
                    let response = view_answer(&request, offset, record).unwrap_or_else(|e| e);
                    state.respond_later(conn.id, response);
                }) as Continuation<S>
            })
        }
    }
}

fn view_answer(
    request: &RemotingCommand,
    offset: i64,
    record: Result<Bytes, StoreError>,
) -> Result<RemotingCommand, RemotingCommand> {
    match record {
        Ok(record) => Ok(success(request).with_body(record)),
        Err(e) => Err(error(
            request,
            ResponseCode::SystemError,
            format!("can not find message by the offset, {offset}: {e}"),
        )),
    }
}

/// The request without its body: what a deferred answer needs (opaque, encoding).
fn header_only(request: &RemotingCommand) -> RemotingCommand {
    let mut kept = request.clone();
    kept.body = Bytes::new();
    kept
}

/// Starts a deferred read; `SYSTEM_BUSY` when the shard has too many in flight.
fn defer<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    task: impl std::future::Future<Output = Continuation<S>> + 'static,
) -> HandlerResult {
    match state.deferred.spawn(task) {
        Ok(()) => Ok(None),
        Err(e) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
