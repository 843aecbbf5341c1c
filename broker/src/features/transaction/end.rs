//! Ending a transaction (`END_TRANSACTION`, RocketMQ's `EndTransactionProcessor`): find the
//! half message by its CommitLog offset, check it is the one the producer means, then commit
//! (re-put to the real topic + op entry) or roll back (op entry only).
//!
//! Runs on the shard thread inside request handling. The request decoding and the response
//! live in `server::handler::transaction`; this module returns typed outcomes and errors.

use ringmq_wire::header::transaction::{EndTransactionRequestHeader, commit_or_rollback};
use ringmq_wire::record::{Properties, StoredMessage, property, sys_flag};

use super::{ensure_loaded, origin_of, put_copy, write_op};
use crate::server::state::ShardState;
use crate::server::store::{ShardStore, StoreError};
use crate::server::topic::system;

/// What an `END_TRANSACTION` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// The message was put to its real topic; the producer may be answered once the record
    /// ending at `end_offset` is durable.
    Committed {
        /// The real topic.
        topic: String,
        /// The real queue.
        queue_id: i32,
        /// Its offset in the real queue.
        queue_offset: i64,
        /// CommitLog offset just past the last record written (message and op entry).
        end_offset: u64,
    },
    /// The op entry was written; nothing becomes visible.
    RolledBack {
        /// CommitLog offset just past the op entry.
        end_offset: u64,
    },
    /// The transaction was already decided (by an earlier end of this or another copy of
    /// the half message): nothing was written.
    AlreadyDecided {
        /// The half copy's queue offset.
        half_offset: i64,
        /// Its origin's queue offset.
        origin: i64,
    },
    /// `commitOrRollback` said "unknown" (0): nothing to do, the check-back will ask later.
    Pending,
}

/// Why an `END_TRANSACTION` could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndError {
    /// `commitOrRollback` is not 0, 8 or 12.
    #[error(
        "commitOrRollback {value} is not a transaction outcome (use 8 = commit, 12 = rollback, 0 = unknown)"
    )]
    InvalidOutcome {
        /// The value received.
        value: i32,
    },
    /// No half message at that CommitLog offset.
    #[error(
        "Find prepared transaction message failed: no half message at commitLogOffset {offset}: {reason}"
    )]
    HalfNotFound {
        /// The CommitLog offset asked for.
        offset: i64,
        /// What the store said.
        reason: String,
    },
    /// The record at that offset is not a half message.
    #[error(
        "Find prepared transaction message failed: the message at commitLogOffset {offset} is in topic {topic}, not a half message"
    )]
    NotHalf {
        /// The CommitLog offset.
        offset: i64,
        /// Its topic.
        topic: String,
    },
    /// `producerGroup` differs from the half's `PGROUP`.
    #[error(
        "The producer group wrong: the half message belongs to {expected:?}, the request names {got:?}"
    )]
    ProducerGroupWrong {
        /// The half's producer group.
        expected: String,
        /// The request's.
        got: String,
    },
    /// `tranStateTableOffset` differs from the half's queue offset.
    #[error(
        "The transaction state table offset wrong: the half message is at half-queue offset {expected}, the request names {got}"
    )]
    QueueOffsetWrong {
        /// The half's queue offset.
        expected: i64,
        /// The request's.
        got: i64,
    },
    /// The half lacks `REAL_TOPIC`/`REAL_QID`.
    #[error("the half message at commitLogOffset {offset} has no valid REAL_TOPIC/REAL_QID")]
    NoRealTopic {
        /// Its CommitLog offset.
        offset: i64,
    },
    /// Writing the message or the op entry failed.
    #[error("{what} failed: {source}")]
    Store {
        /// What was being written.
        what: &'static str,
        /// The store error.
        source: StoreError,
    },
}

