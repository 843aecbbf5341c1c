//! `INVOKE_BROKER_TO_RESET_OFFSET` (222, `mqadmin resetOffsetByTime`): moves a consumer
//! group's offsets on this shard's queues of a topic to the first message stored at or after
//! a time, while its consumers run (RocketMQ's `Broker2Client.resetOffset`).
//!
//! For each queue (every readable queue of the topic, or the one 5.x `queueId`):
//! - the target: the queue's max offset for `timestamp = -1`, the explicit 5.x `offset`
//!   (checked against the queue's range as RocketMQ does), else the first offset stored at or
//!   after `timestamp` (the time search of [`super::search_offset`], whose probes of records
//!   not in memory are read on the shard's ring while the shard keeps serving);
//! - the new offset: the target when `isForce` (or the offset is explicit), or when it lies
//!   before the committed offset; otherwise the committed offset stays (RocketMQ's "only
//!   rewind unless forced"). A queue without a committed offset takes the target (RocketMQ
//!   refuses the whole request then; ringmq only refuses when the group has no offset on any
//!   of the queues: `SYSTEM_ERROR` "THe consumer group <g> not exist", RocketMQ's wording).
//!
//! The new offsets are committed in this shard's offset table (so that they hold even if a
//! consumer dies before it applies them), `RESET_CONSUMER_CLIENT_OFFSET` (220, oneway) with
//! the table goes to every live consumer of the group on this shard, and the answer is the
//! table ([`ResetOffsetBody`]). A request in C++'s language gets and sends the C++ body form
//! (a list of `{topic, brokerName, queueId, offset}`), as RocketMQ does for `isC`.
//!
//! Refusals, as RocketMQ: an unknown topic is `SYSTEM_ERROR` "[reset-offset] reset offset
//! failed, no topic in this broker. topic=<t>"; no consumer of the group online is
//! `CONSUMER_NOT_ONLINE` (206) "Consumer not online, so can not reset offset, Group: <g>
//! Topic: <t> Timestamp: <ts>" and nothing changes (mqadmin then falls back to the offline
//! reset: `UPDATE_CONSUMER_OFFSET` per queue); a consumer older than V3_0_7_SNAPSHOT is
//! `SYSTEM_ERROR` "the client does not support this feature. version=<v>".
//!
//! Single-threaded: runs on the shard that owns the queues; clients and `mqadmin` address
//! every shard (each is a broker in the topic's route).

use bytes::Bytes;
use ringmq_wire::body::client::ResetOffsetBody;
use ringmq_wire::body::consumer::MessageQueue;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::ResetOffsetRequestHeader;
use ringmq_wire::{LanguageCode, RemotingCommand, RequestCode, ResponseCode};

use crate::server::ConnId;
use crate::server::deferred::DeferError;
use crate::server::handler::search_offset::{Found, Then, TimeQuery, offset_by_time};
use crate::server::handler::{HandlerResult, decode_header, error};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{Boundary, ShardStore};

/// `MQVersion.Version.V3_0_7_SNAPSHOT.ordinal()`: the first client version that applies
/// `RESET_CONSUMER_CLIENT_OFFSET`.
pub const CLIENT_VERSION_MIN: i32 = 28;

/// A reset in progress: the queues still to search and the targets found so far.
struct Job {
    header: ResetOffsetRequestHeader,
    /// The request without its body (opaque, encoding) and the connection to answer.
    request: RemotingCommand,
    origin: ConnId,
    queues: Vec<i32>,
    targets: Vec<(i32, i64)>,
    /// The target of every queue is `header.offset` (5.x per-queue form): no force rule.
    explicit: bool,
}

