//! `SEARCH_OFFSET_BY_TIMESTAMP` (29) without blocking the shard on the disk: the binary
//! search over a queue's store times reads each probed record from memory when it is there,
//! and from its segment file on the shard's io_uring otherwise, resuming the search in a
//! deferred task's continuation ([`crate::server::deferred`]). The shard serves other
//! requests while a probe waits for the disk.
//!
//! The answer is RocketMQ's: with `boundaryType` lower (default) the first offset whose
//! message was stored at or after the time (the max offset when none is); with upper the last
//! offset stored at or before it (the min offset when none is). Without a task spawner
//! (tests over the in-memory store) the store's own lookup answers at once.
//!
//! `GET_EARLIEST_MSG_STORETIME` (32) probes the queue's first record the same way.
//!
//! [`offset_by_time`] is the search itself, for other handlers that need a queue offset by
//! time (`INVOKE_BROKER_TO_RESET_OFFSET`): it answers at once when every probe was in memory,
//! or later through a callback, carrying the caller's state (`payload`) either way.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_wire::header::offset::{
    GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    OffsetResponseHeader, SearchOffsetRequestHeader,
};
use ringmq_wire::record::{RecordAt, decode_record_at};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::deferred::{Continuation, DeferError};
use crate::server::handler::{HandlerResult, decode_header, error, success_with};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{Boundary, QueueRead, ReadFuture, RecordBytes, ShardStore};

/// Which offset to look for: the queue and the time.
#[derive(Debug, Clone)]
pub(crate) struct TimeQuery {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Store time, ms since the epoch.
    pub timestamp_ms: i64,
    /// Which end of a run of equal store times.
    pub boundary: Boundary,
}

/// What [`offset_by_time`] calls when the search had to wait for the disk: the state, the
/// caller's payload, and the offset (or why the search could not go on).
pub(crate) type Then<S, T> = fn(&mut ShardState<S>, T, Result<i64, DeferError>);

/// The outcome of [`offset_by_time`].
pub(crate) enum Found<T> {
    /// Found without waiting; the payload comes back.
    Now(i64, T),
    /// A probe waits for the disk: `then` gets the offset and the payload later.
    Later,
}

/// A search in progress: the half-open range `[lo, hi)` of queue offsets that may hold the
/// first message stored at or after `target_ms`.
struct Search<S, T> {
    topic: String,
    queue_id: i32,
    target_ms: i64,
    boundary: Boundary,
    min: i64,
    lo: i64,
    hi: i64,
    payload: T,
    then: Then<S, T>,
}

/// How a run of the search ended.
enum Outcome<S, T> {
    Done(i64, T, Then<S, T>),
    Waiting,
    Failed(DeferError, T, Then<S, T>),
}

/// The store time of the message at one offset: known now, read later, or unknown.
enum Probe {
    Now(i64),
    Later(ReadFuture<Bytes>),
    Unknown,
}

/// The offset of `query`'s queue for its time; see the module docs. `Err` (with the payload
/// back) when a probe needed the disk and the shard has too many deferred tasks.
pub(crate) fn offset_by_time<S: ShardStore, T: 'static>(
    state: &mut ShardState<S>,
    query: TimeQuery,
    payload: T,
    then: Then<S, T>,
) -> Result<Found<T>, (DeferError, T)> {
    if !state.deferred.enabled() {
        let offset = state.store.offset_by_time(
            &query.topic,
            query.queue_id,
            query.timestamp_ms,
            query.boundary,
        );
        return Ok(Found::Now(offset, payload));
    }
    let min = state.store.min_offset(&query.topic, query.queue_id);
    let max = state.store.max_offset(&query.topic, query.queue_id);
    let search = Search {
        target_ms: match query.boundary {
            Boundary::Lower => query.timestamp_ms,
            Boundary::Upper => query.timestamp_ms.saturating_add(1),
        },
        topic: query.topic,
        queue_id: query.queue_id,
        boundary: query.boundary,
        min,
        lo: min,
        hi: max,
        payload,
        then,
    };
    match run(state, search) {
        Outcome::Done(offset, payload, _) => Ok(Found::Now(offset, payload)),
        Outcome::Waiting => Ok(Found::Later),
        Outcome::Failed(error, payload, _) => Err((error, payload)),
    }
}

