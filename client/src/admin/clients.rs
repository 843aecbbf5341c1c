//! Admin operations about connected clients: producer connections
//! (`GET_PRODUCER_CONNECTION_LIST`, `mqadmin producerConnection`), and requests for one
//! consumer client that the broker it is connected to relays: its runtime state
//! (`GET_CONSUMER_RUNNING_INFO`, `mqadmin consumerStatus`) and consuming one stored message
//! (`CONSUME_MESSAGE_DIRECTLY`, `mqadmin queryMsgById -g -d`).

use std::time::Duration;

use ringmq_wire::body::client::ConsumerRunningInfo;
use ringmq_wire::body::consumer::ProducerConnection;
use ringmq_wire::header::admin::GetProducerConnectionListRequestHeader;
use ringmq_wire::header::consumer::GetConsumerRunningInfoRequestHeader;
use ringmq_wire::header::send::RpcFields;
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::{RemotingCommand, RequestCode};

use super::{Admin, wire_error};
use crate::error::{ClientError, Result};

/// How long a relayed request may take: the broker waits up to 10 s for the client
/// (RocketMQ's `Broker2Client.callClient`), plus the two hops.
pub const RELAYED_CALL_TIMEOUT: Duration = Duration::from_secs(15);

impl Admin {
    /// `GET_PRODUCER_CONNECTION_LIST`: the live producers of `group` (`producerConnection -g
    /// -t`), asked of the masters serving `topic` in turn until one knows the group.
    pub async fn producer_connection(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<ProducerConnection> {
        let route = self.topic_route(topic).await?;
        let mut last_error = None;
        for addr in route.broker_datas.iter().filter_map(|b| b.master_addr()) {
            match self.producer_connection_on(addr, group).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument(format!("no master broker serves topic {topic:?}"))
        }))
    }

    /// `GET_PRODUCER_CONNECTION_LIST` on one broker.
    pub async fn producer_connection_on(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ProducerConnection> {
        let header = GetProducerConnectionListRequestHeader {
            producer_group: group.to_owned(),
            rpc: RpcFields::default(),
        };
        let response = self
            .call(
                addr,
                Self::request(RequestCode::GetProducerConnectionList, &header),
            )
            .await?;
        ProducerConnection::decode(&response.body).map_err(wire_error(addr))
    }

    /// `GET_CONSUMER_RUNNING_INFO` through the broker at `addr`, which relays it to consumer
    /// `client_id` of `group` and returns its answer (`consumerStatus -i`). `jstack` asks
    /// for a thread dump (Java clients; ringmq clients send none).
    pub async fn consumer_running_info(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
        jstack: bool,
    ) -> Result<ConsumerRunningInfo> {
        let header = GetConsumerRunningInfoRequestHeader {
            consumer_group: group.to_owned(),
            client_id: client_id.to_owned(),
            jstack_enable: Some(jstack),
            rpc: RpcFields::default(),
        };
        let response = self
            .instance
            .remoting()
            .invoke_ok(
                addr,
                Self::request(RequestCode::GetConsumerRunningInfo, &header),
                RELAYED_CALL_TIMEOUT.max(self.timeout),
            )
            .await?;
        ConsumerRunningInfo::decode(&response.body).map_err(wire_error(addr))
    }

    /// [`Admin::consumer_running_info`] through the first master serving `group` that
    /// reaches the client; returns that broker's address with the answer.
    pub async fn consumer_running_info_any(
        &self,
        group: &str,
        client_id: &str,
        jstack: bool,
    ) -> Result<(String, ConsumerRunningInfo)> {
        let mut last_error = None;
        for addr in self.group_masters(group).await? {
            match self
                .consumer_running_info(&addr, group, client_id, jstack)
                .await
            {
                Ok(info) => return Ok((addr, info)),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument(format!("no broker serves consumer group {group:?}"))
        }))
    }

    /// `CONSUME_MESSAGE_DIRECTLY`: asks consumer `client_id` of `group` to consume the message
    /// `offset_msg_id` now (`queryMsgById -g -d`). The broker that stores the message (named
    /// by the id) reads it and relays it to the client, which must be connected to that
    /// broker; the answer is the client's `ConsumeMessageDirectlyResult` JSON
    /// (`consumeResult`, `spentTimeMills`, `remark`, …).
    pub async fn consume_message_directly(
        &self,
        group: &str,
        client_id: &str,
        offset_msg_id: &str,
        topic: Option<&str>,
    ) -> Result<serde_json::Value> {
        let (store_host, _) = parse_offset_msg_id(offset_msg_id).map_err(|e| {
            ClientError::InvalidArgument(format!(
                "{offset_msg_id:?} is not a broker message id: {e}"
            ))
        })?;
        let addr = store_host.to_string();
        let mut request = RemotingCommand::request(RequestCode::ConsumeMessageDirectly);
        for (key, value) in [
            ("consumerGroup", Some(group)),
            ("clientId", Some(client_id)),
            ("msgId", Some(offset_msg_id)),
            ("topic", topic),
        ] {
            if let Some(value) = value {
                request.ext_fields.insert(key.into(), value.into());
            }
        }
        let response = self
            .instance
            .remoting()
            .invoke_ok(&addr, request, RELAYED_CALL_TIMEOUT.max(self.timeout))
            .await?;
        serde_json::from_slice(&response.body).map_err(|e| ClientError::Wire {
            addr: addr.clone(),
            source: ringmq_wire::WireError::InvalidJson {
                what: "consume message directly result",
                reason: e.to_string(),
            },
        })
    }
}
