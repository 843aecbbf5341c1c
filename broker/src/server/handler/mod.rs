//! Request handlers, one module per request family, and the dispatcher that maps request
//! codes to them.
//!
//! A handler takes the shard state, the connection and the decoded request, and returns the
//! response to send now (`Some`) or `None` when the response is deferred (a send waiting for
//! durability, a pull parked in long polling: both arrive later through the state's outbox).
//! Header decoding errors become a response with [`WireError::response_code`] and the error
//! text as remark, which names the missing or malformed field.

use ringmq_wire::header::CommandHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, WireError};

use crate::server::state::{Conn, ShardState};
use crate::server::store::ShardStore;

pub mod admin_group;
pub mod admin_stats;
pub mod admin_topic;
pub mod broker_config;
pub mod check_client;
pub mod consumer;
pub mod offset;
pub mod pull;
pub mod query;
pub mod relay;
pub mod reset_offset;
pub mod schedule;
pub mod search_offset;
pub mod send;
pub mod send_back;
pub mod transaction;

/// What a handler produces: a response now or later, or an error response.
pub type HandlerResult = Result<Option<RemotingCommand>, RemotingCommand>;

/// Routes one request to its handler. Unknown codes are answered
/// `REQUEST_CODE_NOT_SUPPORTED` with a remark naming the code.
pub fn dispatch<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> Option<RemotingCommand> {
    use RequestCode as C;
    let result = match request.request_code() {
        Some(C::SendMessage | C::SendMessageV2 | C::SendBatchMessage) => {
            send::handle(state, conn, request, now_ms)
        }
        Some(C::PullMessage | C::LitePullMessage) => pull::handle(state, conn, request, now_ms),
        Some(C::ConsumerSendMsgBack) => send_back::handle(state, conn, request, now_ms),
        Some(C::GetAllDelayOffset) => schedule::all_delay_offsets(state, request),
        Some(C::EndTransaction) => transaction::end_transaction(state, conn, request, now_ms),
        Some(C::HeartBeat) => consumer::heartbeat(state, conn, request, now_ms),
        Some(C::CheckClientConfig) => check_client::check_client_config(state, request),
        Some(C::UnregisterClient) => consumer::unregister(state, request, now_ms),
        Some(C::GetConsumerListByGroup) => consumer::consumer_list(state, request),
        Some(C::LockBatchMq) => consumer::lock_batch(state, request, now_ms),
        Some(C::UnlockBatchMq) => consumer::unlock_batch(state, request),
        Some(C::QueryConsumerOffset) => offset::query_consumer_offset(state, request),
        Some(C::UpdateConsumerOffset) => offset::update_consumer_offset(state, request),
        Some(C::SearchOffsetByTimestamp) => {
            search_offset::search_offset_by_timestamp(state, conn, request)
        }
        Some(C::GetMaxOffset) => offset::get_max_offset(state, request),
        Some(C::GetMinOffset) => offset::get_min_offset(state, request),
        Some(C::GetEarliestMsgStoretime) => {
            search_offset::get_earliest_msg_storetime(state, conn, request)
        }
        Some(C::QueryMessage) => query::query_message(state, conn, request),
        Some(C::ViewMessageById) => query::view_message_by_id(state, conn, request),
        Some(C::GetConsumerRunningInfo) => {
            relay::get_consumer_running_info(state, conn, request, now_ms)
        }
        Some(C::ConsumeMessageDirectly) => {
            relay::consume_message_directly(state, conn, request, now_ms)
        }
        Some(C::InvokeBrokerToResetOffset) => {
            reset_offset::invoke_broker_to_reset_offset(state, conn, request)
        }
        Some(C::UpdateBrokerConfig) => broker_config::update_broker_config(state, request, now_ms),
        Some(C::UpdateAndCreateTopic) => admin_topic::update_and_create(state, request, now_ms),
        Some(C::DeleteTopicInBroker) => admin_topic::delete(state, request, now_ms),
        Some(C::GetAllTopicConfig) => admin_topic::get_all(state, request),
        Some(C::GetTopicConfig) => admin_topic::get_one(state, request),
        Some(C::UpdateAndCreateSubscriptiongroup) => {
            admin_group::update_and_create(state, request, now_ms)
        }
        Some(C::DeleteSubscriptiongroup) => admin_group::delete(state, request, now_ms),
        Some(C::GetAllSubscriptiongroupConfig) => admin_group::get_all(state, request),
        Some(C::GetSubscriptiongroupConfig) => admin_group::get_one(state, request),
        Some(C::GetBrokerRuntimeInfo) => admin_stats::runtime_info(state, request, now_ms),
        Some(C::GetTopicStatsInfo) => admin_stats::topic_stats(state, request),
        Some(C::GetConsumeStats) => admin_stats::consume_stats(state, request),
        Some(C::GetConsumerConnectionList) => admin_stats::consumer_connections(state, request),
        Some(C::GetProducerConnectionList) => admin_stats::producer_connections(state, request),
        Some(C::GetBrokerConfig) => admin_stats::broker_config(state, request),
        Some(C::GetAllConsumerOffset) => admin_stats::all_consumer_offsets(state, request),
        Some(C::QueryTopicConsumeByWho) => admin_stats::topic_consumed_by(state, request),
        _ => Err(not_supported(request)),
    };
    match result {
        Ok(response) => response,
        Err(error) => Some(error),
    }
}

