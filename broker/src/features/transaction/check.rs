//! The check-back scan (RocketMQ's `TransactionalMessageCheckService` and
//! `TransactionalMessageServiceImpl.check`): ask producers about half messages left
//! undecided.
//!
//! Runs on the shard thread from the shard tick, every `transaction.check_interval_ms`
//! (sooner while a scan has more to do than one run's budget). One run walks the half queue
//! from the progress of `CID_RMQ_SYS_TRANS`:
//! - a half whose transaction has an op entry is passed over;
//! - a half younger than `transaction.timeout_ms` (by born time) stops the run: the ones
//!   behind it are younger still; a half with a longer `CHECK_IMMUNITY_TIME_IN_SECONDS` still
//!   inside it is re-appended unchanged so it does not hold the queue back;
//! - a half checked `transaction.check_max` times is moved to `TRANS_CHECK_MAX_TIME_TOPIC`
//!   (and decided by an op entry);
//! - otherwise the half is re-appended with `TRANSACTION_CHECK_TIMES` + 1 and
//!   `CHECK_TRANSACTION_STATE` (oneway, body = the copy's record under its real topic) goes to
//!   a live producer of its `PGROUP`, through the connection outbox.
//!
//! Then the half and op progress are committed as consumer offsets of `CID_RMQ_SYS_TRANS`.

use bytes::BytesMut;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::transaction::CheckTransactionStateRequestHeader;
use ringmq_wire::msgid::offset_msg_id;
use ringmq_wire::record::{Properties, RecordFields, StoredMessage, property};
use ringmq_wire::{RemotingCommand, RequestCode};

use super::{
    CONSUMER_GROUP, CopyTo, HALF_QUEUE_ID, PENDING_CHECKS_MAX, ensure_loaded, origin_of, put_copy,
    read_batch, release_checks, write_op,
};
use crate::server::state::ShardState;
use crate::server::store::{Appended, ShardStore, StoreError};
use crate::server::topic::{TopicConfig, system};

/// Most half messages handled (checked, moved or re-appended) in one run; the rest waits
/// for the next run, [`CONTINUE_DELAY_MS`] later, so a large backlog never stalls the shard.
pub const RUN_MESSAGES_MAX: usize = 2_048;

/// Delay before the next run when a run stopped on its budget rather than on young
/// messages or the end of the queue.
pub const CONTINUE_DELAY_MS: u64 = 20;

/// Runs a check-back scan when one is due, and schedules the next.
/// Then sends the checks whose half copies have become durable.
pub fn run_if_due<S: ShardStore>(state: &mut ShardState<S>, now_ms: u64) {
    if now_ms >= state.transactions.next_check_ms {
        let finished = run(state, now_ms);
        let delay = if finished {
            state.config.transaction.check_interval_ms
        } else {
            CONTINUE_DELAY_MS
        };
        state.transactions.next_check_ms = now_ms.saturating_add(delay);
        // Submit the copies now rather than at the next batch of requests.
        if let Err(error) = state.store.commit() {
            tracing::error!(target: "ringmq::transaction", shard = state.identity.shard, %error,
                "group commit after the transaction check failed");
        }
    }
    release_checks(state);
}

/// Why a run stopped.
enum Stop {
    /// Scanned everything there was, or met a half too young to check.
    Done,
    /// The per-run budget is used up.
    Budget,
}

/// One scan. Returns whether it finished (false: budget used up, continue soon).
pub fn run<S: ShardStore>(state: &mut ShardState<S>, now_ms: u64) -> bool {
    ensure_loaded(state);
    let half_topic = system::TRANS_HALF_TOPIC;
    // Copies appended during this run land past `end` and wait for the next run.
    let (mut offset, end) = super::scan_range(state, half_topic);
    let mut handled = 0usize;
    let stop = 'scan: loop {
        if offset >= end {
            break Stop::Done;
        }
        let (records, next) = match read_batch(state, half_topic, offset) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(target: "ringmq::transaction", shard = state.identity.shard,
                    offset, %error, "reading the half queue failed; check retried next run");
                break Stop::Done;
            }
        };
        if records.is_empty() {
            if next > offset {
                offset = next;
                continue;
            }
            // Not yet visible (not durable yet): next run.
            break Stop::Done;
        }
        for half in records {
            if handled >= RUN_MESSAGES_MAX {
                break 'scan Stop::Budget;
            }
            let half_offset = half.layout.queue_offset;
            match check_one(state, &half, now_ms) {
                Ok(Step::Passed) => {}
                Ok(Step::Handled) => handled += 1,
                Ok(Step::TooYoung) => break 'scan Stop::Done,
                Err(error) => {
                    tracing::warn!(target: "ringmq::transaction", shard = state.identity.shard,
                        half_offset, %error, "half message not handled; retried next run");
                    break 'scan Stop::Done;
                }
            }
            offset = half_offset + 1;
        }
    };
    commit_progress(state, offset);
    matches!(stop, Stop::Done)
}

