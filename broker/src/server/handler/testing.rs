//! Test helpers: a shard state over the in-memory store, and request builders.

use std::sync::Arc;

use ringmq_wire::RemotingCommand;
use ringmq_wire::header::CommandHeader;

use crate::config::BrokerConfig;
use crate::server::ConnId;
use crate::server::mem_store::{MemStore, test_addr};
use crate::server::state::{Conn, Outgoing, ShardIdentity, ShardState};

/// A shard over a [`MemStore`], with a settable clock.
pub(crate) struct TestShard {
    pub state: ShardState<MemStore>,
    pub now_ms: u64,
}

pub(crate) const CONN: Conn = Conn {
    id: ConnId(1),
    remote: std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(127, 0, 0, 1),
        50_000,
    )),
};

impl TestShard {
    /// A standalone-config shard (topics auto-created).
    pub fn new() -> Self {
        Self::with_config(BrokerConfig::standalone())
    }

    /// A shard with `config`.
    pub fn with_config(config: BrokerConfig) -> Self {
        let now_ms = 1_700_000_000_000;
        let identity = ShardIdentity::of(&config, 0, test_addr(10911));
        let mut store = MemStore::new();
        store.set_now_ms(now_ms as i64);
        TestShard {
            state: ShardState::new(identity, Arc::new(config), store, now_ms),
            now_ms,
        }
    }

    /// Sends a request on [`CONN`]; panics if there is no immediate response.
    pub fn call(&mut self, request: RemotingCommand) -> RemotingCommand {
        self.call_raw(request).expect("an immediate response")
    }

    /// Sends a request on [`CONN`].
    pub fn call_raw(&mut self, request: RemotingCommand) -> Option<RemotingCommand> {
        self.call_on(CONN, request)
    }

    /// Sends a request on `conn`.
    pub fn call_on(&mut self, conn: Conn, request: RemotingCommand) -> Option<RemotingCommand> {
        self.state.handle(conn, request, self.now_ms)
    }

    /// Advances the clock and ticks.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.state.store.set_now_ms(self.now_ms as i64);
        self.state.tick(self.now_ms);
    }

    /// Drains the outbox.
    pub fn outbox(&mut self) -> Vec<Outgoing> {
        self.state.take_outbox()
    }
}

/// A request with `header` encoded.
pub(crate) fn request_with<H: CommandHeader>(
    code: ringmq_wire::RequestCode,
    header: &H,
) -> RemotingCommand {
    let mut request = RemotingCommand::request(code);
    header.encode_into(&mut request);
    request
}

/// Removes one field from a request, to check the error names it.
pub(crate) fn without(mut request: RemotingCommand, field: &str) -> RemotingCommand {
    request.ext_fields.remove(field);
    request
}

/// Asserts the response is an error naming `field`.
pub(crate) fn assert_names_field(response: &RemotingCommand, field: &str) {
    assert_ne!(response.code, 0, "expected an error for missing {field}");
    let remark = response.remark.clone().unwrap_or_default();
    assert!(
        remark.contains(field),
        "remark {remark:?} does not name {field}"
    );
}

/// A `SEND_MESSAGE_V2` request for `topic`/`queue_id` with `body` and properties.
pub(crate) fn send_request(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    properties: &[(&str, &str)],
) -> RemotingCommand {
    use ringmq_wire::header::send::SendMessageRequestHeaderV2;
    let mut props = ringmq_wire::record::Properties::new();
    for (k, v) in properties {
        props.insert(*k, *v);
    }
    let header = SendMessageRequestHeaderV2 {
        a: "PG".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 4,
        e: queue_id,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: Some(props.encode().expect("valid properties")),
        j: None,
        k: None,
        l: None,
        m: None,
        n: None,
        rpc: Default::default(),
    };
    request_with(ringmq_wire::RequestCode::SendMessageV2, &header).with_body(body.to_vec())
}

/// A `PULL_MESSAGE` request with the subscription flag set.
pub(crate) fn pull_request(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    expression: &str,
    suspend: bool,
) -> RemotingCommand {
    use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag};
    let mut sys_flag = pull_sys_flag::SUBSCRIPTION;
    if suspend {
        sys_flag |= pull_sys_flag::SUSPEND;
    }
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag,
        commit_offset: 0,
        suspend_timeout_millis: 15_000,
        subscription: Some(expression.into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        request_source: None,
        proxy_forward_client_id: None,
        rpc: Default::default(),
    };
    request_with(ringmq_wire::RequestCode::PullMessage, &header)
}

/// A `HEART_BEAT` request of consumer `client_id` in `group` subscribing `topic` with `expression`.
pub(crate) fn heartbeat_request(
    client_id: &str,
    group: &str,
    topic: &str,
    expression: &str,
) -> RemotingCommand {
    use ringmq_wire::body::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
    let data = HeartbeatData {
        client_id: client_id.into(),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            subscription_data_set: vec![SubscriptionData::tags(topic, expression, 1)],
            ..ConsumerData::default()
        }],
        ..HeartbeatData::default()
    };
    RemotingCommand::request(ringmq_wire::RequestCode::HeartBeat).with_body(data.encode())
}

/// A connection other than [`CONN`].
pub(crate) fn other_conn(id: u64) -> Conn {
    Conn {
        id: ConnId(id),
        remote: std::net::SocketAddr::from(([127, 0, 0, 1], 50_000 + id as u16)),
    }
}

/// Decodes the records of a pull/query body.
pub(crate) fn records(body: &bytes::Bytes) -> Vec<ringmq_wire::record::StoredMessage> {
    ringmq_wire::record::decode_records(body, true, 1_000).expect("valid records")
}