/// `INVOKE_BROKER_TO_RESET_OFFSET`; see the module docs.
pub fn invoke_broker_to_reset_offset<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: ResetOffsetRequestHeader = decode_header(request)?;
    tracing::info!(target: "ringmq::server::reset_offset", group = %h.group, topic = %h.topic,
        timestamp = h.timestamp, force = h.is_force, queue = ?h.queue_id, offset = ?h.offset,
        from = %conn.remote, "reset offset asked");
    let Some(topic) = state.topics.get(&h.topic) else {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "[reset-offset] reset offset failed, no topic in this broker. topic={}",
                h.topic
            ),
        ));
    };
    let read_queues = topic.read_queue_nums.max(0);
    let queues: Vec<i32> = match h.queue_id {
        Some(q) if q >= 0 => {
            if q >= read_queues {
                return Err(error(
                    request,
                    ResponseCode::SystemError,
                    format!(
                        "queueId {q} is illegal for topic {} ({read_queues} readable queues)",
                        h.topic
                    ),
                ));
            }
            vec![q]
        }
        _ => (0..read_queues).collect(),
    };
    if queues
        .iter()
        .all(|&q| state.offsets.query(&h.group, &h.topic, q).is_none())
    {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("THe consumer group <{}> not exist", h.group),
        ));
    }
    check_consumers(state, request, &h)?;
    let mut kept = request.clone();
    kept.body = Bytes::new();
    let mut job = Job {
        request: kept,
        origin: conn.id,
        targets: Vec::with_capacity(queues.len()),
        queues,
        explicit: false,
        header: h,
    };
    let explicit = match (
        job.queues.as_slice(),
        job.header.queue_id,
        job.header.offset,
    ) {
        (&[queue_id], Some(q), Some(offset)) if q >= 0 && offset != -1 => Some((queue_id, offset)),
        _ => None,
    };
    if let Some((queue_id, offset)) = explicit {
        let min = state.store.min_offset(&job.header.topic, queue_id);
        let max = state.store.max_offset(&job.header.topic, queue_id);
        // RocketMQ's `resetOffsetInner` check, as it is.
        if (min >= 0 && offset < min) || offset > max + 1 {
            return Err(error(
                request,
                ResponseCode::SystemError,
                format!("Target offset {offset} not in consume queue range [{min}-{max}]"),
            ));
        }
        job.explicit = true;
        job.targets.push((queue_id, offset));
        job.queues.clear();
    }
    advance(state, job)
}

/// Finds the targets of the queues left, then finishes; `Ok(None)` while a time search
/// waits for the disk (its continuation resumes the job and answers through the outbox).
fn advance<S: ShardStore>(state: &mut ShardState<S>, mut job: Job) -> HandlerResult {
    while job.targets.len() < job.queues.len() {
        let queue_id = job.queues[job.targets.len()];
        if job.header.timestamp < 0 {
            let max = state.store.max_offset(&job.header.topic, queue_id);
            job.targets.push((queue_id, max));
            continue;
        }
        let query = TimeQuery {
            topic: job.header.topic.clone(),
            queue_id,
            timestamp_ms: job.header.timestamp,
            boundary: Boundary::Lower,
        };
        let then: Then<S, Job> = |state, mut job, found| {
            let origin = job.origin;
            let answer = match found {
                Ok(offset) => {
                    let queue_id = job.queues[job.targets.len()];
                    job.targets.push((queue_id, offset));
                    advance(state, job)
                }
                Err(e) => Err(busy(&job.request, e)),
            };
            match answer {
                Ok(Some(response)) | Err(response) => state.respond_later(origin, response),
                Ok(None) => {}
            }
        };
        match offset_by_time(state, query, job, then) {
            Ok(Found::Now(offset, back)) => {
                job = back;
                job.targets.push((queue_id, offset));
            }
            Ok(Found::Later) => return Ok(None),
            Err((e, job)) => return Err(busy(&job.request, e)),
        }
    }
    finish(state, job).map(Some)
}

fn busy(request: &RemotingCommand, e: DeferError) -> RemotingCommand {
    error(request, ResponseCode::SystemBusy, e.to_string())
}

