//! Requests an administrator sends to the broker for one consumer client, which the broker
//! relays to that client's connection and whose answer it returns (RocketMQ's
//! `AdminBrokerProcessor.callConsumer`):
//!
//! - `GET_CONSUMER_RUNNING_INFO` (307, `mqadmin consumerStatus`): the client answers with its
//!   `ConsumerRunningInfo` JSON;
//! - `CONSUME_MESSAGE_DIRECTLY` (309, `mqadmin queryMsgById -g G -d clientId`): the broker
//!   reads the message named by the offset msgId, puts it in the body, adds `brokerName`,
//!   `topicSysFlag` and `groupSysFlag`, and the client consumes it and answers with a
//!   `ConsumeMessageDirectlyResult`.
//!
//! The client is looked up by group and `clientId` among this shard's live consumers. As in
//! RocketMQ: a client that is not connected is answered `SYSTEM_ERROR` "The Consumer <g> <c>
//! not online"; one older than V3_1_8_SNAPSHOT "… too low to finish …"; no answer within
//! [`RELAY_TIMEOUT_MS`] (Broker2Client's 10 s) is `CONSUME_MSG_TIMEOUT` "consumer <g> <c>
//! Timeout: …"; a connection that closes first is `SYSTEM_ERROR` "invoke consumer <g> <c>
//! Exception: …". The client's answer (code, remark, header fields, body) goes back as the
//! response to the administrator's request.
//!
//! Single-threaded: the table lives in its shard's state. Bounded by [`RELAYS_MAX`].

use std::collections::HashMap;

use bytes::Bytes;
use ringmq_wire::header::consumer::GetConsumerRunningInfoRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::server::ConnId;
use crate::server::handler::{HandlerResult, decode_header, error};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{RecordRead, ShardStore};

/// How long the broker waits for the client's answer (RocketMQ's `Broker2Client.callClient`).
pub const RELAY_TIMEOUT_MS: u64 = 10_000;

/// Relays waiting for an answer per shard: admin requests are rare; past this a relay is
/// refused (each holds a copy of the request header).
pub const RELAYS_MAX: usize = 1_024;

/// `MQVersion.Version.V3_1_8_SNAPSHOT.ordinal()`: the first client version that answers
/// these requests.
pub const CLIENT_VERSION_MIN: i32 = 62;

/// One relayed request waiting for the client's answer.
#[derive(Debug, Clone)]
struct Relay {
    /// The administrator's connection.
    origin: ConnId,
    /// The administrator's request, body dropped (for its opaque and header encoding).
    request: RemotingCommand,
    /// The client's connection.
    target: ConnId,
    /// The client's address, for remarks.
    target_addr: String,
    group: String,
    client_id: String,
    deadline_ms: u64,
}

/// The relays of one shard, by the opaque of the request sent to the client.
#[derive(Debug, Default)]
pub struct RelayTable {
    pending: HashMap<i32, Relay>,
}

impl RelayTable {
    /// Relays waiting now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The earliest deadline, for the shard's timer.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.pending.values().map(|r| r.deadline_ms).min()
    }
}

/// `GET_CONSUMER_RUNNING_INFO` (307): relayed as is.
pub fn get_consumer_running_info<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let h: GetConsumerRunningInfoRequestHeader = decode_header(request)?;
    let target = find_client(state, request, &h.consumer_group, &h.client_id)?;
    call_consumer(
        state,
        conn.id,
        request,
        target,
        (RequestCode::GetConsumerRunningInfo, Bytes::new()),
        now_ms,
    )
}

