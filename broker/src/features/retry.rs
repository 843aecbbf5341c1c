//! Retry and dead-letter routing of messages a consumer hands back
//! (`CONSUMER_SEND_MSG_BACK`, RocketMQ's `SendMessageProcessor.consumerSendMsgBack`).
//!
//! The message is loaded by its CommitLog offset and re-appended with one more reconsume:
//! - to the group's retry topic `%RETRY%<group>` (created when missing, `retryQueueNums`
//!   queues, read/write) through the delay service, at the requested delay level or, for
//!   level 0, at level 3 + reconsume times (clamped to the highest level);
//! - to the group's dead-letter topic `%DLQ%<group>` (1 queue, read/write as in RocketMQ
//!   4.9.2+/5.x) at once when it has been reconsumed `maxReconsumeTimes` times already (the
//!   request's value, else the group's `retryMaxTimes`) or the requested level is negative.
//!
//! `RETRY_TOPIC` keeps the original topic across retries and `ORIGIN_MESSAGE_ID` the msgId
//! of the first delivery; body, flag, SYSFLAG, born host and born time are kept.
//!
//! Runs on the shard that stored the message (clients send it back to the broker they
//! pulled it from).

use ringmq_wire::ResponseCode;
use ringmq_wire::record::property;

use crate::features::requeue::{self, Requeue, RequeueError};
use crate::server::group::GroupError;
use crate::server::state::ShardState;
use crate::server::store::{Appended, ShardStore};
use crate::server::topic::{TopicError, perm, system};

/// The delay level RocketMQ starts retries at: level 3 + reconsume times (10 s first with
/// the default levels).
pub const RETRY_BASE_DELAY_LEVEL: i32 = 3;

/// One send-back request, as the handler decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendBack<'a> {
    /// CommitLog offset of the message on this shard.
    pub offset: i64,
    /// The consumer group.
    pub group: &'a str,
    /// Requested delay level: 0 = the broker chooses, < 0 = straight to the DLQ.
    pub delay_level: i32,
    /// The client's limit on reconsumes before the DLQ; `None` = the group's.
    pub max_reconsume_times: Option<i32>,
}

/// Where a handed-back message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Parked in the schedule topic, to reach `topic` (the retry topic) after the delay of
    /// `level`.
    Retry {
        /// The retry topic.
        topic: String,
        /// Its queue.
        queue_id: i32,
        /// The delay level used.
        level: usize,
        /// Where the parked copy was stored.
        appended: Appended,
    },
    /// Stored in the group's dead-letter topic.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
        /// Where it was stored.
        appended: Appended,
    },
    /// The group has no retry queue (`retryQueueNums` ≤ 0): the message is dropped, as
    /// RocketMQ does.
    Dropped,
}

impl Outcome {
    /// The CommitLog end offset of the stored copy, if one was stored.
    pub fn end_offset(&self) -> Option<u64> {
        match self {
            Outcome::Retry { appended, .. } | Outcome::DeadLetter { appended, .. } => {
                Some(appended.end_offset)
            }
            Outcome::Dropped => None,
        }
    }
}

/// Why a send-back failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// Unknown group and auto-creation is off (or the group table is full).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The broker or the retry topic is not writable.
    #[error("{0}")]
    NoPermission(String),
    /// The retry or dead-letter topic could not be created.
    #[error("topic {topic} cannot be created: {source}")]
    Topic {
        /// The topic.
        topic: String,
        /// Why.
        source: TopicError,
    },
    /// The message could not be loaded or stored again.
    #[error(transparent)]
    Requeue(#[from] RequeueError),
}

impl RetryError {
    /// The response code RocketMQ answers with.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            RetryError::Group(GroupError::NotExist { .. }) => {
                ResponseCode::SubscriptionGroupNotExist
            }
            RetryError::Group(_) | RetryError::Topic { .. } => ResponseCode::SystemError,
            RetryError::NoPermission(_) => ResponseCode::NoPermission,
            RetryError::Requeue(error) => error.response_code(),
        }
    }
}