/// What happened to one half message.
enum Step {
    /// Decided already: nothing to do.
    Passed,
    /// Checked, moved or re-appended.
    Handled,
    /// Too young to check: stop here.
    TooYoung,
}

fn check_one<S: ShardStore>(
    state: &mut ShardState<S>,
    half: &StoredMessage,
    now_ms: u64,
) -> Result<Step, StoreError> {
    let half_offset = half.layout.queue_offset;
    let origin = origin_of(half);
    if state.transactions.is_done(half_offset, origin) {
        state.transactions.renewed.remove(&half_offset);
        return Ok(Step::Passed);
    }
    let timeout_ms = state.config.transaction.timeout_ms as i64;
    let immunity_ms = half
        .property(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s.saturating_mul(1_000))
        .unwrap_or(timeout_ms);
    let age_ms = now_ms as i64 - half.layout.born_timestamp;
    // A born time in the future (producer clock ahead) is checked at once, as RocketMQ does.
    if (0..immunity_ms).contains(&age_ms) {
        if immunity_ms <= timeout_ms || age_ms < timeout_ms {
            return Ok(Step::TooYoung);
        }
        // Inside its own longer immunity: keep it, unchanged, behind the others.
        let mut properties = parse_properties(half)?;
        properties.insert(property::TRAN_PREPARED_QUEUE_OFFSET, origin.to_string());
        let copy = renew(state, half, &properties, now_ms)?;
        state
            .transactions
            .record_renewed(half_offset, copy.queue_offset, origin);
        return Ok(Step::Handled);
    }
    let times = half
        .property(property::TRANSACTION_CHECK_TIMES)
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if times >= state.config.transaction.check_max {
        discard(state, half, half_offset, origin, times, now_ms)?;
        return Ok(Step::Handled);
    }
    let mut properties = parse_properties(half)?;
    properties.insert(property::TRANSACTION_CHECK_TIMES, (times + 1).to_string());
    properties.insert(property::TRAN_PREPARED_QUEUE_OFFSET, origin.to_string());
    let copy = renew(state, half, &properties, now_ms)?;
    state
        .transactions
        .record_renewed(half_offset, copy.queue_offset, origin);
    send_check(state, half, &properties, &copy);
    Ok(Step::Handled)
}

fn parse_properties(half: &StoredMessage) -> Result<Properties, StoreError> {
    Properties::parse(half.properties_raw()).map_err(|e| StoreError::MessageIllegal {
        reason: format!(
            "half message at commitlog offset {} has bad properties: {e}",
            half.layout.physical_offset
        ),
    })
}

/// Re-appends a half message to the half queue with `properties`.
fn renew<S: ShardStore>(
    state: &mut ShardState<S>,
    half: &StoredMessage,
    properties: &Properties,
    now_ms: u64,
) -> Result<Appended, StoreError> {
    put_copy(
        state,
        half,
        CopyTo {
            topic: system::TRANS_HALF_TOPIC,
            queue_id: HALF_QUEUE_ID,
            sys_flag: half.layout.sys_flag,
            properties,
            prepared_transaction_offset: 0,
        },
        now_ms,
    )
}

/// Moves a half checked too often to `TRANS_CHECK_MAX_TIME_TOPIC` and decides it.
fn discard<S: ShardStore>(
    state: &mut ShardState<S>,
    half: &StoredMessage,
    half_offset: i64,
    origin: i64,
    times: u32,
    now_ms: u64,
) -> Result<(), StoreError> {
    let topic = system::TRANS_CHECK_MAX_TIME_TOPIC;
    if state.topics.get(topic).is_none() {
        match state
            .topics
            .create_or_update(TopicConfig::new(topic, 1), now_ms)
        {
            Ok(_) => state.request_register(),
            Err(error) => {
                return Err(StoreError::Failed {
                    context: format!("creating {topic}: {error}"),
                });
            }
        }
    }
    let properties = parse_properties(half)?;
    put_copy(
        state,
        half,
        CopyTo {
            topic,
            queue_id: 0,
            sys_flag: half.layout.sys_flag,
            properties: &properties,
            prepared_transaction_offset: 0,
        },
        now_ms,
    )?;
    let offsets: Vec<i64> = if origin == half_offset {
        vec![half_offset]
    } else {
        vec![half_offset, origin]
    };
    write_op(state, &offsets, now_ms)?;
    state.transactions.stats.discarded += 1;
    tracing::warn!(target: "ringmq::transaction", shard = state.identity.shard, half_offset,
        origin, checks = times, uniq_key = half.uniq_key().unwrap_or_default(),
        "half message checked too often; moved to TRANS_CHECK_MAX_TIME_TOPIC");
    Ok(())
}