/// Refuses the reset when no consumer of the group is online, or one is too old to apply it.
fn check_consumers<S: ShardStore>(
    state: &ShardState<S>,
    request: &RemotingCommand,
    h: &ResetOffsetRequestHeader,
) -> Result<(), RemotingCommand> {
    let clients = state
        .consumers
        .group(&h.group)
        .map(|g| g.clients.values())
        .into_iter()
        .flatten();
    let mut online = 0usize;
    for client in clients {
        if client.version < CLIENT_VERSION_MIN {
            return Err(error(
                request,
                ResponseCode::SystemError,
                format!(
                    "the client does not support this feature. version={}",
                    client.version
                ),
            ));
        }
        online += 1;
    }
    if online == 0 {
        return Err(error(
            request,
            ResponseCode::ConsumerNotOnline,
            format!(
                "Consumer not online, so can not reset offset, Group: {} Topic: {} Timestamp: {}",
                h.group, h.topic, h.timestamp
            ),
        ));
    }
    Ok(())
}

/// Applies the targets: commits the new offsets, tells every live consumer, answers the table.
fn finish<S: ShardStore>(
    state: &mut ShardState<S>,
    job: Job,
) -> Result<RemotingCommand, RemotingCommand> {
    let h = &job.header;
    // Consumers may have left while the targets were searched.
    check_consumers(state, &job.request, h)?;
    let broker_name = state.identity.broker_name.clone();
    let mut table = ResetOffsetBody::default();
    for &(queue_id, target) in &job.targets {
        let target = target.max(0);
        let committed = state.offsets.query(&h.group, &h.topic, queue_id);
        let offset = match committed {
            Some(committed) if !(h.is_force || job.explicit || target < committed) => committed,
            _ => target,
        };
        if committed != Some(offset) && !state.offsets.commit(&h.group, &h.topic, queue_id, offset)
        {
            return Err(error(
                &job.request,
                ResponseCode::SystemError,
                format!(
                    "offset {offset} of queue {queue_id} not recorded (the offset table is full)"
                ),
            ));
        }
        table
            .offset_table
            .insert(MessageQueue::new(&h.topic, &broker_name, queue_id), offset);
    }
    let cpp = job.request.language == LanguageCode::Cpp;
    let body = if cpp {
        encode_for_cpp(&table)
    } else {
        table.encode()
    };
    let notify = ResetOffsetRequestHeader {
        topic: h.topic.clone(),
        group: h.group.clone(),
        timestamp: h.timestamp,
        is_force: h.is_force,
        queue_id: None,
        offset: None,
        rpc: Default::default(),
    };
    let targets: Vec<(ConnId, String)> = state
        .consumers
        .group(&h.group)
        .map(|g| {
            g.clients
                .values()
                .map(|c| (c.conn_id, c.client_id.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (conn, client_id) in targets {
        let mut call = RemotingCommand::request(RequestCode::ResetConsumerClientOffset);
        call.set_oneway();
        // Java clients older than 5.x have no RUST language code (fastjson reads it as null).
        call.language = LanguageCode::Java;
        notify.encode_into(&mut call);
        call.body = Bytes::from(body.clone());
        if state.push_broker_request(conn, call) {
            tracing::info!(target: "ringmq::server::reset_offset", group = %h.group,
                topic = %h.topic, client = %client_id, "reset offset sent to consumer");
        } else {
            tracing::warn!(target: "ringmq::server::reset_offset", group = %h.group,
                topic = %h.topic, client = %client_id,
                "outbox full; reset offset not sent to consumer (its offsets are committed)");
        }
    }
    let mut response = RemotingCommand::response_to(&job.request, ResponseCode::Success);
    response.body = Bytes::from(if cpp { body } else { table.encode() });
    Ok(response)
}

/// RocketMQ's `ResetOffsetBodyForC`: `{"offsetTable":[{"brokerName":…,"offset":…,"queueId":…,
/// "topic":…}]}` (fastjson, fields in alphabetical order).
fn encode_for_cpp(table: &ResetOffsetBody) -> Vec<u8> {
    let list: Vec<serde_json::Value> = table
        .offset_table
        .iter()
        .map(|(queue, offset)| {
            serde_json::json!({
                "brokerName": queue.broker_name,
                "offset": offset,
                "queueId": queue.queue_id,
                "topic": queue.topic,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "offsetTable": list })).unwrap_or_default()
}

#[cfg(test)]
#[path = "reset_offset_tests.rs"]
mod tests;