/// The `REQUEST_CODE_NOT_SUPPORTED` answer, naming the code.
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    let name = request
        .request_code()
        .map_or_else(|| "unknown".to_owned(), |c| c.name().to_owned());
    tracing::debug!(target: "ringmq::server::dispatch", code = request.code, "request code not supported");
    RemotingCommand::error_response(
        request,
        ResponseCode::RequestCodeNotSupported,
        format!(
            "request code {} ({name}) is not supported by ringmq",
            request.code
        ),
    )
}

/// Decodes a typed header, or builds the error response naming the field.
pub fn decode_header<H: CommandHeader>(request: &RemotingCommand) -> Result<H, RemotingCommand> {
    H::decode(request).map_err(|e| wire_error(request, &e))
}

/// The error response for a wire error.
pub fn wire_error(request: &RemotingCommand, error: &WireError) -> RemotingCommand {
    RemotingCommand::error_response(request, error.response_code(), error.to_string())
}

/// An error response.
pub fn error(
    request: &RemotingCommand,
    code: ResponseCode,
    remark: impl Into<String>,
) -> RemotingCommand {
    RemotingCommand::error_response(request, code, remark)
}

/// A SUCCESS response carrying `header`.
pub fn success_with<H: CommandHeader>(request: &RemotingCommand, header: &H) -> RemotingCommand {
    let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
    header.encode_into(&mut response);
    response
}

/// A plain SUCCESS response.
pub fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::Success)
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use ringmq_wire::{RemotingCommand, ResponseCode};

    #[test]
    fn unknown_code_is_answered_not_supported_naming_the_code() {
        let mut shard = TestShard::new();
        let request = RemotingCommand::request_raw(99_999);
        let response = shard.call(request);
        assert_eq!(
            response.code,
            ResponseCode::RequestCodeNotSupported.as_i32()
        );
        assert!(response.remark.unwrap_or_default().contains("99999"));
        let known = RemotingCommand::request(ringmq_wire::RequestCode::PopMessage);
        let response = shard.call(known);
        assert!(response.remark.unwrap_or_default().contains("POP_MESSAGE"));
    }

    #[test]
    fn oneway_requests_get_no_reply() {
        let mut shard = TestShard::new();
        let mut request = RemotingCommand::request_raw(99_999);
        request.set_oneway();
        assert!(shard.call_raw(request).is_none());
    }
}
