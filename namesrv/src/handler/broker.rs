//! Broker-facing commands: `REGISTER_BROKER`, `UNREGISTER_BROKER`, `BROKER_HEARTBEAT`,
//! `QUERY_DATA_VERSION`.

use std::time::{Duration, Instant};

use ringmq_wire::body::kv::{KvTable, NAMESPACE_ORDER_TOPIC_CONFIG};
use ringmq_wire::body::register::{DataVersion, RegisterBrokerBody};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    BrokerHeartbeatRequestHeader, QueryDataVersionRequestHeader, QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
    register_body_crc32,
};
use ringmq_wire::{RemotingCommand, ResponseCode, WireError};

use super::Shared;
use crate::route::{ConnectionId, Registration};

pub(super) fn register(
    shared: &Shared,
    connection: ConnectionId,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = RegisterBrokerRequestHeader::decode(request)?;
    if let Some(expected) = header.body_crc32.filter(|crc| *crc != 0) {
        let actual = register_body_crc32(&request.body);
        if actual != expected {
            tracing::warn!(broker = %header.broker_addr, expected, actual, "REGISTER_BROKER body CRC mismatch");
            return Ok(RemotingCommand::error_response(
                request,
                ResponseCode::SystemError,
                format!("crc32 not match: header says {expected}, body has {actual}"),
            ));
        }
    }
    let body = if request.body.is_empty() {
        RegisterBrokerBody::default()
    } else {
        RegisterBrokerBody::decode(&request.body, header.compressed)?
    };
    let config = shared.config();
    let registration = Registration {
        cluster: header.cluster_name,
        broker_addr: header.broker_addr,
        broker_name: header.broker_name,
        broker_id: header.broker_id,
        ha_server_addr: header.ha_server_addr,
        timeout: header
            .heartbeat_timeout_millis
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64)),
        enable_acting_master: header.enable_acting_master,
        zone_name: request.ext("zoneName").map(str::to_owned),
        topics: body.topic_config_serialize_wrapper,
        filter_servers: body.filter_server_list,
        connection,
    };
    let result = shared.routes_mut().register_broker(
        registration,
        Instant::now(),
        config.broker_expiry(),
        config.delete_topic_with_broker_registration,
    );
    let result = match result {
        Ok(result) => result,
        Err(refused) => {
            tracing::warn!(%refused, "broker registration refused");
            return Ok(RemotingCommand::error_response(
                request,
                ResponseCode::SystemError,
                format!("register broker failed: {refused}"),
            ));
        }
    };
    let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
    RegisterBrokerResponseHeader {
        ha_server_addr: result.ha_server_addr,
        master_addr: result.master_addr,
    }
    .encode_into(&mut response);
    if let Some(table) = shared.kv.namespace(NAMESPACE_ORDER_TOPIC_CONFIG) {
        response.body = ringmq_wire::json::to_vec(&KvTable { table }).into();
    }
    Ok(response)
}

pub(super) fn unregister(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = UnregisterBrokerRequestHeader::decode(request)?;
    shared.routes_mut().unregister_broker(
        &header.cluster_name,
        &header.broker_addr,
        &header.broker_name,
        header.broker_id,
    );
    Ok(RemotingCommand::response_to(request, ResponseCode::Success))
}

pub(super) fn heartbeat(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = BrokerHeartbeatRequestHeader::decode(request)?;
    let known =
        shared
            .routes_mut()
            .heartbeat(&header.cluster_name, &header.broker_addr, Instant::now());
    if !known {
        tracing::debug!(broker = %header.broker_addr, "heartbeat from an unregistered broker");
    }
    Ok(RemotingCommand::response_to(request, ResponseCode::Success))
}

pub(super) fn query_data_version(
    shared: &Shared,
    request: &RemotingCommand,
) -> Result<RemotingCommand, WireError> {
    let header = QueryDataVersionRequestHeader::decode(request)?;
    let version: DataVersion = if request.body.is_empty() {
        DataVersion::default()
    } else {
        ringmq_wire::json::parse("data version", &request.body)?
    };
    let (changed, stored) = shared.routes_mut().query_data_version(
        &header.cluster_name,
        &header.broker_addr,
        &version,
        Instant::now(),
    );
    let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
    QueryDataVersionResponseHeader { changed }.encode_into(&mut response);
    if let Some(stored) = stored {
        response.body = ringmq_wire::json::to_vec(&stored).into();
    }
    Ok(response)
}