/// Hands a consumed message back: into the retry topic through the delay service, or into
/// the dead-letter topic. The returned copy is final but durable only once the store's
/// durable offset passes [`Outcome::end_offset`].
pub fn send_back<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &SendBack<'_>,
    now_ms: u64,
) -> Result<Outcome, RetryError> {
    let group = state.groups.find_or_create(request.group, now_ms)?;
    if !perm::is_writeable(state.config.broker.permission as i32) {
        return Err(RetryError::NoPermission(format!(
            "the broker[{}] sending message is forbidden",
            state.identity.store_host
        )));
    }
    if group.retry_queue_nums <= 0 {
        tracing::info!(target: "ringmq::features::retry", group = request.group,
            "group has no retry queue; handed-back message dropped");
        return Ok(Outcome::Dropped);
    }
    let retry_topic = retry_topic(state, request.group, group.retry_queue_nums, now_ms)?;
    let mut message = Requeue::load(&state.store, request.offset)?;
    let source = message.source.clone();
    let (original_topic, offset_msg_id) = source
        .as_ref()
        .map(|s| (s.topic.clone(), s.offset_msg_id.clone()))
        .unwrap_or_default();
    if message.properties.get(property::RETRY_TOPIC).is_none() {
        message
            .properties
            .insert(property::RETRY_TOPIC, original_topic);
    }
    if message
        .properties
        .get(property::ORIGIN_MESSAGE_ID)
        .is_none_or(|id| id.trim().is_empty())
    {
        message
            .properties
            .insert(property::ORIGIN_MESSAGE_ID, offset_msg_id);
    }
    let max = request.max_reconsume_times.unwrap_or(group.retry_max_times);
    let reconsumed = message.reconsume_times;
    message.reconsume_times = reconsumed.saturating_add(1);
    if reconsumed >= max || request.delay_level < 0 {
        return dead_letter(state, request.group, message, now_ms);
    }
    let queue_id = (request.offset.unsigned_abs() % group.retry_queue_nums as u64) as i32;
    let level = if request.delay_level == 0 {
        RETRY_BASE_DELAY_LEVEL.saturating_add(reconsumed.max(0))
    } else {
        request.delay_level
    };
    let slot = state.schedule.slot(level as usize, now_ms);
    message
        .properties
        .insert(property::DELAY, slot.level.to_string());
    message
        .properties
        .insert(property::REAL_TOPIC, retry_topic.clone());
    message
        .properties
        .insert(property::REAL_QID, queue_id.to_string());
    message.topic = system::SCHEDULE_TOPIC.to_owned();
    message.queue_id = slot.queue_id;
    message.tags_code = Some(slot.deliver_ms);
    let appended = requeue::append(state, &message, now_ms)?;
    tracing::debug!(target: "ringmq::features::retry", group = request.group,
        offset = request.offset, reconsume_times = message.reconsume_times, level = slot.level,
        "message handed back for retry");
    Ok(Outcome::Retry {
        topic: retry_topic,
        queue_id,
        level: slot.level,
        appended,
    })
}

/// The group's retry topic, created (and announced to the NameServers) when missing.
fn retry_topic<S: ShardStore>(
    state: &mut ShardState<S>,
    group: &str,
    queues: i32,
    now_ms: u64,
) -> Result<String, RetryError> {
    let (config, created) = state
        .topics
        .find_or_create_retry_topic(group, queues, now_ms)
        .map_err(|source| RetryError::Topic {
            topic: system::retry_topic(group),
            source,
        })?;
    if created {
        state.request_register();
    }
    if !perm::is_writeable(config.perm) {
        return Err(RetryError::NoPermission(format!(
            "the topic[{}] sending message is forbidden",
            config.topic_name
        )));
    }
    Ok(config.topic_name)
}

fn dead_letter<S: ShardStore>(
    state: &mut ShardState<S>,
    group: &str,
    mut message: Requeue,
    now_ms: u64,
) -> Result<Outcome, RetryError> {
    let (config, created) = state
        .topics
        .find_or_create_dlq_topic(group, now_ms)
        .map_err(|source| RetryError::Topic {
            topic: system::dlq_topic(group),
            source,
        })?;
    if created {
        state.request_register();
    }
    // Like RocketMQ, the dead-letter topic's permission is not checked: a failed message
    // must land somewhere.
    message.properties.remove(property::DELAY);
    message.topic = config.topic_name.clone();
    message.queue_id = 0;
    message.tags_code = None;
    let appended = requeue::append(state, &message, now_ms)?;
    tracing::info!(target: "ringmq::features::retry", group,
        reconsume_times = message.reconsume_times, "message sent to the dead-letter topic");
    Ok(Outcome::DeadLetter {
        topic: config.topic_name,
        appended,
    })
}