/// `CONSUME_MESSAGE_DIRECTLY` (309): the message read (from memory, or on the ring as a
/// deferred task), then relayed.
pub fn consume_message_directly<S: ShardStore + 'static>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let field = |name: &'static str| {
        request
            .ext(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                error(
                    request,
                    ResponseCode::SystemError,
                    format!("the custom field <{name}> is null"),
                )
            })
    };
    let (group, client_id, msg_id) = (field("consumerGroup")?, field("clientId")?, field("msgId")?);
    let target = find_client(state, request, &group, &client_id)?;
    let (_, offset) = ringmq_wire::msgid::parse_offset_msg_id(&msg_id).map_err(|e| {
        error(
            request,
            ResponseCode::SystemError,
            format!("invalid offset msgId {msg_id}: {e}"),
        )
    })?;
    let mut relayed = request.clone();
    relayed.body = Bytes::new();
    set_ext(&mut relayed, "brokerName", &state.identity.broker_name);
    if let Some(topic) = request.ext("topic").filter(|t| !t.is_empty())
        && let Some(config) = state.topics.get(topic)
    {
        set_ext(
            &mut relayed,
            "topicSysFlag",
            &config.topic_sys_flag.to_string(),
        );
    }
    if let Some(config) = state.groups.get(&group) {
        set_ext(
            &mut relayed,
            "groupSysFlag",
            &config.group_sys_flag.to_string(),
        );
    }
    match state.store.read_record(offset) {
        RecordRead::Ready(read) => {
            let body = read.map_err(|e| not_found(request, offset, &e))?;
            call_consumer(
                state,
                conn.id,
                &relayed,
                target,
                (RequestCode::ConsumeMessageDirectly, body),
                now_ms,
            )
        }
        RecordRead::Pending(read) => {
            let origin = conn.id;
            let spawned = state.deferred.spawn(async move {
                let read = read.await;
                Box::new(move |state: &mut ShardState<S>, now_ms: u64| {
                    let body = match read {
                        Ok(body) => body,
                        Err(e) => {
                            let response = not_found(&relayed, offset, &e);
                            state.respond_later(origin, response);
                            return;
                        }
                    };
                    // The client may have gone while the message was read.
                    let answer =
                        find_client(state, &relayed, &group, &client_id).and_then(|target| {
                            call_consumer(
                                state,
                                origin,
                                &relayed,
                                target,
                                (RequestCode::ConsumeMessageDirectly, body),
                                now_ms,
                            )
                        });
                    match answer {
                        Ok(Some(response)) | Err(response) => state.respond_later(origin, response),
                        Ok(None) => {}
                    }
                }) as crate::server::deferred::Continuation<S>
            });
            match spawned {
                Ok(()) => Ok(None),
                Err(e) => Err(error(request, ResponseCode::SystemBusy, e.to_string())),
            }
        }
    }
}

fn not_found(
    request: &RemotingCommand,
    offset: i64,
    e: &impl std::fmt::Display,
) -> RemotingCommand {
    error(
        request,
        ResponseCode::SystemError,
        format!("can not find message by the offset, {offset}: {e}"),
    )
}

fn set_ext(command: &mut RemotingCommand, key: &str, value: &str) {
    command.ext_fields.insert(key.into(), value.into());
}

/// The client's connection and address.
#[derive(Debug, Clone)]
struct Target {
    conn: ConnId,
    addr: String,
    group: String,
    client_id: String,
}

fn find_client<S: ShardStore>(
    state: &ShardState<S>,
    request: &RemotingCommand,
    group: &str,
    client_id: &str,
) -> Result<Target, RemotingCommand> {
    let client = state
        .consumers
        .group(group)
        .and_then(|g| g.clients.values().find(|c| c.client_id == client_id));
    let Some(client) = client else {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("The Consumer <{group}> <{client_id}> not online"),
        ));
    };
    if client.version < CLIENT_VERSION_MIN {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "The Consumer <{client_id}> Version <{}> too low to finish, please upgrade it to \
                 V3_1_8_SNAPSHOT",
                client.version
            ),
        ));
    }
    Ok(Target {
        conn: client.conn_id,
        addr: client.remote_addr.clone(),
        group: group.to_owned(),
        client_id: client_id.to_owned(),
    })
}

