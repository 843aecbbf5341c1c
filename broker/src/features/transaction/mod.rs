//! Transactional messages, as RocketMQ's `TransactionalMessageServiceImpl` and
//! `TransactionalMessageBridge` keep them, on one shard.
//!
//! - **Half messages**: a send carrying `TRAN_MSG=true` (or the prepared SYSFLAG) is stored in
//!   `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 with its real topic and queue in `REAL_TOPIC` /
//!   `REAL_QID` and the transaction bits of its SYSFLAG cleared, so consumers never see it
//!   ([`prepare_half`]).
//! - **Ends** ([`end`]): `END_TRANSACTION` commit re-puts the message to its real topic
//!   (commit SYSFLAG, `TRAN_MSG` kept, prepared offset = the half's CommitLog offset) and
//!   writes an op entry; rollback writes the op entry only. An op entry is a message of
//!   `RMQ_SYS_TRANS_OP_HALF_TOPIC` queue 0, tag `d`, whose body lists half-queue offsets
//!   separated by commas (RocketMQ 5.x's op body format).
//! - **Check-back** ([`check`]): every `transaction.check_interval_ms` the half queue is
//!   scanned from the progress of group `CID_RMQ_SYS_TRANS`; a half message without an op
//!   entry, older than `transaction.timeout_ms` (or its `CHECK_IMMUNITY_TIME_IN_SECONDS`), is
//!   re-appended with `TRANSACTION_CHECK_TIMES` + 1 and a `CHECK_TRANSACTION_STATE` goes to a
//!   live producer of its group; past `transaction.check_max` checks it is moved to
//!   `TRANS_CHECK_MAX_TIME_TOPIC`.
//!
//! **Copies and origins.** A check re-appends the half message, so one transaction may have
//! several half copies. Every copy records the queue offset of the first one (its *origin*)
//! in `TRAN_PREPARED_QUEUE_OFFSET`, and an op entry names both the copy ended and its origin.
//! A transaction is decided once its origin has an op entry: a second `END_TRANSACTION` for
//! any copy (the producer's own end arriving after a check, or a check answered twice) is
//! recognised and does not commit again.
//!
//! **Progress.** The decided offsets live in memory ([`TransactionService`]), rebuilt after a
//! restart by reading the op queue from the op progress; the half and op progress are
//! consumer offsets of `CID_RMQ_SYS_TRANS` (persisted with the other offsets), so a restart
//! resumes the scan where it stopped.
//!
//! Lives on its shard's thread: state in [`crate::server::state::ShardState::transactions`],
//! driven by request handling and the shard tick.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use ringmq_wire::RemotingCommand;
use ringmq_wire::record::{self, Properties, StoredMessage, property, sys_flag};

use crate::features::requeue::{self, Requeue, RequeueError};
use crate::server::ConnId;

use crate::server::state::ShardState;
use crate::server::store::{Appended, PutMessage, QueueRead, ShardStore, StoreError};
use crate::server::topic::system;

pub mod check;
pub mod end;

/// The internal consumer group whose offsets record the half and op progress.
pub const CONSUMER_GROUP: &str = "CID_RMQ_SYS_TRANS";

/// Tag of an op entry (RocketMQ's `TransactionalMessageUtil.REMOVE_TAG`).
pub const OP_TAG: &str = "d";

/// The one queue of the half and op topics.
pub const HALF_QUEUE_ID: i32 = 0;

/// Most decided half offsets remembered. Past it the lowest are forgotten (a late second
/// `END_TRANSACTION` for one of them could then commit twice); guards memory against a
/// producer that never lets the check scan advance.
pub const DONE_OFFSETS_MAX: usize = 1_000_000;

/// Most re-appended half copies whose origin is remembered (bounds memory like
/// [`DONE_OFFSETS_MAX`]; past it, forgetting decided offsets is suspended).
pub const RENEWED_MAX: usize = 1_000_000;

/// Records read per store call while scanning the half or op queue.
pub const SCAN_BATCH: usize = 256;

/// Bytes read per store call while scanning (4 MiB: a batch of large messages stays small).
pub const SCAN_BYTES_MAX: usize = 4 << 20;

/// Most check requests waiting for their half copy to become durable (a check answered
/// before the copy is readable could not be applied). Past it new checks are dropped; the
/// next scan asks again.
pub const PENDING_CHECKS_MAX: usize = 100_000;

