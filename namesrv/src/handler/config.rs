//! `GET_NAMESRV_CONFIG` and `UPDATE_NAMESRV_CONFIG`: the configuration as Java properties
//! text (`key=value` lines).

use ringmq_wire::{RemotingCommand, ResponseCode, WireError};

use super::{Shared, success_with_body};
use crate::config::ConfigUpdateError;

pub(super) fn get(shared: &Shared, request: &RemotingCommand) -> RemotingCommand {
    success_with_body(request, shared.config().to_properties().into_bytes())
}

pub(super) fn update(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let text = std::str::from_utf8(&request.body).map_err(|_| WireError::InvalidUtf8 {
        what: "namesrv config properties",
    })?;
    let result = shared
        .config
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .apply_properties(text);
    Ok(match result {
        Ok(keys) => {
            tracing::info!(?keys, "NameServer config updated");
            RemotingCommand::response_to(request, ResponseCode::Success)
        }
        Err(error) => {
            let code = match error {
                ConfigUpdateError::StartupOnly(_) => ResponseCode::NoPermission,
                ConfigUpdateError::Unknown(_) | ConfigUpdateError::Invalid { .. } => {
                    ResponseCode::SystemError
                }
            };
            RemotingCommand::error_response(request, code, error.to_string())
        }
    })
}
