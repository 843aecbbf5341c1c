//! `CONSUMER_SEND_MSG_BACK` (36): a consumer hands back a message it failed to consume.
//!
//! Header (`ConsumerSendMsgBackRequestHeader`): `offset` (CommitLog offset of the message on
//! this broker), `group`, `delayLevel` (0 = the broker chooses 3 + reconsume times, < 0 =
//! dead-letter at once), `originMsgId`, `originTopic`, `unitMode`, `maxReconsumeTimes`. The
//! routing itself is [`crate::features::retry`]; this module decodes, answers, and holds the
//! SUCCESS until the stored copy is durable (like a send).
//!
//! Errors as RocketMQ answers them: unknown group with auto-creation off →
//! SUBSCRIPTION_GROUP_NOT_EXIST; broker or retry topic not writable → NO_PERMISSION; no
//! message at the offset → SYSTEM_ERROR naming the offset.

use ringmq_wire::RemotingCommand;
use ringmq_wire::header::consumer::ConsumerSendMsgBackRequestHeader;

use crate::features::retry::{self, Outcome, SendBack};
use crate::server::handler::{HandlerResult, decode_header, error, success};
use crate::server::state::{Conn, ShardState};
use crate::server::store::ShardStore;

/// Handles `CONSUMER_SEND_MSG_BACK`.
pub fn handle<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let header: ConsumerSendMsgBackRequestHeader = decode_header(request)?;
    let send_back = SendBack {
        offset: header.offset,
        group: &header.group,
        delay_level: header.delay_level,
        max_reconsume_times: header.max_reconsume_times,
    };
    match retry::send_back(state, &send_back, now_ms) {
        Ok(outcome) => {
            let response = success(request);
            match outcome.end_offset() {
                Some(end) => {
                    if let Outcome::DeadLetter { topic, .. } = &outcome {
                        tracing::info!(target: "ringmq::server::send_back", group = header.group,
                            origin = ?header.origin_msg_id, topic, "message dead-lettered");
                    }
                    Ok(state.reply_when_durable(conn.id, end, response, now_ms))
                }
                None => Ok(Some(response)),
            }
        }
        Err(e) => {
            tracing::warn!(target: "ringmq::server::send_back", group = header.group,
                offset = header.offset, error = %e, "send back failed");
            let remark = match &e {
                retry::RetryError::Requeue(_) => {
                    format!("look message by offset failed, {}: {e}", header.offset)
                }
                _ => e.to_string(),
            };
            Err(error(request, e.response_code(), remark))
        }
    }
}

#[cfg(test)]
#[path = "send_back_tests.rs"]
mod tests;