/// Most op entries read when rebuilding the decided offsets after a restart.
pub const LOAD_OPS_MAX: usize = 2_000_000;

/// Counters of one shard's transactions (for logs and runtime info).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionStats {
    /// Half messages stored.
    pub half_messages: u64,
    /// Transactions committed (message re-put to its real topic).
    pub commits: u64,
    /// Transactions rolled back.
    pub rollbacks: u64,
    /// `END_TRANSACTION`s for an already decided transaction (nothing done).
    pub duplicate_ends: u64,
    /// `CHECK_TRANSACTION_STATE` requests sent.
    pub checks_sent: u64,
    /// Checks due while no producer of the group was connected (the half was still
    /// re-appended and counted, as RocketMQ does).
    pub checks_without_producer: u64,
    /// Half messages moved to `TRANS_CHECK_MAX_TIME_TOPIC` after `check_max` checks.
    pub discarded: u64,
}

/// One shard's transaction bookkeeping: which half offsets are decided, which copies were
/// re-appended from which origin, when the next check runs.
#[derive(Debug)]
pub struct TransactionService {
    loaded: bool,
    /// Decided half-queue offset → op-queue offset of the entry that decided it.
    done: BTreeMap<i64, i64>,
    /// Re-appended copy offset → origin offset, for copies at or past the half progress.
    renewed: BTreeMap<i64, i64>,
    /// Half-queue end when this process loaded: copies below it may have origins not in
    /// `renewed` until the scan has passed it.
    origins_complete_from: i64,
    next_check_ms: u64,
    next_producer: usize,
    /// Check requests held until the copy they name is durable: (copy end offset, producer
    /// connection, request).
    pending_checks: VecDeque<(u64, ConnId, RemotingCommand)>,
    /// Counters.
    pub stats: TransactionStats,
}

impl TransactionService {
    /// A service whose first check runs one `check_interval_ms` after `now_ms`.
    pub fn new(check_interval_ms: u64, now_ms: u64) -> Self {
        TransactionService {
            loaded: false,
            done: BTreeMap::new(),
            renewed: BTreeMap::new(),
            origins_complete_from: i64::MAX,
            next_check_ms: now_ms.saturating_add(check_interval_ms),
            next_producer: 0,
            pending_checks: VecDeque::new(),
            stats: TransactionStats::default(),
        }
    }

    /// When the next check-back scan is due (shard time, ms).
    pub fn next_check_ms(&self) -> u64 {
        self.next_check_ms
    }

    /// Whether the transaction of the half copy at `offset` (first copy `origin`) is decided.
    pub fn is_done(&self, offset: i64, origin: i64) -> bool {
        self.done.contains_key(&offset) || self.done.contains_key(&origin)
    }

    /// Number of decided half offsets remembered.
    pub fn done_len(&self) -> usize {
        self.done.len()
    }

    fn mark_done(&mut self, offsets: &[i64], op_offset: i64) {
        for &offset in offsets {
            self.done.entry(offset).or_insert(op_offset);
        }
        if self.done.len() > DONE_OFFSETS_MAX {
            tracing::warn!(target: "ringmq::transaction", remembered = self.done.len(),
                "too many decided half offsets remembered; forgetting the oldest");
            while self.done.len() > DONE_OFFSETS_MAX {
                self.done.pop_first();
            }
        }
    }

    fn record_renewed(&mut self, old: i64, copy: i64, origin: i64) {
        self.renewed.remove(&old);
        if self.renewed.len() < RENEWED_MAX {
            self.renewed.insert(copy, origin);
        } else {
            // Without the origin, forgetting decided offsets is no longer safe.
            self.origins_complete_from = i64::MAX;
        }
    }

    /// Forgets what the scan has passed: decided offsets below both the half progress and
    /// every origin still referenced by a pending copy. Returns the op progress to persist:
    /// the op entry of the lowest decided offset still remembered, or `op_end`.
    fn prune(&mut self, half_progress: i64, op_end: i64) -> i64 {
        self.renewed.retain(|copy, _| *copy >= half_progress);
        if half_progress >= self.origins_complete_from {
            let low_water = self
                .renewed
                .values()
                .copied()
                .min()
                .unwrap_or(half_progress)
                .min(half_progress);
            self.done = self.done.split_off(&low_water);
        }
        self.done.values().copied().min().unwrap_or(op_end)
    }
}

