//! `SEARCH_OFFSET_BY_TIMESTAMP` (29) without blocking the shard on the disk: the binary
//! search over a queue's store times reads each probed record from memory when it is there,
//! and from its segment file on the shard's io_uring otherwise, resuming the search in a
//! deferred task's continuation ([`crate::server::deferred`]); a probe whose ConsumeQueue
//! entry is in a page evicted from memory has the page read on the ring first
//! ([`ShardStore::load_for`]). The shard serves other requests while a probe waits for the
//! disk.
//!
//! The answer is RocketMQ's: with `boundaryType` lower (default) the first offset whose
//! message was stored at or after the time (the max offset when none is); with upper the last
//! offset stored at or before it (the min offset when none is). Without a task spawner
//! (tests over the in-memory store) the store's own lookup answers at once.

use bytes::Bytes;
use ringmq_wire::header::offset::{OffsetResponseHeader, SearchOffsetRequestHeader};
use ringmq_wire::record::{RecordAt, decode_record_at};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::deferred::Continuation;
use crate::server::handler::{HandlerResult, decode_header, error, success_with};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{Boundary, QueueRead, ReadFuture, RecordBytes, ShardStore};

/// A search in progress: the half-open range `[lo, hi)` of queue offsets that may hold the
/// first message stored at or after `target_ms`.
#[derive(Debug, Clone)]
struct Search {
    topic: String,
    queue_id: i32,
    target_ms: i64,
    boundary: Boundary,
    min: i64,
    lo: i64,
    hi: i64,
    conn: Conn,
    request: RemotingCommand,
}

/// The store time of the message at one offset: known now, read later, or unknown.
enum Probe {
    Now(i64),
    Later(ReadFuture<Bytes>),
    Unknown,
}

/// `SEARCH_OFFSET_BY_TIMESTAMP`.
pub fn search_offset_by_timestamp<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    if !state.deferred.enabled() {
        return crate::server::handler::offset::search_offset_by_timestamp(state, request);
    }
    let h: SearchOffsetRequestHeader = decode_header(request)?;
    let boundary = match h.boundary_type.as_deref() {
        Some(b) if b.eq_ignore_ascii_case("upper") => Boundary::Upper,
        _ => Boundary::Lower,
    };
    let min = state.store.min_offset(&h.topic, h.queue_id);
    let max = state.store.max_offset(&h.topic, h.queue_id);
    let mut kept = request.clone();
    kept.body = Bytes::new();
    let search = Search {
        target_ms: match boundary {
            Boundary::Lower => h.timestamp,
            Boundary::Upper => h.timestamp.saturating_add(1),
        },
        topic: h.topic,
        queue_id: h.queue_id,
        boundary,
        min,
        lo: min,
        hi: max,
        conn,
        request: kept,
    };
    Ok(run(state, search))
}

fn answer(request: &RemotingCommand, offset: i64) -> RemotingCommand {
    success_with(request, &OffsetResponseHeader { offset })
}

/// Runs the search until it ends (the answer) or waits for a disk read (`None`: the
/// continuation resumes it and answers).
fn run<S: ShardStore>(state: &mut ShardState<S>, mut search: Search) -> Option<RemotingCommand> {
    while search.lo < search.hi {
        let mid = search.lo + (search.hi - search.lo) / 2;
        // The queue entry at `mid` may be in a ConsumeQueue page evicted from memory: read
        // the page on the ring first, then resume the search.
        if let Some(load) = state
            .store
            .load_for(&probe_read(&search.topic, search.queue_id, mid))
        {
            let request = search.request.clone();
            let spawned = state.deferred.spawn(async move {
                let loaded = load.await;
                Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                    let conn = search.conn.id;
                    if loaded.is_err() {
                        // Unreadable page: stop where the search is, as for a lost record.
                        search.hi = search.lo;
                    }
                    if let Some(response) = run(state, search) {
                        state.respond_later(conn, response);
                    }
                }) as Continuation<S>
            });
            return match spawned {
                Ok(()) => None,
                Err(e) => Some(error(&request, ResponseCode::SystemBusy, e.to_string())),
            };
        }
        match probe(state, &search.topic, search.queue_id, mid) {
            Probe::Now(ts) => narrow(&mut search, mid, ts),
            Probe::Unknown => break,
            Probe::Later(read) => {
                let request = search.request.clone();
                let spawned = state.deferred.spawn(async move {
                    let read = read.await;
                    Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                        let conn = search.conn.id;
                        match read.ok().and_then(|raw| store_time(&raw)) {
                            Some(ts) => narrow(&mut search, mid, ts),
                            // The record vanished (retention): stop where the search is.
                            None => search.hi = search.lo,
                        }
                        if let Some(response) = run(state, search) {
                            state.respond_later(conn, response);
                        }
                    }) as Continuation<S>
                });
                return match spawned {
                    Ok(()) => None,
                    Err(e) => Some(error(&request, ResponseCode::SystemBusy, e.to_string())),
                };
            }
        }
    }
    let offset = match search.boundary {
        Boundary::Lower => search.lo,
        Boundary::Upper => (search.lo - 1).max(search.min),
    };
    Some(answer(&search.request, offset))
}

fn narrow(search: &mut Search, mid: i64, ts: i64) {
    if ts < search.target_ms {
        search.lo = mid + 1;
    } else {
        search.hi = mid;
    }
}

/// The one-entry read of a probe at `offset`.
fn probe_read(topic: &str, queue_id: i32, offset: i64) -> QueueRead<'_> {
    QueueRead {
        topic,
        queue_id,
        offset,
        max_count: 1,
        max_bytes: usize::MAX,
        tag_codes: None,
        splice: true,
    }
}

/// The store time at `offset`, from the record in memory, or a ring read of its file span.
fn probe<S: ShardStore>(state: &ShardState<S>, topic: &str, queue_id: i32, offset: i64) -> Probe {
    let read = state.store.get(&probe_read(topic, queue_id, offset));
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
