//! Broker-initiated consumer requests, which a broker relays for an administrator:
//!
//! - `GET_CONSUMER_RUNNING_INFO` (307): the consumer of the named group reports its
//!   properties, subscriptions and per-queue process-queue state
//!   ([`ConsumerRunningInfo`]); `mqadmin consumerStatus` and the dashboard show it.
//! - `RESET_CONSUMER_CLIENT_OFFSET` (220): after `mqadmin resetOffsetByTime` the broker sends
//!   every client of the group the new offset of each queue ([`ResetOffsetBody`]); a push
//!   consumer pauses rebalancing, drops the listed queues it holds (messages cached or being
//!   consumed are discarded, their late results ignored), sets and persists the offsets, then
//!   takes the queues again from the new offsets.
//! - `CONSUME_MESSAGE_DIRECTLY` (309): after `mqadmin queryMsgById -g G -d clientId` the
//!   broker sends one stored message; the push consumer of the group runs its listener on it
//!   (outside its queues: no offset moves, nothing is sent back) and answers how it went
//!   ([`ConsumeMessageDirectlyResult`]).
//!
//! Routing follows `NOTIFY_CONSUMER_IDS_CHANGED`: `register_handlers` registers one handler
//! per code on the instance's [`RemotingClient`]; each running consumer registers a
//! `ConsumerHandle` under its group (`ConsumerHandles`). Handlers run on their own task
//! (see [`crate::remoting`]), so a reset that waits for the broker does not stall the
//! connection that brought it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ringmq_wire::body::client::{
    ConsumerRunningInfo, PROP_CLIENT_VERSION, PROP_CONSUME_TYPE, PROP_NAMESERVER_ADDR,
    ResetOffsetBody,
};
use ringmq_wire::body::consumer::MessageQueue;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::{
    GetConsumerRunningInfoRequestHeader, ResetOffsetRequestHeader,
};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use tracing::{debug, info};

use crate::consumer::message_ext::MessageExt;
use crate::remoting::{BoxFuture, RemotingClient};

/// `MQVersion.getVersionDesc` of the version ringmq announces
/// ([`ringmq_wire::command::CURRENT_VERSION`], 474).
pub const CLIENT_VERSION_DESC: &str = "V5_3_1_SNAPSHOT";
const _: () = assert!(ringmq_wire::command::CURRENT_VERSION == 474);

/// What a running consumer offers to broker-initiated requests.
pub(crate) trait ConsumerHandle: Send + Sync {
    /// The consumer's running info, without the instance-level properties (NameServer
    /// address, client version), which the handler adds.
    fn running_info(&self) -> ConsumerRunningInfo;

    /// Resets the offsets of the queues of `topic` this consumer holds; resolves to how many
    /// queues were reset.
    fn reset_offset(&self, topic: String, offsets: BTreeMap<MessageQueue, i64>)
    -> BoxFuture<usize>;

    /// Runs the listener on `message` now and reports how it went.
    fn consume_directly(&self, message: MessageExt) -> BoxFuture<ConsumeMessageDirectlyResult>;
}

/// RocketMQ's `CMResult`: how a directly consumed message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CmResult {
    /// Consumed (concurrent `CONSUME_SUCCESS`, orderly `SUCCESS`).
    #[serde(rename = "CR_SUCCESS")]
    Success,
    /// To be consumed again later (concurrent `RECONSUME_LATER`, orderly
    /// `SUSPEND_CURRENT_QUEUE_A_MOMENT`).
    #[serde(rename = "CR_LATER")]
    Later,
    /// Orderly `ROLLBACK` (Java only).
    #[serde(rename = "CR_ROLLBACK")]
    Rollback,
    /// Orderly `COMMIT` (Java only).
    #[serde(rename = "CR_COMMIT")]
    Commit,
    /// The listener failed (a panic, for the Rust client); the remark says how.
    #[serde(rename = "CR_THROW_EXCEPTION")]
    ThrowException,
    /// The listener returned nothing (Java only).
    #[serde(rename = "CR_RETURN_NULL")]
    ReturnNull,
}

/// RocketMQ's `ConsumeMessageDirectlyResult`, the body of the answer to
/// `CONSUME_MESSAGE_DIRECTLY`, in fastjson's form (fields in alphabetical order, `remark`
/// left out when there is none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeMessageDirectlyResult {
    /// Whether the consumer commits offsets itself (always true for ringmq's consumers, as
    /// for Java's concurrent ones and orderly ones that keep the default).
    pub auto_commit: bool,
    /// How the listener handled the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consume_result: Option<CmResult>,
    /// Whether the consumer is orderly.
    pub order: bool,
    /// Why the listener failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// How long the listener took, ms (Java's spelling).
    pub spent_time_mills: u64,
}

impl ConsumeMessageDirectlyResult {
    /// The JSON body, as a Java client writes it.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes the body of an answer.
    pub fn decode(body: &[u8]) -> Result<Self, ringmq_wire::WireError> {
        serde_json::from_slice(body).map_err(|e| ringmq_wire::WireError::InvalidJson {
            what: "consume message directly result",
            reason: e.to_string(),
        })
    }
}

/// Running consumers of one client instance by group.
pub(crate) type ConsumerHandles = Arc<Mutex<HashMap<String, Arc<dyn ConsumerHandle>>>>;