/// Sends the check requests whose half copy is now durable (through the connection outbox).
/// Call after store progress: the shard tick and after each batch of requests.
pub fn release_checks<S: ShardStore>(state: &mut ShardState<S>) {
    let durable = state.store.durable_offset();
    while state
        .transactions
        .pending_checks
        .front()
        .is_some_and(|(end, _, _)| *end <= durable)
    {
        let Some((_, conn, request)) = state.transactions.pending_checks.pop_front() else {
            break;
        };
        if state.push_broker_request(conn, request) {
            state.transactions.stats.checks_sent += 1;
        } else {
            tracing::warn!(target: "ringmq::transaction", shard = state.identity.shard,
                "outbox full; transaction check dropped (asked again next scan)");
        }
    }
}

/// Whether a send is a half (prepared) message: `TRAN_MSG=true`, as RocketMQ decides, or
/// the prepared transaction type in its SYSFLAG.
pub fn is_half_send(properties: &Properties, sys_flag_value: i32) -> bool {
    properties
        .get(property::TRAN_MSG)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || sys_flag_value & sys_flag::TRANSACTION_MASK == sys_flag::TRANSACTION_PREPARED
}

/// Rewrites a send into a half message (`parseHalfMessageInner`): the real topic and queue
/// go to `REAL_TOPIC`/`REAL_QID`; returns the half topic, its queue and the SYSFLAG with the
/// transaction bits cleared (so the half is indexed like a plain message of the half topic).
pub fn prepare_half(
    properties: &mut Properties,
    real_topic: &str,
    real_queue_id: i32,
    sys_flag_value: i32,
) -> (&'static str, i32, i32) {
    properties.insert(property::REAL_TOPIC, real_topic);
    properties.insert(property::REAL_QID, real_queue_id.to_string());
    (
        system::TRANS_HALF_TOPIC,
        HALF_QUEUE_ID,
        sys_flag_value & !sys_flag::TRANSACTION_MASK,
    )
}

/// Counts a stored half message.
pub fn half_stored<S>(state: &mut ShardState<S>) {
    state.transactions.stats.half_messages += 1;
}

/// The origin (first copy) of a half message: its `TRAN_PREPARED_QUEUE_OFFSET`, else itself.
fn origin_of(stored: &StoredMessage) -> i64 {
    stored
        .property(property::TRAN_PREPARED_QUEUE_OFFSET)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(stored.layout.queue_offset)
}

/// The op entry body for `offsets`: decimal offsets separated by commas.
fn op_body(offsets: &[i64]) -> String {
    offsets
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses an op entry body (one offset, or several separated by commas); bad items skipped.
pub fn parse_op_body(body: &[u8]) -> Vec<i64> {
    std::str::from_utf8(body)
        .unwrap_or_default()
        .split(',')
        .filter_map(|item| item.trim().parse::<i64>().ok())
        .collect()
}

/// Where and how a copy of a stored message is re-appended.
struct CopyTo<'a> {
    topic: &'a str,
    queue_id: i32,
    sys_flag: i32,
    properties: &'a Properties,
    prepared_transaction_offset: i64,
}

/// Appends a copy of `stored` as `to` says (born time and host, flag, body, reconsume
/// times kept) through the shard's re-append primitive ([`requeue`]), which indexes its keys
/// and wakes pulls on the destination.
fn put_copy<S: ShardStore>(
    state: &mut ShardState<S>,
    stored: &StoredMessage,
    to: CopyTo<'_>,
    now_ms: u64,
) -> Result<Appended, StoreError> {
    let mut message = Requeue::from_stored(stored).map_err(requeue_to_store)?;
    message.topic = to.topic.to_owned();
    message.queue_id = to.queue_id;
    message.sys_flag = to.sys_flag;
    message.properties = to.properties.clone();
    message.prepared_transaction_offset = to.prepared_transaction_offset;
    message.tags_code = None;
    requeue::append(state, &message, now_ms).map_err(requeue_to_store)
}

/// The store error behind a re-append failure (the variants that are not store refusals
/// mean the message cannot be stored as it is).
fn requeue_to_store(error: RequeueError) -> StoreError {
    match error {
        RequeueError::Store { source, .. } => source,
        RequeueError::NotFound { offset } => StoreError::NotFound { offset },
        other => StoreError::MessageIllegal {
            reason: other.to_string(),
        },
    }
}

