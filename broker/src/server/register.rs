//! NameServer registration of one shard: building the `REGISTER_BROKER` (103) request from
//! the shard's topic table, reading the answer, and the `UNREGISTER_BROKER` (104) request
//! sent on clean shutdown.
//!
//! Pure functions over the shard state; the process-wide registration task calls
//! [`register_request`] for every shard every `register_period_ms` (and early when
//! [`ShardState::take_register_request`] says the topic table changed), sends it to every
//! NameServer, and hands each answer to [`parse_register_response`].

use std::net::SocketAddr;

use ringmq_wire::body::kv::KvTable;
use ringmq_wire::body::register::RegisterBrokerBody;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::server::handler::admin_topic::topic_wrapper;
use crate::server::state::ShardState;
use crate::server::store::ShardStore;

/// How long a NameServer keeps a broker without a registration (RocketMQ's 120 s).
pub const BROKER_HEARTBEAT_TIMEOUT_MS: i64 = 120_000;

/// Topic tables larger than this many topics are sent compressed (RocketMQ compresses when
/// `compressedRegister` is on; small tables are cheaper as plain JSON).
pub const COMPRESS_TOPICS_MIN: usize = 1_000;

/// Why a registration answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The NameServer answered with an error code.
    #[error("NameServer refused the registration: code {code}, remark {remark:?}")]
    Refused {
        /// The response code.
        code: i32,
        /// Its remark.
        remark: Option<String>,
    },
    /// The answer's header or body could not be read.
    #[error("malformed registration answer: {0}")]
    Malformed(#[from] ringmq_wire::WireError),
}

/// What a NameServer answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterResult {
    /// For a slave: its master's address.
    pub master_addr: Option<String>,
    /// For a slave: its master's HA address.
    pub ha_server_addr: Option<String>,
    /// Ordered-topic configuration (`ORDER_TOPIC_CONFIG` KV namespace), topic → conf.
    pub order_topic_config: KvTable,
}

/// The HA (replication) address of a shard: its client port + 1.
pub fn ha_addr(store_host: SocketAddr) -> SocketAddr {
    SocketAddr::new(store_host.ip(), store_host.port().wrapping_add(1))
}

/// The `REGISTER_BROKER` request for this shard: its identity, all its topics and the
/// topic table's data version.
pub fn register_request<S: ShardStore>(state: &ShardState<S>) -> RemotingCommand {
    let mut wrapper = topic_wrapper(state);
    // RocketMQ's registerBrokerAll: a broker without read or write permission registers
    // every topic with its permission masked by the broker's.
    let broker_perm = state.config.broker.permission as i32;
    if broker_perm & 6 != 6 {
        for topic in wrapper.topic_config_table.values_mut() {
            topic.perm &= broker_perm;
        }
    }
    let body = RegisterBrokerBody {
        filter_server_list: Vec::new(),
        topic_config_serialize_wrapper: wrapper,
    };
    let compressed =
        body.topic_config_serialize_wrapper.topic_config_table.len() >= COMPRESS_TOPICS_MIN;
    let bytes = body.encode(compressed);
    let identity = &state.identity;
    let header = RegisterBrokerRequestHeader {
        broker_name: identity.broker_name.clone(),
        broker_addr: identity.store_host.to_string(),
        cluster_name: identity.cluster_name.clone(),
        ha_server_addr: ha_addr(identity.store_host).to_string(),
        broker_id: identity.broker_id as i64,
        heartbeat_timeout_millis: Some(BROKER_HEARTBEAT_TIMEOUT_MS),
        enable_acting_master: Some(false),
        compressed,
        body_crc32: Some(body_crc32(&bytes)),
    };
    let mut request = RemotingCommand::request(RequestCode::RegisterBroker);
    header.encode_into(&mut request);
    request.with_body(bytes)
}

/// RocketMQ's `UtilAll.crc32`: CRC32 with the top bit cleared, as the NameServer checks it.
pub fn body_crc32(body: &[u8]) -> i32 {
    (ringmq_wire::record::body_crc(body) & 0x7FFF_FFFF) as i32
}

/// Reads a NameServer's answer to [`register_request`].
pub fn parse_register_response(
    response: &RemotingCommand,
) -> Result<RegisterResult, RegisterError> {
    if response.code != ResponseCode::Success.as_i32() {
        return Err(RegisterError::Refused {
            code: response.code,
            remark: response.remark.clone(),
        });
    }
    let header = RegisterBrokerResponseHeader::decode(response)?;
    let order_topic_config = if response.body.is_empty() {
        KvTable::default()
    } else {
        ringmq_wire::json::parse("register broker answer", &response.body)?
    };
    Ok(RegisterResult {
        master_addr: header.master_addr.filter(|a| !a.is_empty()),
        ha_server_addr: header.ha_server_addr.filter(|a| !a.is_empty()),
        order_topic_config,
    })
}

