//! The delay-level service (RocketMQ's `ScheduleMessageService`): messages sent with a
//! `DELAY` level, and messages consumers hand back for retry, wait in `SCHEDULE_TOPIC_XXXX`
//! queue `level − 1` and are re-appended to their real topic and queue (`REAL_TOPIC`,
//! `REAL_QID`, `DELAY` cleared) once due.
//!
//! One [`ScheduleService`] per shard, inside its [`ShardState`], driven by the shard's timer
//! task through [`ShardState::tick`] (at least every 100 ms, and at the earliest known due
//! time): [`deliver_due`] walks each level's queue in order from its delay offset and
//! delivers every message whose time has come (store time + the level's delay), at most
//! [`DELIVER_BATCH_MAX`] per level per tick. A level stops at its first message not yet due,
//! so delivery is in order per level, as in RocketMQ.
//!
//! Progress (RocketMQ's `delayOffset.json`: level → next offset) is kept in the shard's
//! consumer offset table under the internal group [`DELAY_OFFSET_GROUP`] and topic
//! `SCHEDULE_TOPIC_XXXX`, and saved with it. A level's offset only moves past a message once
//! the re-appended copy is durable ([`record_durable`]), so a crash never loses a delayed
//! message; it may deliver again those whose offset was not saved yet (at-least-once, as in
//! RocketMQ). After a clean stop nothing is lost or delivered twice.
//!
//! [`ShardState`]: crate::server::state::ShardState
//! [`ShardState::tick`]: crate::server::state::ShardState::tick

use std::collections::VecDeque;

use ringmq_wire::record::{StoredMessage, property};

use crate::features::requeue::{self, Requeue, RequeueError};
use crate::server::offset::ConsumerOffsetTable;
use crate::server::state::ShardState;
use crate::server::store::{GetStatus, QueueRead, ShardStore, StoreError};
use crate::server::topic::system;

/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Most delay levels accepted in `message_delay_level` (bounds the per-tick scan).
pub const DELAY_LEVELS_MAX: usize = 64;

/// Longest delay of one level: a year (keeps deliver times far from overflowing).
pub const DELAY_MS_MAX: u64 = 365 * 24 * 3_600_000;

/// Most messages one level delivers per tick (bounds the work of one timer tick; the
/// rest follows at the next tick, 100 ms later at most).
pub const DELIVER_BATCH_MAX: usize = 256;

/// Most deliveries of one level waiting to become durable before the level pauses
/// (bounds the progress queue when the disk falls behind).
pub const IN_FLIGHT_MAX: usize = 4_096;

/// Records read from a schedule queue per store read.
pub const READ_BATCH: usize = 32;

/// Bytes read from a schedule queue per store read (the first record is always returned).
pub const READ_BYTES_MAX: usize = 1 << 20;

/// Pause of a level after the store refused a delivery (RocketMQ waits 10 s; the store
/// refuses when it is full or behind, which a second usually settles).
pub const STORE_RETRY_MS: u64 = 1_000;

/// The internal consumer group under which each level's delay offset is kept in the
/// offset table (topic `SCHEDULE_TOPIC_XXXX`, queue `level − 1`).
pub const DELAY_OFFSET_GROUP: &str = "%DELAY_OFFSET%";

/// Why a `message_delay_level` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayLevelError {
    /// No level at all.
    #[error("no delay level given; write e.g. \"{DEFAULT_DELAY_LEVELS}\"")]
    Empty,
    /// Too many levels.
    #[error("{count} delay levels; at most {DELAY_LEVELS_MAX} are accepted")]
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// One level does not parse.
    #[error(
        "delay level {level} ({text:?}) is not a positive number followed by s, m, h or d, \
         at most 365d"
    )]
    BadLevel {
        /// Its number, from 1.
        level: usize,
        /// Its text.
        text: String,
    },
}