fn handle_of(handles: &ConsumerHandles, group: &str) -> Option<Arc<dyn ConsumerHandle>> {
    handles
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(group)
        .cloned()
}

/// Registers the 307, 220 and 309 handlers on `remoting`. `namesrv_addr` is reported as
/// `PROP_NAMESERVER_ADDR`.
pub(crate) fn register_handlers(
    remoting: &RemotingClient,
    handles: ConsumerHandles,
    namesrv_addr: String,
) {
    let running = handles.clone();
    remoting.register_handler(
        RequestCode::GetConsumerRunningInfo,
        Arc::new(move |addr, request: RemotingCommand| {
            let response = running_info(&running, &namesrv_addr, &addr, &request);
            Box::pin(async move { Some(response) })
        }),
    );
    let direct = handles.clone();
    remoting.register_handler(
        RequestCode::ResetConsumerClientOffset,
        Arc::new(move |addr, request: RemotingCommand| {
            let handles = handles.clone();
            Box::pin(async move { Some(reset_offset(&handles, &addr, &request).await) })
        }),
    );
    remoting.register_handler(
        RequestCode::ConsumeMessageDirectly,
        Arc::new(move |addr, request: RemotingCommand| {
            let handles = direct.clone();
            Box::pin(async move { Some(consume_directly(&handles, &addr, &request).await) })
        }),
    );
}

/// Answers `CONSUME_MESSAGE_DIRECTLY` (Java's `ClientRemotingProcessor.consumeMessageDirectly`):
/// the body is one stored record, `consumerGroup` and `brokerName` come as header fields.
async fn consume_directly(
    handles: &ConsumerHandles,
    addr: &str,
    request: &RemotingCommand,
) -> RemotingCommand {
    let fail = |remark: String| {
        RemotingCommand::error_response(request, ResponseCode::SystemError, remark)
    };
    let Some(group) = request.ext("consumerGroup").filter(|g| !g.is_empty()) else {
        return fail("the custom field <consumerGroup> is null".to_owned());
    };
    let broker_name = request.ext("brokerName").unwrap_or_default();
    let message = ringmq_wire::record::StoredMessage::decode(&request.body, true)
        .map_err(|e| e.to_string())
        .and_then(|stored| {
            MessageExt::from_stored(&stored, broker_name).map_err(|e| e.to_string())
        });
    let message = match message {
        Ok(message) => message,
        Err(reason) => return fail(format!("the message to consume does not decode: {reason}")),
    };
    let Some(handle) = handle_of(handles, group) else {
        return fail(format!(
            "The Consumer Group <{group}> not exist in this consumer"
        ));
    };
    info!(%addr, group, msg_id = %message.msg_id(), "consuming a message directly");
    let result = handle.consume_directly(message).await;
    debug!(group, ?result, "consumed directly");
    RemotingCommand::response_to(request, ResponseCode::Success).with_body(result.encode())
}

/// Answers `GET_CONSUMER_RUNNING_INFO`.
fn running_info(
    handles: &ConsumerHandles,
    namesrv_addr: &str,
    addr: &str,
    request: &RemotingCommand,
) -> RemotingCommand {
    let header = match GetConsumerRunningInfoRequestHeader::decode(request) {
        Ok(header) => header,
        Err(error) => {
            return RemotingCommand::error_response(
                request,
                ResponseCode::SystemError,
                error.to_string(),
            );
        }
    };
    let Some(handle) = handle_of(handles, &header.consumer_group) else {
        // Java's wording, which admin tools show.
        return RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            format!(
                "The Consumer Group <{}> not exist in this consumer",
                header.consumer_group
            ),
        );
    };
    let mut info = handle.running_info();
    info.properties
        .insert(PROP_NAMESERVER_ADDR.into(), namesrv_addr.to_owned());
    info.properties
        .insert(PROP_CLIENT_VERSION.into(), CLIENT_VERSION_DESC.to_owned());
    info.properties
        .entry(PROP_CONSUME_TYPE.into())
        .or_insert_with(|| "CONSUME_PASSIVELY".to_owned());
    debug!(%addr, group = %header.consumer_group, queues = info.mq_table.len(), jstack = ?header.jstack_enable, "consumer running info asked");
    RemotingCommand::response_to(request, ResponseCode::Success).with_body(info.encode())
}

/// Applies `RESET_CONSUMER_CLIENT_OFFSET`.
async fn reset_offset(
    handles: &ConsumerHandles,
    addr: &str,
    request: &RemotingCommand,
) -> RemotingCommand {
    let decoded = ResetOffsetRequestHeader::decode(request)
        .and_then(|header| ResetOffsetBody::decode(&request.body).map(|body| (header, body)));
    let (header, body) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            return RemotingCommand::error_response(
                request,
                ResponseCode::SystemError,
                error.to_string(),
            );
        }
    };
    let Some(handle) = handle_of(handles, &header.group) else {
        return RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            format!(
                "The Consumer Group <{}> not exist in this consumer",
                header.group
            ),
        );
    };
    info!(%addr, group = %header.group, topic = %header.topic, timestamp = header.timestamp, queues = body.offset_table.len(), "resetting offsets");
    let reset = handle
        .reset_offset(header.topic.clone(), body.offset_table)
        .await;
    info!(group = %header.group, topic = %header.topic, reset, "offsets reset");
    RemotingCommand::response_to(request, ResponseCode::Success)
}
