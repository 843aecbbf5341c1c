use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageResponseHeader;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

const GROUP: &str = "G";
const CLIENT: &str = "10.0.0.9@4242";

/// A shard with consumer [`CLIENT`] of [`GROUP`] connected on connection 7.
fn shard_with_consumer() -> TestShard {
    let mut shard = TestShard::new();
    let consumer = other_conn(7);
    let response = shard
        .call_on(consumer, heartbeat_request(CLIENT, GROUP, "T", "*"))
        .expect("heartbeat answered");
    assert_eq!(response.code, 0);
    shard.outbox();
    shard
}

fn running_info_request(client: &str) -> RemotingCommand {
    request_with(
        RequestCode::GetConsumerRunningInfo,
        &GetConsumerRunningInfoRequestHeader {
            consumer_group: GROUP.into(),
            client_id: client.into(),
            jstack_enable: Some(true),
            rpc: Default::default(),
        },
    )
}

/// The one request the broker sent to the consumer's connection.
fn relayed_to_consumer(shard: &mut TestShard) -> RemotingCommand {
    let out = shard.outbox();
    let to_consumer: Vec<_> = out.into_iter().filter(|o| o.conn == ConnId(7)).collect();
    assert_eq!(to_consumer.len(), 1, "one request relayed to the consumer");
    let command = to_consumer[0].command.clone();
    assert!(!command.is_response());
    command
}

#[test]
fn running_info_is_relayed_to_the_client_and_its_answer_returned() {
    let mut shard = shard_with_consumer();
    let admin = other_conn(9);
    let request = running_info_request(CLIENT);
    let opaque = request.opaque;
    assert!(shard.call_on(admin, request).is_none(), "deferred");
    let relayed = relayed_to_consumer(&mut shard);
    assert_eq!(relayed.code, RequestCode::GetConsumerRunningInfo.as_i32());
    assert_eq!(relayed.ext("clientId"), Some(CLIENT));
    assert_eq!(relayed.ext("jstackEnable"), Some("true"));
    assert_ne!(relayed.opaque, opaque, "the broker's own opaque");

    let mut answer = RemotingCommand::response_to(&relayed, ResponseCode::Success);
    answer.body =
        Bytes::from_static(br#"{"properties":{"PROP_CONSUME_TYPE":"CONSUME_PASSIVELY"}}"#);
    // An answer arriving on another connection does not complete the relay.
    shard.state.handle_response(ConnId(8), answer.clone());
    assert!(shard.outbox().is_empty());
    shard.state.handle_response(ConnId(7), answer.clone());
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conn, admin.id);
    assert!(out[0].command.is_response());
    assert_eq!(out[0].command.opaque, opaque);
    assert_eq!(out[0].command.code, 0);
    assert_eq!(out[0].command.body, answer.body);
    assert!(shard.state.relays.is_empty());
}

#[test]
fn client_not_online_is_answered_like_rocketmq() {
    let mut shard = shard_with_consumer();
    let response = shard.call(running_info_request("nobody@1"));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert_eq!(
        response.remark.as_deref(),
        Some("The Consumer <G> <nobody@1> not online")
    );
    assert_names_field(
        &shard.call(without(running_info_request(CLIENT), "clientId")),
        "clientId",
    );
}

#[test]
fn a_silent_client_times_out_with_consume_msg_timeout() {
    let mut shard = shard_with_consumer();
    let admin = other_conn(9);
    assert!(shard.call_on(admin, running_info_request(CLIENT)).is_none());
    relayed_to_consumer(&mut shard);
    assert_eq!(
        shard
            .state
            .next_deadline_ms()
            .map(|d| d <= shard.now_ms + RELAY_TIMEOUT_MS),
        Some(true)
    );
    shard.advance(RELAY_TIMEOUT_MS - 1);
    assert!(shard.outbox().iter().all(|o| o.conn != admin.id));
    shard.advance(1);
    let out: Vec<_> = shard
        .outbox()
        .into_iter()
        .filter(|o| o.conn == admin.id)
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].command.code,
        ResponseCode::ConsumeMsgTimeout.as_i32()
    );
    let remark = out[0].command.remark.clone().unwrap_or_default();
    assert!(
        remark.starts_with("consumer <G> <10.0.0.9@4242> Timeout:"),
        "{remark}"
    );
}