/// Parses RocketMQ's `messageDelayLevel` format: space-separated delays, each a positive
/// integer and a unit among `s`, `m`, `h`, `d`. Returns each level's delay in ms.
pub fn parse_delay_levels(text: &str) -> Result<Vec<u64>, DelayLevelError> {
    let mut levels = Vec::new();
    for (i, item) in text.split_whitespace().enumerate() {
        if i >= DELAY_LEVELS_MAX {
            return Err(DelayLevelError::TooMany {
                count: text.split_whitespace().count(),
            });
        }
        let bad = || DelayLevelError::BadLevel {
            level: i + 1,
            text: item.to_owned(),
        };
        let unit = item.chars().last().ok_or_else(bad)?;
        let number = &item[..item.len() - unit.len_utf8()];
        let unit_ms: u64 = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        let number: u64 = number.parse().map_err(|_| bad())?;
        let ms = number.checked_mul(unit_ms).ok_or_else(bad)?;
        if ms == 0 || ms > DELAY_MS_MAX {
            return Err(bad());
        }
        levels.push(ms);
    }
    if levels.is_empty() {
        return Err(DelayLevelError::Empty);
    }
    Ok(levels)
}

/// RocketMQ's default levels in ms.
pub fn default_delay_levels_ms() -> Vec<u64> {
    parse_delay_levels(DEFAULT_DELAY_LEVELS).unwrap_or_default()
}

/// Where a delayed message is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleSlot {
    /// The level after clamping to the highest configured one.
    pub level: usize,
    /// The `SCHEDULE_TOPIC_XXXX` queue: `level − 1`.
    pub queue_id: i32,
    /// When it is due, ms (what RocketMQ writes in the ConsumeQueue tag slot).
    pub deliver_ms: i64,
}

/// One level's delivery progress.
#[derive(Debug, Clone, Default)]
struct Level {
    /// Next schedule-queue offset to look at.
    next: i64,
    /// Deliveries not yet durable: (CommitLog end offset of the copy, offset after it).
    in_flight: VecDeque<(u64, i64)>,
    /// The head message is known not due before this time (ms).
    not_before_ms: u64,
}

/// Delay levels and per-level delivery progress of one shard.
#[derive(Debug, Clone)]
pub struct ScheduleService {
    levels_ms: Vec<u64>,
    levels: Vec<Level>,
    in_flight: usize,
    delivered: u64,
    /// A level stopped at its per-tick bound with due messages left: tick again at once.
    backlog: bool,
}

impl ScheduleService {
    /// A service for the given level delays (level n at index n − 1), progress at 0.
    pub fn new(levels_ms: Vec<u64>) -> Self {
        let levels_ms = if levels_ms.is_empty() {
            default_delay_levels_ms()
        } else {
            levels_ms
        };
        let levels = vec![Level::default(); levels_ms.len()];
        ScheduleService {
            levels_ms,
            levels,
            in_flight: 0,
            delivered: 0,
            backlog: false,
        }
    }

    /// The highest level.
    pub fn max_level(&self) -> usize {
        self.levels_ms.len()
    }

    /// The delay of `level` (clamped to the highest), ms.
    pub fn delay_ms(&self, level: usize) -> u64 {
        let index = level.clamp(1, self.levels_ms.len()) - 1;
        self.levels_ms[index]
    }

    /// Where a message sent at `now_ms` with `level` (> 0) waits; levels above the highest
    /// use the highest, as RocketMQ does.
    pub fn slot(&self, level: usize, now_ms: u64) -> ScheduleSlot {
        let level = level.clamp(1, self.levels_ms.len());
        ScheduleSlot {
            level,
            queue_id: level as i32 - 1,
            deliver_ms: (now_ms + self.delay_ms(level)) as i64,
        }
    }

    /// Each level's next offset to deliver (RocketMQ's delay offset table), level 1 first.
    pub fn offsets(&self) -> Vec<i64> {
        self.levels.iter().map(|l| l.next).collect()
    }

    /// Level → next offset to deliver, as RocketMQ's `delayOffset.json` `offsetTable`.
    pub fn offset_table(&self) -> std::collections::BTreeMap<i32, i64> {
        (1..)
            .zip(self.levels.iter())
            .map(|(level, l)| (level, l.next))
            .collect()
    }

    /// Messages delivered since start.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Restores each level's progress from the offset table (after a restart).
    pub fn restore(&mut self, offsets: &ConsumerOffsetTable) {
        for (index, level) in self.levels.iter_mut().enumerate() {
            if let Some(offset) =
                offsets.query(DELAY_OFFSET_GROUP, system::SCHEDULE_TOPIC, index as i32)
            {
                level.next = offset;
            }
        }
    }

