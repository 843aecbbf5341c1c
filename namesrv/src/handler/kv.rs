//! KV commands: `PUT_KV_CONFIG`, `GET_KV_CONFIG`, `DELETE_KV_CONFIG`, `GET_KVLIST_BY_NAMESPACE`.

use std::sync::Arc;

use ringmq_wire::body::kv::KvTable;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    DeleteKvConfigRequestHeader, GetKvConfigRequestHeader, GetKvConfigResponseHeader,
    GetKvListByNamespaceRequestHeader, PutKvConfigRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode, WireError};

use super::{Shared, malformed, success_with_body};
use crate::kv::KvError;

pub(super) fn get(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = GetKvConfigRequestHeader::decode(request)?;
    Ok(match shared.kv.get(&header.namespace, &header.key) {
        Some(value) => {
            let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
            GetKvConfigResponseHeader { value: Some(value) }.encode_into(&mut response);
            response
        }
        None => RemotingCommand::error_response(
            request,
            ResponseCode::QueryNotFound,
            format!(
                "No config item, Namespace: {} Key: {}",
                header.namespace, header.key
            ),
        ),
    })
}

pub(super) fn list(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = GetKvListByNamespaceRequestHeader::decode(request)?;
    Ok(match shared.kv.namespace(&header.namespace) {
        Some(table) => success_with_body(request, ringmq_wire::json::to_vec(&KvTable { table })),
        None => RemotingCommand::error_response(
            request,
            ResponseCode::QueryNotFound,
            format!("No config item, Namespace: {}", header.namespace),
        ),
    })
}

pub(super) async fn put(shared: Arc<Shared>, request: RemotingCommand) -> RemotingCommand {
    let header = match PutKvConfigRequestHeader::decode(&request) {
        Ok(header) => header,
        Err(error) => return malformed(&request, &error),
    };
    let result = shared
        .kv
        .put(&header.namespace, &header.key, &header.value)
        .await;
    match result {
        Ok(()) => {
            tracing::info!(namespace = %header.namespace, key = %header.key, "KV config put");
            RemotingCommand::response_to(&request, ResponseCode::Success)
        }
        Err(error) => refused(&request, &error),
    }
}

pub(super) async fn delete(shared: Arc<Shared>, request: RemotingCommand) -> RemotingCommand {
    let header = match DeleteKvConfigRequestHeader::decode(&request) {
        Ok(header) => header,
        Err(error) => return malformed(&request, &error),
    };
    match shared.kv.delete(&header.namespace, &header.key).await {
        Ok(existed) => {
            tracing::info!(namespace = %header.namespace, key = %header.key, existed, "KV config deleted");
            RemotingCommand::response_to(&request, ResponseCode::Success)
        }
        Err(error) => refused(&request, &error),
    }
}

fn refused(request: &RemotingCommand, error: &KvError) -> RemotingCommand {
    if let KvError::Persist(_) = error {
        tracing::error!(%error, "KV change not persisted");
    }
    RemotingCommand::error_response(request, ResponseCode::SystemError, error.to_string())
}