/// `SEARCH_OFFSET_BY_TIMESTAMP`.
pub fn search_offset_by_timestamp<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: SearchOffsetRequestHeader = decode_header(request)?;
    let boundary = match h.boundary_type.as_deref() {
        Some(b) if b.eq_ignore_ascii_case("upper") => Boundary::Upper,
        _ => Boundary::Lower,
    };
    let mut kept = request.clone();
    kept.body = Bytes::new();
    let query = TimeQuery {
        topic: h.topic,
        queue_id: h.queue_id,
        timestamp_ms: h.timestamp,
        boundary,
    };
    let then: Then<S, (Conn, RemotingCommand)> = |state, (conn, request), found| {
        let response = match found {
            Ok(offset) => answer(&request, offset),
            Err(e) => error(&request, ResponseCode::SystemBusy, e.to_string()),
        };
        state.respond_later(conn.id, response);
    };
    match offset_by_time(state, query, (conn, kept), then) {
        Ok(Found::Now(offset, _)) => Ok(Some(answer(request, offset))),
        Ok(Found::Later) => Ok(None),
        Err((e, _)) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
    }
}

/// `GET_EARLIEST_MSG_STORETIME` (32): the store time of the queue's first message, `-1`
/// when the queue is empty; the record is read on the ring when it is not in memory (it
/// usually is not: it is the oldest).
pub fn get_earliest_msg_storetime<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetEarliestMsgStoretimeRequestHeader = decode_header(request)?;
    let min = state.store.min_offset(&h.topic, h.queue_id);
    let earliest = |request: &RemotingCommand, timestamp: i64| {
        success_with(
            request,
            &GetEarliestMsgStoretimeResponseHeader { timestamp },
        )
    };
    if !state.deferred.enabled() {
        let timestamp = state
            .store
            .store_time(&h.topic, h.queue_id, min)
            .unwrap_or(-1);
        return Ok(Some(earliest(request, timestamp)));
    }
    match probe(state, &h.topic, h.queue_id, min) {
        Probe::Now(ts) => Ok(Some(earliest(request, ts))),
        Probe::Unknown => Ok(Some(earliest(request, -1))),
        Probe::Later(read) => {
            let mut kept = request.clone();
            kept.body = Bytes::new();
            let spawned = state.deferred.spawn(async move {
                let read = read.await;
                Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                    let ts = read.ok().and_then(|raw| store_time(&raw)).unwrap_or(-1);
                    state.respond_later(conn.id, earliest(&kept, ts));
                }) as Continuation<S>
            });
            match spawned {
                Ok(()) => Ok(None),
                Err(e) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
            }
        }
    }
}

fn answer(request: &RemotingCommand, offset: i64) -> RemotingCommand {
    success_with(request, &OffsetResponseHeader { offset })
}

/// Runs the search until it ends or waits for a disk read (the continuation resumes it and
/// calls `then`).
fn run<S: ShardStore, T: 'static>(
    state: &mut ShardState<S>,
    mut search: Search<S, T>,
) -> Outcome<S, T> {
    while search.lo < search.hi {
        let mid = search.lo + (search.hi - search.lo) / 2;
        match probe(state, &search.topic, search.queue_id, mid) {
            Probe::Now(ts) => narrow(&mut search, mid, ts),
            Probe::Unknown => break,
            Probe::Later(read) => return wait(state, search, mid, read),
        }
    }
    let offset = match search.boundary {
        Boundary::Lower => search.lo,
        Boundary::Upper => (search.lo - 1).max(search.min),
    };
    Outcome::Done(offset, search.payload, search.then)
}