/// Sends `CHECK_TRANSACTION_STATE` about the copy `copy` of `half` to a live producer of its
/// group, if one is connected.
fn send_check<S: ShardStore>(
    state: &mut ShardState<S>,
    half: &StoredMessage,
    properties: &Properties,
    copy: &Appended,
) {
    let group = half.property(property::PGROUP).unwrap_or_default();
    let producers = state.producers.producers(group);
    if producers.is_empty() {
        state.transactions.stats.checks_without_producer += 1;
        tracing::info!(target: "ringmq::transaction", shard = state.identity.shard, group,
            half_offset = copy.queue_offset, "no producer of the group connected; check skipped");
        return;
    }
    let pick = state.transactions.next_producer % producers.len();
    let conn = producers[pick].conn_id;
    state.transactions.next_producer = state.transactions.next_producer.wrapping_add(1);
    let request = match check_request(state, half, properties, copy) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(target: "ringmq::transaction", %error, "check request not built");
            return;
        }
    };
    let pending = &mut state.transactions.pending_checks;
    if pending.len() >= PENDING_CHECKS_MAX {
        tracing::warn!(target: "ringmq::transaction", group,
            "too many checks waiting for durability; check dropped (asked again next scan)");
        return;
    }
    // The producer's answer names the copy: send only once the copy can be read.
    pending.push_back((copy.end_offset, conn, request));
}

/// The `CHECK_TRANSACTION_STATE` request for a copy: header with the copy's offsets, body =
/// the copy's record under its real topic and queue, as RocketMQ encodes it.
fn check_request<S: ShardStore>(
    state: &ShardState<S>,
    half: &StoredMessage,
    properties: &Properties,
    copy: &Appended,
) -> Result<RemotingCommand, ringmq_wire::WireError> {
    let topic = properties
        .get(property::REAL_TOPIC)
        .unwrap_or(system::TRANS_HALF_TOPIC)
        .to_owned();
    let queue_id = properties
        .get(property::REAL_QID)
        .and_then(|q| q.trim().parse::<i32>().ok())
        .unwrap_or(HALF_QUEUE_ID);
    let encoded = properties.encode()?;
    let body = half.body();
    let store_host = state.identity.store_host;
    let fields = RecordFields {
        topic: &topic,
        queue_id,
        flag: half.layout.flag,
        queue_offset: copy.queue_offset,
        physical_offset: copy.physical_offset,
        sys_flag: half.layout.sys_flag,
        born_timestamp: half.layout.born_timestamp,
        born_host: half.layout.born_host,
        store_timestamp: copy.store_timestamp,
        store_host,
        reconsume_times: half.layout.reconsume_times,
        prepared_transaction_offset: 0,
        body: &body,
        properties: encoded.as_bytes(),
    };
    let mut record = BytesMut::new();
    fields.encode(&mut record)?;
    let uniq_key = properties.get(property::UNIQ_KEY).map(str::to_owned);
    let transaction_id = properties
        .get(property::TRANSACTION_ID)
        .map(str::to_owned)
        .or_else(|| uniq_key.clone());
    let mut request = RemotingCommand::request(RequestCode::CheckTransactionState);
    request.set_oneway();
    CheckTransactionStateRequestHeader {
        topic: Some(topic),
        tran_state_table_offset: copy.queue_offset,
        commit_log_offset: copy.physical_offset,
        msg_id: uniq_key,
        transaction_id,
        offset_msg_id: Some(offset_msg_id(store_host, copy.physical_offset)),
        rpc: Default::default(),
    }
    .encode_into(&mut request);
    Ok(request.with_body(record.freeze()))
}

/// Commits the half progress and the op progress as offsets of `CID_RMQ_SYS_TRANS`, after
/// forgetting what the scan has passed.
fn commit_progress<S: ShardStore>(state: &mut ShardState<S>, half_progress: i64) {
    let op_topic = system::TRANS_OP_HALF_TOPIC;
    let op_end = state.store.max_offset(op_topic, HALF_QUEUE_ID);
    let op_progress = state.transactions.prune(half_progress, op_end);
    let half_topic = system::TRANS_HALF_TOPIC;
    if state
        .offsets
        .query(CONSUMER_GROUP, half_topic, HALF_QUEUE_ID)
        != Some(half_progress)
    {
        state
            .offsets
            .commit(CONSUMER_GROUP, half_topic, HALF_QUEUE_ID, half_progress);
    }
    if state.offsets.query(CONSUMER_GROUP, op_topic, HALF_QUEUE_ID) != Some(op_progress) {
        state
            .offsets
            .commit(CONSUMER_GROUP, op_topic, HALF_QUEUE_ID, op_progress);
    }
}
