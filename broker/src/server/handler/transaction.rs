//! `END_TRANSACTION` (37): a producer commits or rolls back a half message, on its own
//! (usually oneway, as stock clients send it) or answering a `CHECK_TRANSACTION_STATE`
//! (`fromTransactionCheck`). The logic lives in [`crate::features::transaction::end`]; this
//! module decodes the request and shapes the response.
//!
//! Responses (for requests that are not oneway): SUCCESS once the committed message and the
//! op entry are durable under the flush mode; SUCCESS with a remark when the transaction was
//! already decided (nothing written again) or the state is "unknown" (the check-back will
//! ask); SYSTEM_ERROR with a remark naming the offset, group or value for a request that does
//! not match a half message, as RocketMQ's `checkPrepareMessage`.

use ringmq_wire::header::transaction::EndTransactionRequestHeader;
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::features::transaction::end::{self, EndError, EndOutcome};
use crate::server::handler::{HandlerResult, decode_header, error, success};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{ShardStore, StoreError};

/// Handles `END_TRANSACTION`.
pub fn end_transaction<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let header: EndTransactionRequestHeader = decode_header(request)?;
    match end::end(state, &header, now_ms) {
        Ok(EndOutcome::Committed { end_offset, .. } | EndOutcome::RolledBack { end_offset }) => {
            if request.is_oneway() {
                return Ok(None);
            }
            Ok(state.reply_when_durable(conn.id, end_offset, success(request), now_ms))
        }
        Ok(EndOutcome::AlreadyDecided {
            half_offset,
            origin,
        }) => {
            let mut response = success(request);
            response.remark = Some(format!(
                "the transaction of half message {half_offset} (first stored at half offset \
                 {origin}) was already decided; nothing done"
            ));
            Ok(Some(response))
        }
        Ok(EndOutcome::Pending) => {
            let mut response = success(request);
            response.remark = Some(
                "transaction state unknown; the broker will check back with the producer".into(),
            );
            Ok(Some(response))
        }
        Err(e) => {
            let code = match &e {
                EndError::Store {
                    source: StoreError::NotWritable { .. },
                    ..
                } => ResponseCode::ServiceNotAvailable,
                EndError::Store {
                    source: StoreError::Busy { .. },
                    ..
                } => ResponseCode::SystemBusy,
                EndError::Store {
                    source: StoreError::MessageIllegal { .. },
                    ..
                } => ResponseCode::MessageIllegal,
                _ => ResponseCode::SystemError,
            };
            tracing::warn!(target: "ringmq::transaction", group = %header.producer_group,
                commit_log_offset = header.commit_log_offset, error = %e, "END_TRANSACTION refused");
            Err(error(request, code, e.to_string()))
        }
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