/// The `UNREGISTER_BROKER` request for this shard (sent on clean shutdown).
pub fn unregister_request<S: ShardStore>(state: &ShardState<S>) -> RemotingCommand {
    let identity = &state.identity;
    let header = UnregisterBrokerRequestHeader {
        broker_name: identity.broker_name.clone(),
        broker_addr: identity.store_host.to_string(),
        cluster_name: identity.cluster_name.clone(),
        broker_id: identity.broker_id as i64,
    };
    let mut request = RemotingCommand::request(RequestCode::UnregisterBroker);
    header.encode_into(&mut request);
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::handler::testing::TestShard;

    #[test]
    fn register_request_carries_identity_topics_and_version() {
        let mut shard = TestShard::new();
        shard
            .state
            .topics
            .create_or_update(ringmq_wire::body::topic::TopicConfig::new("Orders", 4), 5)
            .expect("topic");
        let request = register_request(&shard.state);
        assert_eq!(request.code, RequestCode::RegisterBroker.as_i32());
        let header = RegisterBrokerRequestHeader::decode(&request).expect("header");
        assert_eq!(header.broker_name, "broker-a-s0");
        assert_eq!(header.cluster_name, "DefaultCluster");
        assert_eq!(header.broker_addr, "127.0.0.1:10911");
        assert_eq!(header.ha_server_addr, "127.0.0.1:10912");
        assert_eq!(header.broker_id, 0);
        assert_eq!(header.body_crc32, Some(body_crc32(&request.body)));
        let body = RegisterBrokerBody::decode(&request.body, header.compressed).expect("body");
        let wrapper = body.topic_config_serialize_wrapper;
        assert!(wrapper.topic_config_table.contains_key("Orders"));
        assert!(wrapper.topic_config_table.contains_key("TBW102"));
        assert_eq!(wrapper.data_version, shard.state.topics.data_version());
    }

    #[test]
    fn large_topic_tables_are_sent_compressed() {
        let mut shard = TestShard::new();
        for i in 0..COMPRESS_TOPICS_MIN {
            shard
                .state
                .topics
                .create_or_update(
                    ringmq_wire::body::topic::TopicConfig::new(format!("T{i}"), 1),
                    5,
                )
                .expect("topic");
        }
        let request = register_request(&shard.state);
        let header = RegisterBrokerRequestHeader::decode(&request).expect("header");
        assert!(header.compressed);
        let body = RegisterBrokerBody::decode(&request.body, true).expect("inflates");
        assert!(body.topic_config_serialize_wrapper.topic_config_table.len() > COMPRESS_TOPICS_MIN);
    }

    #[test]
    fn register_answer_is_parsed_or_refusal_reported() {
        let request = RemotingCommand::request(RequestCode::RegisterBroker);
        let mut ok = RemotingCommand::response_to(&request, ResponseCode::Success);
        ok.ext_fields.insert("masterAddr".into(), "".into());
        ok.body = bytes::Bytes::from_static(br#"{"table":{"Orders":"broker-a-s0:4"}}"#);
        let result = parse_register_response(&ok).expect("parsed");
        assert_eq!(result.master_addr, None);
        assert_eq!(result.order_topic_config.table["Orders"], "broker-a-s0:4");
        let refused =
            RemotingCommand::error_response(&request, ResponseCode::SystemError, "crc32 not match");
        assert!(matches!(
            parse_register_response(&refused),
            Err(RegisterError::Refused { code: 1, .. })
        ));
        let mut garbage = RemotingCommand::response_to(&request, ResponseCode::Success);
        garbage.body = bytes::Bytes::from_static(b"{oops");
        assert!(matches!(
            parse_register_response(&garbage),
            Err(RegisterError::Malformed(_))
        ));
    }

    #[test]
    fn unregister_request_names_the_shard() {
        let shard = TestShard::new();
        let request = unregister_request(&shard.state);
        let header = UnregisterBrokerRequestHeader::decode(&request).expect("header");
        assert_eq!(header.broker_name, "broker-a-s0");
        assert_eq!(header.broker_addr, "127.0.0.1:10911");
    }
}