/// Sends `request`'s header fields and `body` to the client as request `code`, and records
/// the relay; the answer comes back through [`on_client_response`].
fn call_consumer<S: ShardStore>(
    state: &mut ShardState<S>,
    origin: ConnId,
    request: &RemotingCommand,
    target: Target,
    (code, body): (RequestCode, Bytes),
    now_ms: u64,
) -> HandlerResult {
    let exception = |reason: &str| {
        error(
            request,
            ResponseCode::SystemError,
            format!(
                "invoke consumer <{}> <{}> Exception: {reason}",
                target.group, target.client_id
            ),
        )
    };
    if state.relays.pending.len() >= RELAYS_MAX {
        return Err(exception(&format!(
            "{RELAYS_MAX} requests to consumers already wait for an answer on this broker"
        )));
    }
    let mut call = RemotingCommand::request(code);
    // Java clients older than 5.x have no RUST language code (fastjson reads it as null).
    call.language = ringmq_wire::LanguageCode::Java;
    call.ext_fields = request.ext_fields.clone();
    call.body = body;
    let opaque = call.opaque;
    if !state.push_broker_request(target.conn, call) {
        return Err(exception("the broker's outbox is full"));
    }
    let mut kept = request.clone();
    kept.body = Bytes::new();
    tracing::debug!(target: "ringmq::server::relay", code = code.as_i32(), group = %target.group,
        client = %target.client_id, "relaying to consumer");
    state.relays.pending.insert(
        opaque,
        Relay {
            origin,
            request: kept,
            target: target.conn,
            target_addr: target.addr,
            group: target.group,
            client_id: target.client_id,
            deadline_ms: now_ms + RELAY_TIMEOUT_MS,
        },
    );
    Ok(None)
}

/// A response arrived on `conn`: if it answers a relay, send it back to the administrator.
/// Returns whether it did (other responses are ignored by the caller).
pub fn on_client_response<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: ConnId,
    response: RemotingCommand,
) -> bool {
    let matches = state
        .relays
        .pending
        .get(&response.opaque)
        .is_some_and(|r| r.target == conn);
    if !matches {
        return false;
    }
    let Some(relay) = state.relays.pending.remove(&response.opaque) else {
        return false;
    };
    let mut answer = RemotingCommand::response_to(&relay.request, ResponseCode::Success);
    answer.code = response.code;
    answer.remark = response.remark;
    answer.ext_fields = response.ext_fields;
    answer.body = response.body;
    state.respond_later(relay.origin, answer);
    true
}

/// Answers the relays whose client did not answer in time (`CONSUME_MSG_TIMEOUT`).
pub fn expire<S: ShardStore>(state: &mut ShardState<S>, now_ms: u64) {
    if state.relays.pending.is_empty() {
        return;
    }
    let late: Vec<i32> = state
        .relays
        .pending
        .iter()
        .filter(|(_, r)| r.deadline_ms <= now_ms)
        .map(|(opaque, _)| *opaque)
        .collect();
    for opaque in late {
        let Some(relay) = state.relays.pending.remove(&opaque) else {
            continue;
        };
        tracing::warn!(target: "ringmq::server::relay", group = %relay.group,
            client = %relay.client_id, "consumer did not answer a relayed request in time");
        let response = error(
            &relay.request,
            ResponseCode::ConsumeMsgTimeout,
            format!(
                "consumer <{}> <{}> Timeout: wait response on the channel <{}> timeout, \
                 {RELAY_TIMEOUT_MS}(ms)",
                relay.group, relay.client_id, relay.target_addr
            ),
        );
        state.respond_later(relay.origin, response);
    }
}

/// A connection closed: relays to it are answered with an exception, relays from it are
/// forgotten.
pub fn connection_closed<S: ShardStore>(state: &mut ShardState<S>, conn: ConnId) {
    if state.relays.pending.is_empty() {
        return;
    }
    let affected: Vec<i32> = state
        .relays
        .pending
        .iter()
        .filter(|(_, r)| r.target == conn || r.origin == conn)
        .map(|(opaque, _)| *opaque)
        .collect();
    for opaque in affected {
        let Some(relay) = state.relays.pending.remove(&opaque) else {
            continue;
        };
        if relay.origin == conn {
            continue;
        }
        let response = error(
            &relay.request,
            ResponseCode::SystemError,
            format!(
                "invoke consumer <{}> <{}> Exception: the connection to <{}> closed before \
                 it answered",
                relay.group, relay.client_id, relay.target_addr
            ),
        );
        state.respond_later(relay.origin, response);
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
