//! Store times for the stats answers (`GET_TOPIC_STATS_INFO`'s last update time per queue,
//! `GET_CONSUME_STATS`' time of the last consumed message) without blocking the shard on the
//! disk: a time whose record is in memory is read now; the others are read on the shard's
//! io_uring by one deferred task, and the answer goes out when they are in.
//!
//! Without a task spawner (tests over the in-memory store) the store's own lookup answers at
//! once. Single-threaded: lives for one request on its shard.

use bytes::Bytes;
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::deferred::Continuation;
use crate::server::handler::search_offset::{Probe, probe, store_time};
use crate::server::handler::{HandlerResult, error, success};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{ReadFuture, ShardStore};

/// How an answer's body takes a time read later (`fill`: body, key, time), and how it is
/// encoded.
pub(crate) type BodyOps<B, K> = (fn(&mut B, &K, i64), fn(&B) -> Vec<u8>);

/// The store times of one answer: those known, and the reads still to do, by key.
pub(crate) struct StoreTimes<K> {
    deferred: bool,
    pending: Vec<(K, ReadFuture<Bytes>)>,
}

impl<K: 'static> StoreTimes<K> {
    /// Collects times on `state`'s shard.
    pub(crate) fn new<S: ShardStore>(state: &ShardState<S>) -> Self {
        StoreTimes {
            deferred: state.deferred.enabled(),
            pending: Vec::new(),
        }
    }

    /// The store time of the message at `offset` of a queue if it can be had now (`0` when
    /// there is none); when its record is on disk, `0` now and a read for [`Self::answer`]
    /// to finish under `key`.
    pub(crate) fn get<S: ShardStore>(
        &mut self,
        state: &ShardState<S>,
        (topic, queue_id, offset): (&str, i32, i64),
        key: K,
    ) -> i64 {
        if !self.deferred {
            return state.store.store_time(topic, queue_id, offset).unwrap_or(0);
        }
        match probe(state, topic, queue_id, offset) {
            Probe::Now(ts) => ts,
            Probe::Unknown => 0,
            Probe::Later(read) => {
                self.pending.push((key, read));
                0
            }
        }
    }

    /// The answer: `body` encoded now if every time is known; otherwise a deferred task reads
    /// the rest, `fill` puts each into the body, and the answer goes out then. A time whose
    /// record could not be read stays `0`.
    pub(crate) fn answer<S: ShardStore, B: 'static>(
        self,
        state: &mut ShardState<S>,
        (conn, request): (Conn, &RemotingCommand),
        body: B,
        (fill, encode): BodyOps<B, K>,
    ) -> HandlerResult {
        if self.pending.is_empty() {
            return Ok(Some(success(request).with_body(encode(&body))));
        }
        let mut kept = request.clone();
        kept.body = Bytes::new();
        let spawned = state.deferred.spawn(async move {
            let mut times = Vec::with_capacity(self.pending.len());
            for (key, read) in self.pending {
                let ts = read
                    .await
                    .ok()
                    .and_then(|raw| store_time(&raw))
                    .unwrap_or(0);
                times.push((key, ts));
            }
            Box::new(move |state: &mut ShardState<S>, _now_ms: u64| {
                let mut body = body;
                for (key, ts) in &times {
                    fill(&mut body, key, *ts);
                }
                state.respond_later(conn.id, success(&kept).with_body(encode(&body)));
            }) as Continuation<S>
        });
        match spawned {
            Ok(()) => Ok(None),
            Err(e) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
        }
    }
}
