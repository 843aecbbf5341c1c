//! `CHECK_CLIENT_CONFIG` (46), as RocketMQ's `ClientManageProcessor.checkClientConfig`
//! answers it: a consumer with a non-tag subscription asks each broker, before its first
//! heartbeat, whether the broker can serve it. Tag subscriptions pass; SQL92 needs property
//! filtering enabled (else `SYSTEM_ERROR`) and an expression that compiles (else
//! `SUBSCRIPTION_PARSE_FAILED`, the remark pointing at the error's line and column).
//!
//! Body (JSON, `CheckClientRequestBody`):
//! `{"clientId":"…","group":"…","namespace":null,"subscriptionData":{…SubscriptionData…}}`.

use ringmq_wire::body::heartbeat::SubscriptionData;
use ringmq_wire::{RemotingCommand, ResponseCode};
use serde::Deserialize;

use crate::features::filter;
use crate::server::handler::{HandlerResult, error, success};
use crate::server::state::ShardState;
use crate::server::store::ShardStore;

/// Largest body accepted: a client id, a group and one subscription.
pub const CHECK_CLIENT_BODY_BYTES_MAX: usize = 64 * 1024;

/// `CheckClientRequestBody`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientRequestBody {
    /// `clientId`.
    pub client_id: Option<String>,
    /// `group`.
    pub group: Option<String>,
    /// `subscriptionData`.
    pub subscription_data: Option<SubscriptionData>,
    /// `namespace` (5.x).
    pub namespace: Option<String>,
}

/// Validates the client's subscription.
pub fn check_client_config<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    if request.body.is_empty() {
        return Ok(Some(success(request)));
    }
    if request.body.len() > CHECK_CLIENT_BODY_BYTES_MAX {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "check client body of {} bytes; the limit is {CHECK_CLIENT_BODY_BYTES_MAX}",
                request.body.len()
            ),
        ));
    }
    let body: CheckClientRequestBody = serde_json::from_slice(&request.body).map_err(|e| {
        error(
            request,
            ResponseCode::SystemError,
            format!("invalid CHECK_CLIENT_CONFIG body: {e}"),
        )
    })?;
    let Some(subscription) = &body.subscription_data else {
        return Ok(Some(success(request)));
    };
    let group = body.group.as_deref().unwrap_or_default();
    filter::check_subscription(
        &mut state.filters,
        state.config.filter.enable_property_filter,
        group,
        subscription,
    )
    .map_err(|e| {
        tracing::info!(target: "ringmq::server::check_client", group,
            client = body.client_id.as_deref().unwrap_or_default(),
            expression = %subscription.sub_string, error = %e, "client subscription rejected");
        error(request, e.response_code(), e.to_string())
    })?;
    Ok(Some(success(request)))
}

#[cfg(test)]
mod tests {
    use ringmq_wire::{RequestCode, ResponseCode};

    use crate::config::BrokerConfig;
    use crate::server::handler::testing::TestShard;

    use super::*;

    fn check(shard: &mut TestShard, body: &str) -> RemotingCommand {
        let mut request = RemotingCommand::request(RequestCode::CheckClientConfig);
        request.body = bytes::Bytes::copy_from_slice(body.as_bytes());
        shard.call(request)
    }

    fn body(expression_type: &str, expression: &str) -> String {
        format!(
            r#"{{"clientId":"127.0.0.1@1","group":"G","namespace":null,"subscriptionData":{{"classFilterMode":false,"codeSet":[],"expressionType":"{expression_type}","subString":"{expression}","subVersion":1700000000000,"tagsSet":[],"topic":"T"}}}}"#
        )
    }

    #[test]
    fn valid_sql_and_tags_succeed() {
        let mut shard = TestShard::new();
        let r = check(&mut shard, &body("SQL92", "a > 5 AND TAGS IN ('x')"));
        assert_eq!(r.code, 0, "{:?}", r.remark);
        assert_eq!(check(&mut shard, &body("TAG", "*")).code, 0);
        assert_eq!(check(&mut shard, "").code, 0);
    }

    #[test]
    fn syntax_error_is_parse_failed_with_position() {
        let mut shard = TestShard::new();
        let r = check(&mut shard, &body("SQL92", "a > 5 AND"));
        assert_eq!(r.code, ResponseCode::SubscriptionParseFailed.as_i32());
        let remark = r.remark.unwrap_or_default();
        assert!(remark.contains("line 1, column 10"), "{remark}");
    }

    #[test]
    fn disabled_property_filter_is_system_error_saying_how_to_enable() {
        let mut config = BrokerConfig::standalone();
        config.filter.enable_property_filter = false;
        let mut shard = TestShard::with_config(config);
        let r = check(&mut shard, &body("SQL92", "a > 5"));
        assert_eq!(r.code, ResponseCode::SystemError.as_i32());
        assert!(
            r.remark
                .unwrap_or_default()
                .contains("enable_property_filter")
        );
        assert_eq!(check(&mut shard, &body("TAG", "A")).code, 0);
    }

    #[test]
    fn garbage_body_is_an_error() {
        let mut shard = TestShard::new();
        assert_eq!(
            check(&mut shard, "{not json").code,
            ResponseCode::SystemError.as_i32()
        );
    }
}
