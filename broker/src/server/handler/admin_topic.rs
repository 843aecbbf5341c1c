//! Topic administration: `UPDATE_AND_CREATE_TOPIC` (17), `DELETE_TOPIC_IN_BROKER` (215),
//! `GET_ALL_TOPIC_CONFIG` (21), `GET_TOPIC_CONFIG` (351). Changes are applied on this shard
//! and recorded as [`AdminChange`]s so that every shard of the broker gets them.

use ringmq_wire::body::register::TopicConfigSerializeWrapper;
use ringmq_wire::body::topic::TopicFilterType;
use ringmq_wire::header::admin::{
    CreateTopicRequestHeader, DeleteTopicRequestHeader, GetTopicConfigRequestHeader,
};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::server::handler::{HandlerResult, decode_header, error, success};
use crate::server::state::{AdminChange, ShardState};
use crate::server::store::ShardStore;
use crate::server::topic::{TopicConfig, TopicError, system};

/// `UPDATE_AND_CREATE_TOPIC`.
pub fn update_and_create<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let h: CreateTopicRequestHeader = decode_header(request)?;
    if h.topic == state.identity.cluster_name {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("The topic[{}] is conflict with system topic.", h.topic),
        ));
    }
    if system::is_not_allowed_send_topic(&h.topic) || h.topic == system::AUTO_CREATE_TOPIC {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!("The topic[{}] is conflict with system topic.", h.topic),
        ));
    }
    let filter = TopicFilterType::parse(&h.topic_filter_type).ok_or_else(|| {
        error(
            request,
            ResponseCode::SystemError,
            format!(
                "invalid topicFilterType {:?}: use SINGLE_TAG or MULTI_TAG",
                h.topic_filter_type
            ),
        )
    })?;
    let config = TopicConfig {
        attributes: Default::default(),
        order: h.order,
        perm: h.perm,
        read_queue_nums: h.read_queue_nums,
        topic_filter_type: filter,
        topic_name: h.topic.clone(),
        topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
        write_queue_nums: h.write_queue_nums,
    };
    state
        .topics
        .create_or_update(config.clone(), now_ms)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    state.record_admin_change(AdminChange::TopicUpdated(config));
    Ok(Some(success(request)))
}

/// `DELETE_TOPIC_IN_BROKER`: removes the topic, its queues and its consumer offsets.
pub fn delete<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let h: DeleteTopicRequestHeader = decode_header(request)?;
    match state.topics.delete(&h.topic, now_ms) {
        Ok(_) => {}
        Err(e @ TopicError::SystemTopic { .. }) => {
            return Err(error(request, ResponseCode::SystemError, e.to_string()));
        }
        Err(e) => return Err(error(request, ResponseCode::SystemError, e.to_string())),
    }
    state.offsets.remove_topic(&h.topic);
    state.store.delete_topic(&h.topic);
    state.record_admin_change(AdminChange::TopicDeleted(h.topic));
    Ok(Some(success(request)))
}

/// The topic table as RocketMQ serializes it (`TopicConfigSerializeWrapper`).
pub fn topic_wrapper<S: ShardStore>(state: &ShardState<S>) -> TopicConfigSerializeWrapper {
    TopicConfigSerializeWrapper {
        data_version: state.topics.data_version(),
        mapping_data_version: None,
        topic_config_table: state
            .topics
            .all()
            .map(|t| (t.topic_name.clone(), t.clone()))
            .collect(),
        topic_queue_mapping_detail_map: None,
        topic_queue_mapping_info_map: None,
    }
}

/// `GET_ALL_TOPIC_CONFIG`.
pub fn get_all<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let body = ringmq_wire::json::to_vec(&topic_wrapper(state));
    Ok(Some(success(request).with_body(body)))
}

/// `GET_TOPIC_CONFIG`: one topic's config as JSON.
pub fn get_one<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let h: GetTopicConfigRequestHeader = decode_header(request)?;
    let Some(config) = state.topics.get(&h.topic) else {
        return Err(error(
            request,
            ResponseCode::TopicNotExist,
            format!("No topic in this broker. topic: {}", h.topic),
        ));
    };
    let body = ringmq_wire::json::to_vec(config);
    Ok(Some(success(request).with_body(body)))
}

#[cfg(test)]
#[path = "admin_topic_tests.rs"]
mod tests;
