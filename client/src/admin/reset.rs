//! Resetting a consumer group's offsets by time while its consumers run (`mqadmin
//! resetOffsetByTime`), as RocketMQ's `DefaultMQAdminExt` does it:
//!
//! 1. every master of the topic's route gets `INVOKE_BROKER_TO_RESET_OFFSET` (222): the
//!    broker finds the offset of each of its queues for the time, commits it, and sends
//!    `RESET_CONSUMER_CLIENT_OFFSET` (220) to the group's live consumers, which drop what they
//!    hold of those queues and consume again from there;
//! 2. a broker answering `CONSUMER_NOT_ONLINE` (no consumer of the group is connected to it)
//!    gets the offline reset instead (mqadmin's `resetOffsetByTimestampOld`): for each of its
//!    queues `SEARCH_OFFSET_BY_TIMESTAMP` (`GET_MAX_OFFSET` for `-1`), then
//!    `UPDATE_CONSUMER_OFFSET` when forced or when the offset moves back (or the group has
//!    none yet).

use std::collections::BTreeMap;

use ringmq_wire::RequestCode;
use ringmq_wire::ResponseCode;
use ringmq_wire::body::client::ResetOffsetBody;
use ringmq_wire::header::consumer::ResetOffsetRequestHeader;
use ringmq_wire::header::send::RpcFields;
use tracing::info;

use super::{Admin, wire_error};
use crate::consumer::api;
use crate::error::{ClientError, Result};
use crate::queue::MessageQueue;

/// How one broker's queues were reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPath {
    /// Online: the broker told the group's consumers (222 → 220).
    Online,
    /// Offline: no consumer of the group was connected to the broker; the committed offsets
    /// were updated one by one.
    Offline,
}

/// The result of [`Admin::reset_offset_by_time_online`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetOutcome {
    /// The new offset of every queue of the topic.
    pub offsets: BTreeMap<MessageQueue, i64>,
    /// How each broker (by master address) was reset.
    pub brokers: BTreeMap<String, ResetPath>,
}

impl Admin {
    /// `INVOKE_BROKER_TO_RESET_OFFSET` on the broker at `addr`: its queues of `topic` move to
    /// the first message stored at or after `timestamp_ms` (`-1`: the end of each queue),
    /// backwards only unless `force`; with `queue` (5.x), only that queue id, to the given
    /// offset if there is one. Returns the broker's table. A broker with no consumer of the
    /// group connected answers `CONSUMER_NOT_ONLINE` ([`ClientError::Broker`]).
    pub async fn invoke_broker_to_reset_offset(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
        force: bool,
        queue: Option<(i32, Option<i64>)>,
    ) -> Result<BTreeMap<MessageQueue, i64>> {
        let header = ResetOffsetRequestHeader {
            topic: topic.to_owned(),
            group: group.to_owned(),
            timestamp: timestamp_ms,
            is_force: force,
            queue_id: queue.map(|(q, _)| q),
            offset: queue.and_then(|(_, o)| o),
            rpc: RpcFields::default(),
        };
        let response = self
            .call(
                addr,
                Self::request(RequestCode::InvokeBrokerToResetOffset, &header),
            )
            .await?;
        let body = ResetOffsetBody::decode(&response.body).map_err(wire_error(addr))?;
        Ok(body.offset_table)
    }

    /// Resets `group`'s offsets of every queue of `topic` to `timestamp_ms` on every master
    /// of the topic; see the module docs. `force`: also move offsets forward.
    pub async fn reset_offset_by_time_online(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
        force: bool,
    ) -> Result<ResetOutcome> {
        let route = self.instance.routes().refresh(topic).await?;
        let mut outcome = ResetOutcome::default();
        for (broker_name, addr) in &route.masters {
            let online = self
                .invoke_broker_to_reset_offset(addr, group, topic, timestamp_ms, force, None)
                .await;
            match online {
                Ok(table) => {
                    outcome.offsets.extend(table);
                    outcome.brokers.insert(addr.clone(), ResetPath::Online);
                }
                Err(error)
                    if error.response_code() == Some(ResponseCode::ConsumerNotOnline.as_i32()) =>
                {
                    let queues: Vec<&MessageQueue> = route
                        .read_queues
                        .iter()
                        .filter(|q| &q.broker_name == broker_name)
                        .collect();
                    for queue in queues {
                        let offset = self
                            .reset_queue_offline(addr, group, queue, timestamp_ms, force)
                            .await?;
                        outcome.offsets.insert(queue.clone(), offset);
                    }
                    outcome.brokers.insert(addr.clone(), ResetPath::Offline);
                }
                Err(error) => return Err(error),
            }
        }
        if outcome.brokers.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "no master broker serves topic {topic:?}"
            )));
        }
        info!(group, topic, timestamp_ms, force, brokers = ?outcome.brokers, "offsets reset");
        Ok(outcome)
    }

    /// One queue of the broker at `addr` to `offset` (5.x `resetOffsetByTime -b -q -o`, or
    /// `-b -q` with the offset found for a time): through `INVOKE_BROKER_TO_RESET_OFFSET`
    /// with `queueId`/`offset`, so that running consumers apply it; a broker with no consumer
    /// of the group connected gets `UPDATE_CONSUMER_OFFSET` instead. Returns how it went.
    pub async fn reset_queue_offset(
        &self,
        addr: &str,
        group: &str,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<ResetPath> {
        let online = self
            .invoke_broker_to_reset_offset(
                addr,
                group,
                &queue.topic,
                0,
                true,
                Some((queue.queue_id, Some(offset))),
            )
            .await;
        match online {
            Ok(_) => Ok(ResetPath::Online),
            Err(error)
                if error.response_code() == Some(ResponseCode::ConsumerNotOnline.as_i32()) =>
            {
                api::update_consumer_offset(&self.instance, addr, group, queue, offset).await?;
                Ok(ResetPath::Offline)
            }
            Err(error) => Err(error),
        }
    }

    /// The offset of `queue` on the broker at `addr` for `timestamp_ms` (`-1`: its end).
    pub async fn offset_for_time(
        &self,
        addr: &str,
        queue: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64> {
        if timestamp_ms < 0 {
            api::max_offset(&self.instance, addr, queue).await
        } else {
            api::search_offset(&self.instance, addr, queue, timestamp_ms).await
        }
    }

    /// mqadmin's offline reset of one queue: the offset for the time, committed when forced,
    /// when it moves back, or when the group has none. Returns the queue's offset afterwards.
    async fn reset_queue_offline(
        &self,
        addr: &str,
        group: &str,
        queue: &MessageQueue,
        timestamp_ms: i64,
        force: bool,
    ) -> Result<i64> {
        let target = self.offset_for_time(addr, queue, timestamp_ms).await?;
        let committed = api::query_consumer_offset(&self.instance, addr, group, queue).await?;
        match committed {
            Some(committed) if !force && target > committed => Ok(committed),
            _ => {
                api::update_consumer_offset(&self.instance, addr, group, queue, target).await?;
                Ok(target)
            }
        }
    }
}
