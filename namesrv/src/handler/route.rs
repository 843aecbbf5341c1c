//! Route and topic commands: `GET_ROUTEINFO_BY_TOPIC`, `GET_BROKER_CLUSTER_INFO`, the topic
//! lists, `DELETE_TOPIC_IN_NAMESRV`, `REGISTER_TOPIC_IN_NAMESRV`, and the write-permission
//! switches.

use ringmq_wire::body::kv::NAMESPACE_ORDER_TOPIC_CONFIG;
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    DeleteTopicFromNamesrvRequestHeader, GetRouteInfoRequestHeader,
    GetTopicsByClusterRequestHeader, RegisterTopicRequestHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};
use ringmq_wire::json::to_vec;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, WireError};

use super::{Shared, success_with_body};
use crate::metrics::Counters;
use crate::route::UnitFilter;

pub(super) fn route_by_topic(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    Counters::bump(&shared.counters.route_queries);
    let header = GetRouteInfoRequestHeader::decode(request)?;
    // Routes carry the KV store's order config only when enabled; those are not cached.
    let order_message_enable = shared.config_ref().order_message_enable;
    let (route, generation) = {
        let routes = shared.routes();
        let generation = routes.generation();
        if !order_message_enable
            && let Some(body) = shared.route_cache.get(&header.topic, generation)
        {
            Counters::bump(&shared.counters.route_cache_hits);
            return Ok(RemotingCommand::response_to(request, ResponseCode::Success).with_body(body));
        }
        (routes.route(&header.topic), generation)
    };
    let Some(mut route) = route else {
        return Ok(RemotingCommand::error_response(
            request,
            ResponseCode::TopicNotExist,
            format!(
                "No topic route info in name server for the topic: {}\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.",
                header.topic
            ),
        ));
    };
    if order_message_enable {
        route.order_topic_conf = shared.kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, &header.topic);
        return Ok(success_with_body(request, to_vec(&route)));
    }
    let body = bytes::Bytes::from(to_vec(&route));
    shared
        .route_cache
        .put(&header.topic, generation, body.clone());
    Ok(RemotingCommand::response_to(request, ResponseCode::Success).with_body(body))
}

pub(super) fn cluster_info(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let info = shared.routes().cluster_info();
    Ok(success_with_body(request, to_vec(&info)))
}

pub(super) fn all_topics(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    if !shared.config_ref().enable_all_topic_list {
        return Ok(RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            "disable",
        ));
    }
    let list = shared.routes().all_topics();
    Ok(success_with_body(request, to_vec(&list)))
}

pub(super) fn topics_by_cluster(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    if !shared.config_ref().enable_topic_list {
        return Ok(RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            "disable",
        ));
    }
    let header = GetTopicsByClusterRequestHeader::decode(request)?;
    let list = shared.routes().topics_of_cluster(&header.cluster);
    Ok(success_with_body(request, to_vec(&list)))
}

pub(super) fn system_topics(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let list = shared.routes().system_topics();
    Ok(success_with_body(request, to_vec(&list)))
}

pub(super) fn unit_topics(
    shared: &Shared,
    code: RequestCode,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    if !shared.config_ref().enable_topic_list {
        return Ok(RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            "disable",
        ));
    }
    let filter = match code {
        RequestCode::GetUnitTopicList => UnitFilter::Unit,
        RequestCode::GetHasUnitSubTopicList => UnitFilter::HasUnitSub,
        _ => UnitFilter::HasUnitSubNotUnit,
    };
    let list = shared.routes().unit_topics(filter);
    Ok(success_with_body(request, to_vec(&list)))
}

pub(super) fn delete_topic(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = DeleteTopicFromNamesrvRequestHeader::decode(request)?;
    let cluster = header.cluster_name.as_deref().filter(|c| !c.is_empty());
    shared.routes_mut().delete_topic(&header.topic, cluster);
    Ok(RemotingCommand::response_to(request, ResponseCode::Success))
}

pub(super) fn register_topic(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = RegisterTopicRequestHeader::decode(request)?;
    let route: TopicRouteData = if request.body.is_empty() {
        TopicRouteData::default()
    } else {
        ringmq_wire::json::parse("topic route", &request.body)?
    };
    let result = shared
        .routes_mut()
        .register_topic(&header.topic, &route.queue_datas);
    Ok(match result {
        Ok(()) => RemotingCommand::response_to(request, ResponseCode::Success),
        Err(refused) => RemotingCommand::error_response(
            request,
            ResponseCode::SystemError,
            format!("register topic {} failed: {refused}", header.topic),
        ),
    })
}

pub(super) fn write_perm(
    shared: &Shared,
    request: &RemotingCommand,
    add: bool,
) -> Result<RemotingCommand, WireError> {
    let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
    if add {
        let header = AddWritePermOfBrokerRequestHeader::decode(request)?;
        let count = shared
            .routes_mut()
            .set_write_perm(&header.broker_name, true);
        AddWritePermOfBrokerResponseHeader {
            add_topic_count: count,
        }
        .encode_into(&mut response);
    } else {
        let header = WipeWritePermOfBrokerRequestHeader::decode(request)?;
        let count = shared
            .routes_mut()
            .set_write_perm(&header.broker_name, false);
        WipeWritePermOfBrokerResponseHeader {
            wipe_topic_count: count,
        }
        .encode_into(&mut response);
    }
    Ok(response)
}