    /// The earliest time a waiting head message is known to be due, if any (0 = due messages
    /// are left over from the last tick: tick again at once).
    pub fn next_due_ms(&self) -> Option<u64> {
        if self.backlog {
            return Some(0);
        }
        self.levels
            .iter()
            .map(|l| l.not_before_ms)
            .filter(|&t| t > 0)
            .min()
    }
}

/// RocketMQ's runtime-info entries `scheduleMessageOffset_<level>` = `<delivered up
/// to>,<stored up to>` for each level (what `mqadmin brokerStatus` shows).
pub fn runtime_info<S: ShardStore>(state: &ShardState<S>) -> Vec<(String, String)> {
    state
        .schedule
        .offset_table()
        .into_iter()
        .map(|(level, next)| {
            let max = state.store.max_offset(system::SCHEDULE_TOPIC, level - 1);
            (
                format!("scheduleMessageOffset_{level}"),
                format!("{next},{max}"),
            )
        })
        .collect()
}

/// Delivers every due message of every level (at most [`DELIVER_BATCH_MAX`] per level).
/// Call from the shard's tick.
pub fn deliver_due<S: ShardStore>(state: &mut ShardState<S>, now_ms: u64) {
    state.schedule.backlog = false;
    for index in 0..state.schedule.levels.len() {
        let queue_id = index as i32;
        if state.schedule.levels[index].not_before_ms > now_ms {
            continue;
        }
        state.schedule.levels[index].not_before_ms = 0;
        if state.store.max_offset(system::SCHEDULE_TOPIC, queue_id)
            <= state.schedule.levels[index].next
        {
            continue;
        }
        deliver_level(state, index, now_ms);
    }
}

/// What happened to one schedule-queue record.
enum Step {
    /// Delivered (copy ends at this CommitLog offset) or skipped (`None`): move on.
    Next(Option<u64>),
    /// Not due before this time: stop the level.
    Wait(u64),
}

fn deliver_level<S: ShardStore>(state: &mut ShardState<S>, index: usize, now_ms: u64) {
    let queue_id = index as i32;
    let mut delivered = 0;
    loop {
        if delivered >= DELIVER_BATCH_MAX {
            // Bounded work per tick; the rest follows at the next tick, at once.
            state.schedule.backlog = true;
            return;
        }
        if state.schedule.levels[index].in_flight.len() >= IN_FLIGHT_MAX {
            // The disk is behind: wait for durability (normal ticks, not a busy loop).
            return;
        }
        let next = state.schedule.levels[index].next;
        let read = state.store.get(&QueueRead {
            topic: system::SCHEDULE_TOPIC,
            queue_id,
            offset: next,
            max_count: READ_BATCH.min(DELIVER_BATCH_MAX - delivered),
            max_bytes: READ_BYTES_MAX,
            tag_codes: None,
            splice: false,
        });
        let result = match read {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(target: "ringmq::features::schedule", level = index + 1, next,
                    %error, "reading the schedule queue failed; retrying later");
                state.schedule.levels[index].not_before_ms = now_ms + STORE_RETRY_MS;
                return;
            }
        };
        match result.status {
            GetStatus::Found => {}
            GetStatus::OffsetOverflowOne | GetStatus::NoMessageInQueue => return,
            status => {
                // Entries gone (retention) or never there: jump to where the store says.
                if result.next_begin_offset != next {
                    tracing::warn!(target: "ringmq::features::schedule", level = index + 1,
                        from = next, to = result.next_begin_offset, ?status,
                        "delay offset corrected");
                    advance(state, index, next, result.next_begin_offset, None);
                    continue;
                }
                return;
            }
        }
        if result.records.is_empty() {
            return;
        }
        for raw in &result.records {
            let offset = state.schedule.levels[index].next;
            let Some(raw) = raw.memory() else {
                // A read with `splice: false` returns every record in memory.
                tracing::error!(target: "ringmq::features::schedule", level = index + 1, offset,
                    "the store returned a file span for an in-memory read; retrying later");
                state.schedule.levels[index].not_before_ms = now_ms + STORE_RETRY_MS;
                return;
            };
            match deliver_record(state, index, raw, now_ms) {
                Ok(Step::Next(end)) => {
                    advance(state, index, offset, offset + 1, end);
                    delivered += 1;
                }
                Ok(Step::Wait(due_ms)) => {
                    state.schedule.levels[index].not_before_ms = due_ms;
                    return;
                }
                Err(error) => {
                    tracing::warn!(target: "ringmq::features::schedule", level = index + 1,
                        offset, %error, "delivery refused by the store; retrying later");
                    state.schedule.levels[index].not_before_ms = now_ms + STORE_RETRY_MS;
                    return;
                }
            }
        }
    }
}

