//! Subscription group administration: `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP` (200),
//! `DELETE_SUBSCRIPTIONGROUP` (207), `GET_ALL_SUBSCRIPTIONGROUP_CONFIG` (201),
//! `GET_SUBSCRIPTIONGROUP_CONFIG` (352). Changes are applied on this shard and recorded as
//! [`AdminChange`]s for the other shards.

use ringmq_wire::body::subscription::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use ringmq_wire::header::admin::{
    DeleteSubscriptionGroupRequestHeader, GetSubscriptionGroupConfigRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::handler::{HandlerResult, decode_header, error, success, wire_error};
use crate::server::state::{AdminChange, ShardState};
use crate::server::store::ShardStore;

/// `UPDATE_AND_CREATE_SUBSCRIPTIONGROUP`: the body is the group's config.
pub fn update_and_create<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let config =
        SubscriptionGroupConfig::decode(&request.body).map_err(|e| wire_error(request, &e))?;
    state
        .groups
        .update(config.clone(), now_ms)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    state.record_admin_change(AdminChange::GroupUpdated(config));
    Ok(Some(success(request)))
}

/// `DELETE_SUBSCRIPTIONGROUP`, with its offsets when `cleanOffset`.
pub fn delete<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let h: DeleteSubscriptionGroupRequestHeader = decode_header(request)?;
    let clean_offset = h.clean_offset.unwrap_or(false);
    state.groups.delete(&h.group_name, now_ms);
    if clean_offset {
        state.offsets.remove_group(&h.group_name);
    }
    state.record_admin_change(AdminChange::GroupDeleted {
        group: h.group_name,
        clean_offset,
    });
    Ok(Some(success(request)))
}

/// `GET_ALL_SUBSCRIPTIONGROUP_CONFIG`.
pub fn get_all<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let wrapper = SubscriptionGroupWrapper {
        data_version: Some(state.groups.data_version()),
        forbidden_table: Default::default(),
        subscription_group_table: state
            .groups
            .all()
            .map(|g| (g.group_name.clone(), g.clone()))
            .collect(),
    };
    Ok(Some(success(request).with_body(wrapper.encode())))
}

/// `GET_SUBSCRIPTIONGROUP_CONFIG`.
pub fn get_one<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetSubscriptionGroupConfigRequestHeader = decode_header(request)?;
    match state.groups.get(&h.group) {
        Some(config) => Ok(Some(success(request).with_body(config.encode()))),
        None => Err(error(
            request,
            ResponseCode::SubscriptionGroupNotExist,
            format!("The consumer group {} not exist", h.group),
        )),
    }
}

#[cfg(test)]
#[path = "admin_group_tests.rs"]
mod tests;