#[test]
fn a_client_that_disconnects_first_is_an_exception() {
    let mut shard = shard_with_consumer();
    let admin = other_conn(9);
    assert!(shard.call_on(admin, running_info_request(CLIENT)).is_none());
    relayed_to_consumer(&mut shard);
    shard.state.connection_closed(ConnId(7));
    let out: Vec<_> = shard
        .outbox()
        .into_iter()
        .filter(|o| o.conn == admin.id)
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command.code, ResponseCode::SystemError.as_i32());
    assert!(
        out[0]
            .command
            .remark
            .as_deref()
            .unwrap_or_default()
            .starts_with("invoke consumer <G> <10.0.0.9@4242> Exception:")
    );
    assert!(shard.state.relays.is_empty());
}

#[test]
fn an_admin_that_disconnects_drops_its_relay() {
    let mut shard = shard_with_consumer();
    let admin = other_conn(9);
    assert!(shard.call_on(admin, running_info_request(CLIENT)).is_none());
    let relayed = relayed_to_consumer(&mut shard);
    shard.state.connection_closed(admin.id);
    assert!(shard.state.relays.is_empty());
    shard.state.handle_response(
        ConnId(7),
        RemotingCommand::response_to(&relayed, ResponseCode::Success),
    );
    assert!(shard.outbox().is_empty());
}

#[test]
fn consume_directly_carries_the_message_and_broker_fields() {
    let mut shard = shard_with_consumer();
    let sent = shard.call(send_request("T", 0, b"direct-body", &[]));
    let msg_id = SendMessageResponseHeader::decode(&sent)
        .expect("header")
        .msg_id;
    let admin = other_conn(9);
    let mut request = RemotingCommand::request(RequestCode::ConsumeMessageDirectly);
    for (k, v) in [
        ("consumerGroup", GROUP),
        ("clientId", CLIENT),
        ("msgId", msg_id.as_str()),
        ("topic", "T"),
    ] {
        request.ext_fields.insert(k.into(), v.into());
    }
    let opaque = request.opaque;
    assert!(shard.call_on(admin, request.clone()).is_none());
    let relayed = relayed_to_consumer(&mut shard);
    assert_eq!(relayed.code, RequestCode::ConsumeMessageDirectly.as_i32());
    assert_eq!(
        relayed.ext("brokerName"),
        Some(shard.state.identity.broker_name.as_str())
    );
    assert_eq!(relayed.ext("topicSysFlag"), Some("0"));
    assert_eq!(relayed.ext("msgId"), Some(msg_id.as_str()));
    assert_eq!(&records(&relayed.body)[0].body()[..], b"direct-body");
    let mut answer = RemotingCommand::response_to(&relayed, ResponseCode::Success);
    answer.body = Bytes::from_static(br#"{"consumeResult":"CR_SUCCESS","order":false}"#);
    shard.state.handle_response(ConnId(7), answer);
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command.opaque, opaque);

    let missing = without(request.clone(), "msgId");
    let response = shard.call(missing);
    assert_eq!(
        response.remark.as_deref(),
        Some("the custom field <msgId> is null")
    );
    let mut bad = request;
    bad.ext_fields.insert("msgId".into(), "ZZ".into());
    assert_eq!(shard.call(bad).code, ResponseCode::SystemError.as_i32());
}

#[test]
fn relays_are_bounded() {
    let mut shard = shard_with_consumer();
    for _ in 0..RELAYS_MAX {
        assert!(
            shard
                .call_on(other_conn(9), running_info_request(CLIENT))
                .is_none()
        );
    }
    let refused = shard.call(running_info_request(CLIENT));
    assert_eq!(refused.code, ResponseCode::SystemError.as_i32());
    assert_eq!(shard.state.relays.len(), RELAYS_MAX);
}