/// Moves a level from `from` to `to`; the offset table follows once `end` (the copy's
/// CommitLog end, if a copy was made) is durable.
fn advance<S: ShardStore>(
    state: &mut ShardState<S>,
    index: usize,
    from: i64,
    to: i64,
    end: Option<u64>,
) {
    debug_assert_ne!(to, from, "a level must move");
    let level = &mut state.schedule.levels[index];
    level.next = to;
    // A skip has nothing to wait for, but is queued behind earlier copies so that the
    // saved offset never passes a copy that is not durable yet.
    level.in_flight.push_back((end.unwrap_or(0), to));
    state.schedule.in_flight += 1;
    if end.is_some() {
        state.schedule.delivered += 1;
    }
}

fn deliver_record<S: ShardStore>(
    state: &mut ShardState<S>,
    index: usize,
    raw: &bytes::Bytes,
    now_ms: u64,
) -> Result<Step, StoreError> {
    let stored = match StoredMessage::decode(raw, true) {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(target: "ringmq::features::schedule", level = index + 1, %error,
                "unreadable delayed message skipped");
            return Ok(Step::Next(None));
        }
    };
    let due_ms = stored
        .layout
        .store_timestamp
        .saturating_add(state.schedule.levels_ms[index] as i64);
    if due_ms > now_ms as i64 {
        return Ok(Step::Wait(due_ms.max(1) as u64));
    }
    let message = match due_message(&stored) {
        Ok(message) => message,
        Err(reason) => {
            tracing::error!(target: "ringmq::features::schedule", level = index + 1,
                offset = stored.layout.queue_offset, reason, "delayed message skipped");
            return Ok(Step::Next(None));
        }
    };
    match requeue::append(state, &message, now_ms) {
        Ok(appended) => Ok(Step::Next(Some(appended.end_offset))),
        Err(RequeueError::Store { source, .. }) => match source {
            StoreError::MessageIllegal { .. } => {
                tracing::error!(target: "ringmq::features::schedule", level = index + 1,
                    topic = message.topic, %source, "delayed message refused by the store; skipped");
                Ok(Step::Next(None))
            }
            other => Err(other),
        },
        Err(error) => {
            tracing::error!(target: "ringmq::features::schedule", level = index + 1, %error,
                "delayed message skipped");
            Ok(Step::Next(None))
        }
    }
}

/// The message to deliver for a due schedule-queue record: its real topic and queue,
/// `DELAY` cleared, tag slot back to the tag hash.
fn due_message(stored: &StoredMessage) -> Result<Requeue, String> {
    let mut message = Requeue::from_stored(stored).map_err(|e| e.to_string())?;
    let topic = message
        .properties
        .get(property::REAL_TOPIC)
        .ok_or("no REAL_TOPIC property")?
        .to_owned();
    let queue_id: i32 = message
        .properties
        .get(property::REAL_QID)
        .and_then(|q| q.trim().parse().ok())
        .filter(|q| *q >= 0)
        .ok_or("no valid REAL_QID property")?;
    if topic == system::TRANS_HALF_TOPIC {
        return Err("a transaction half message cannot be delayed".into());
    }
    message.topic = topic;
    message.queue_id = queue_id;
    message.properties.remove(property::DELAY);
    message.tags_code = None;
    Ok(message)
}

/// Moves the saved delay offsets past deliveries that became durable. Call whenever the
/// store's durable offset may have advanced.
pub fn record_durable<S: ShardStore>(state: &mut ShardState<S>) {
    if state.schedule.in_flight == 0 {
        return;
    }
    let durable = state.store.durable_offset();
    for index in 0..state.schedule.levels.len() {
        let mut saved = None;
        let level = &mut state.schedule.levels[index];
        while let Some(&(end, next)) = level.in_flight.front() {
            if end > durable {
                break;
            }
            level.in_flight.pop_front();
            state.schedule.in_flight -= 1;
            saved = Some(next);
        }
        if let Some(next) = saved {
            state.offsets.commit(
                DELAY_OFFSET_GROUP,
                system::SCHEDULE_TOPIC,
                index as i32,
                next,
            );
        }
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