/// Writes an op entry deciding `offsets` (the copy ended, then its origin when different)
/// and remembers them as decided.
fn write_op<S: ShardStore>(
    state: &mut ShardState<S>,
    offsets: &[i64],
    now_ms: u64,
) -> Result<Appended, StoreError> {
    let mut properties = Properties::new();
    properties.insert(property::TAGS, OP_TAG);
    let encoded = properties
        .encode()
        .map_err(|e| StoreError::MessageIllegal {
            reason: e.to_string(),
        })?;
    let host = state.identity.store_host;
    let message = PutMessage {
        topic: system::TRANS_OP_HALF_TOPIC.to_owned(),
        queue_id: HALF_QUEUE_ID,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_ms as i64,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(op_body(offsets)),
        properties: encoded,
        tags_code: record::tag_hash_code(Some(OP_TAG)),
        keys: Vec::new(),
        uniq_key: None,
    };
    let appended = state.store.append(message)?;
    state.stats.put_messages += 1;
    state.transactions.mark_done(offsets, appended.queue_offset);
    Ok(appended)
}

/// Where a scan of the transaction queue `topic` starts and ends: from the saved progress of
/// `CID_RMQ_SYS_TRANS` (never below the queue's minimum) to the queue's current maximum.
pub(crate) fn scan_range<S: ShardStore>(state: &ShardState<S>, topic: &str) -> (i64, i64) {
    let min = state.store.min_offset(topic, HALF_QUEUE_ID);
    let end = state.store.max_offset(topic, HALF_QUEUE_ID);
    let start = state
        .offsets
        .query(CONSUMER_GROUP, topic, HALF_QUEUE_ID)
        .unwrap_or(min)
        .max(min);
    (start, end)
}

/// Reads up to [`SCAN_BATCH`] records of `topic` queue 0 from `offset`. Returns the decoded
/// records and the offset to read next (which skips a gap the store reports).
fn read_batch<S: ShardStore>(
    state: &ShardState<S>,
    topic: &str,
    offset: i64,
) -> Result<(Vec<StoredMessage>, i64), StoreError> {
    let result = state.store.get(&QueueRead {
        topic,
        queue_id: HALF_QUEUE_ID,
        offset,
        max_count: SCAN_BATCH,
        max_bytes: SCAN_BYTES_MAX,
        tag_codes: None,
        splice: false,
    })?;
    let mut records = Vec::with_capacity(result.records.len());
    for raw in result.records.iter().filter_map(|r| r.memory()) {
        match StoredMessage::decode(raw, false) {
            Ok(stored) => records.push(stored),
            Err(error) => {
                tracing::error!(target: "ringmq::transaction", topic, offset, %error,
                    "undecodable record in a transaction queue; skipped");
            }
        }
    }
    Ok((records, result.next_begin_offset))
}

/// Rebuilds the decided offsets from the op queue, once per process (lazily, at the first
/// end or check).
fn ensure_loaded<S: ShardStore>(state: &mut ShardState<S>) {
    if state.transactions.loaded {
        return;
    }
    state.transactions.loaded = true;
    let op = system::TRANS_OP_HALF_TOPIC;
    let (mut offset, end) = scan_range(state, op);
    let mut read = 0usize;
    while offset < end && read < LOAD_OPS_MAX {
        let (records, next) = match read_batch(state, op, offset) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(target: "ringmq::transaction", shard = state.identity.shard,
                    offset, %error, "reading the op queue failed; decided offsets incomplete");
                break;
            }
        };
        for stored in &records {
            let offsets = parse_op_body(&stored.body());
            state
                .transactions
                .mark_done(&offsets, stored.layout.queue_offset);
        }
        read += records.len();
        if next <= offset {
            break;
        }
        offset = next;
    }
    state.transactions.origins_complete_from = state
        .store
        .max_offset(system::TRANS_HALF_TOPIC, HALF_QUEUE_ID);
    if read > 0 {
        tracing::info!(target: "ringmq::transaction", shard = state.identity.shard, ops = read,
            decided = state.transactions.done.len(), "transaction op log loaded");
    }
}

#[cfg(test)]
mod tests;