/// Applies an `END_TRANSACTION` on this shard at `now_ms`.
pub fn end<S: ShardStore>(
    state: &mut ShardState<S>,
    header: &EndTransactionRequestHeader,
    now_ms: u64,
) -> Result<EndOutcome, EndError> {
    let from_check = header.from_transaction_check.unwrap_or(false);
    let commit = match header.commit_or_rollback {
        commit_or_rollback::NOT_TYPE => {
            tracing::debug!(target: "ringmq::transaction", group = %header.producer_group,
                msg_id = %header.msg_id, from_check, "transaction end with unknown state");
            return Ok(EndOutcome::Pending);
        }
        commit_or_rollback::COMMIT => true,
        commit_or_rollback::ROLLBACK => false,
        value => return Err(EndError::InvalidOutcome { value }),
    };
    ensure_loaded(state);
    let half = find_half(state, header)?;
    let half_offset = half.layout.queue_offset;
    let origin = origin_of(&half);
    if state.transactions.is_done(half_offset, origin) {
        state.transactions.stats.duplicate_ends += 1;
        tracing::info!(target: "ringmq::transaction", half_offset, origin, commit, from_check,
            msg_id = %header.msg_id, "transaction already decided; end ignored");
        return Ok(EndOutcome::AlreadyDecided {
            half_offset,
            origin,
        });
    }
    let offsets: Vec<i64> = if origin == half_offset {
        vec![half_offset]
    } else {
        vec![half_offset, origin]
    };
    if !commit {
        let op = write_op(state, &offsets, now_ms).map_err(|source| EndError::Store {
            what: "writing the rollback op entry",
            source,
        })?;
        state.transactions.stats.rollbacks += 1;
        tracing::debug!(target: "ringmq::transaction", half_offset, from_check, "rolled back");
        return Ok(EndOutcome::RolledBack {
            end_offset: op.end_offset,
        });
    }
    let (topic, queue_id, properties) = real_message(&half, header.commit_log_offset)?;
    let sys_flag_value =
        (half.layout.sys_flag & !sys_flag::TRANSACTION_MASK) | sys_flag::TRANSACTION_COMMIT;
    let appended = put_copy(
        state,
        &half,
        &topic,
        queue_id,
        sys_flag_value,
        &properties,
        header.commit_log_offset,
    )
    .map_err(|source| EndError::Store {
        what: "putting the committed message",
        source,
    })?;
    // RocketMQ writes the op entry only once the real message is stored: a failure in
    // between leaves the half undecided and the check-back asks again.
    let op = write_op(state, &offsets, now_ms).map_err(|source| EndError::Store {
        what: "writing the commit op entry",
        source,
    })?;
    state.wake_pulls_when_visible(
        &topic,
        queue_id,
        appended.queue_offset + 1,
        appended.end_offset,
        now_ms,
    );
    state.transactions.stats.commits += 1;
    tracing::debug!(target: "ringmq::transaction", half_offset, %topic, queue_id,
        queue_offset = appended.queue_offset, from_check, "committed");
    Ok(EndOutcome::Committed {
        topic,
        queue_id,
        queue_offset: appended.queue_offset,
        end_offset: op.end_offset,
    })
}

/// The half message the request names, checked as `checkPrepareMessage` does.
fn find_half<S: ShardStore>(
    state: &ShardState<S>,
    header: &EndTransactionRequestHeader,
) -> Result<StoredMessage, EndError> {
    let offset = header.commit_log_offset;
    let not_found = |reason: String| EndError::HalfNotFound { offset, reason };
    if offset < 0 {
        return Err(not_found("negative offset".into()));
    }
    let raw = state
        .store
        .read_at(offset)
        .map_err(|e| not_found(e.to_string()))?;
    let half = StoredMessage::decode(&raw, true).map_err(|e| not_found(e.to_string()))?;
    if half.layout.physical_offset != offset {
        return Err(not_found(format!(
            "the record there says it is at {}",
            half.layout.physical_offset
        )));
    }
    if half.topic() != system::TRANS_HALF_TOPIC {
        return Err(EndError::NotHalf {
            offset,
            topic: half.topic().to_owned(),
        });
    }
    let group = half.property(property::PGROUP).unwrap_or_default();
    if group != header.producer_group {
        return Err(EndError::ProducerGroupWrong {
            expected: group.to_owned(),
            got: header.producer_group.clone(),
        });
    }
    if half.layout.queue_offset != header.tran_state_table_offset {
        return Err(EndError::QueueOffsetWrong {
            expected: half.layout.queue_offset,
            got: header.tran_state_table_offset,
        });
    }
    Ok(half)
}

/// The real topic, queue and properties of a half message (`REAL_TOPIC`/`REAL_QID`
/// removed; `TRAN_MSG` and `PGROUP` kept, as RocketMQ does).
fn real_message(half: &StoredMessage, offset: i64) -> Result<(String, i32, Properties), EndError> {
    let mut properties =
        Properties::parse(half.properties_raw()).map_err(|_| EndError::NoRealTopic { offset })?;
    let topic = properties
        .remove(property::REAL_TOPIC)
        .filter(|t| !t.is_empty())
        .ok_or(EndError::NoRealTopic { offset })?;
    let queue_id = properties
        .remove(property::REAL_QID)
        .and_then(|q| q.trim().parse::<i32>().ok())
        .filter(|q| *q >= 0)
        .ok_or(EndError::NoRealTopic { offset })?;
    Ok((topic, queue_id, properties))
}