/// Parks the search until the probe at `mid` is read, then resumes it.
fn wait<S: ShardStore, T: 'static>(
    state: &mut ShardState<S>,
    search: Search<S, T>,
    mid: i64,
    read: ReadFuture<Bytes>,
) -> Outcome<S, T> {
    // The search goes into the task, but comes back if the task cannot be started.
    let slot = Rc::new(RefCell::new(Some(search)));
    let parked = slot.clone();
    let spawned = state.deferred.spawn(async move {
        let read = read.await;
        Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
            let Some(mut search) = parked.borrow_mut().take() else {
                return;
            };
            match read.ok().and_then(|raw| store_time(&raw)) {
                Some(ts) => narrow(&mut search, mid, ts),
                // The record vanished (retention): stop where the search is.
                None => search.hi = search.lo,
            }
            match run(state, search) {
                Outcome::Done(offset, payload, then) => then(state, payload, Ok(offset)),
                Outcome::Waiting => {}
                Outcome::Failed(error, payload, then) => then(state, payload, Err(error)),
            }
        }) as Continuation<S>
    });
    match spawned {
        Ok(()) => Outcome::Waiting,
        // Not started: the task was dropped unrun, so the search is still in the slot.
        Err(error) => match slot.borrow_mut().take() {
            Some(search) => Outcome::Failed(error, search.payload, search.then),
            None => Outcome::Waiting,
        },
    }
}

fn narrow<S, T>(search: &mut Search<S, T>, mid: i64, ts: i64) {
    if ts < search.target_ms {
        search.lo = mid + 1;
    } else {
        search.hi = mid;
    }
}

/// The store time at `offset`, from the record in memory, or a ring read of its file span.
fn probe<S: ShardStore>(state: &ShardState<S>, topic: &str, queue_id: i32, offset: i64) -> Probe {
    let read = state.store.get(&QueueRead {
        topic,
        queue_id,
        offset,
        max_count: 1,
        max_bytes: usize::MAX,
        tag_codes: None,
        splice: true,
    });
    let record = match read {
        Ok(result) => result.records.into_iter().next(),
        // The read would have blocked (or failed): ask the store's own lookup.
        Err(_) => {
            return state
                .store
                .store_time(topic, queue_id, offset)
                .map_or(Probe::Unknown, Probe::Now);
        }
    };
    match record {
        Some(RecordBytes::Memory(raw)) => store_time(&raw).map_or(Probe::Unknown, Probe::Now),
        Some(RecordBytes::File(span)) => {
            match crate::server::ring_read::read_span(&span.path, span.offset, span.len) {
                Ok(read) => Probe::Later(read),
                Err(_) => Probe::Unknown,
            }
        }
        None => Probe::Unknown,
    }
}

fn store_time(raw: &[u8]) -> Option<i64> {
    match decode_record_at(raw, 0, false) {
        Ok(RecordAt::Message(layout)) => Some(layout.store_timestamp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use ringmq_wire::RequestCode;
    use ringmq_wire::header::CommandHeader;

    use super::*;
    use crate::server::deferred::test_spawner::ManualTasks;
    use crate::server::handler::testing::*;

    fn search(ts: i64, boundary: Option<&str>) -> RemotingCommand {
        request_with(
            RequestCode::SearchOffsetByTimestamp,
            &SearchOffsetRequestHeader {
                topic: "T".into(),
                queue_id: 0,
                timestamp: ts,
                boundary_type: boundary.map(str::to_owned),
                rpc: Default::default(),
            },
        )
    }

    #[test]
    fn the_stepwise_search_agrees_with_the_store_lookup() {
        let mut shard = TestShard::new();
        let tasks = ManualTasks::default();
        shard
            .state
            .deferred
            .install(tasks.spawner(), Rc::new(|| {}));
        let start = shard.now_ms as i64;
        for i in 0..20u64 {
            // Two messages per store millisecond, then a gap.
            shard.now_ms += if i % 2 == 0 { 10 } else { 0 };
            shard.state.store.set_now_ms(shard.now_ms as i64);
            assert_eq!(shard.call(send_request("T", 0, b"m", &[])).code, 0);
        }
        for ts in [
            0,
            start,
            start + 9,
            start + 10,
            start + 55,
            start + 100,
            start + 500,
        ] {
            for boundary in [None, Some("upper")] {
                let response = shard.call(search(ts, boundary));
                let got = OffsetResponseHeader::decode(&response)
                    .expect("header")
                    .offset;
                let b = if boundary.is_some() {
                    Boundary::Upper
                } else {
                    Boundary::Lower
                };
                let want = shard.state.store.offset_by_time("T", 0, ts, b);
                assert_eq!(got, want, "ts {ts} boundary {boundary:?}");
            }
        }
        assert_eq!(tasks.run(), 0, "everything was in memory: nothing deferred");
    }
}
