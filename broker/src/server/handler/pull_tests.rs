use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::offset::QueryConsumerOffsetRequestHeader;
use ringmq_wire::header::pull::PullMessageResponseHeader;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::config::BrokerConfig;
use crate::server::handler::testing::*;

fn send(shard: &mut TestShard, topic: &str, queue: i32, body: &[u8], tag: &str) {
    let props: Vec<(&str, &str)> = if tag.is_empty() {
        vec![]
    } else {
        vec![("TAGS", tag)]
    };
    let response = shard.call(send_request(topic, queue, body, &props));
    assert_eq!(response.code, 0, "{:?}", response.remark);
}

fn header(response: &RemotingCommand) -> PullMessageResponseHeader {
    PullMessageResponseHeader::decode(response).expect("pull response header")
}

#[test]
fn found_returns_the_stored_records_concatenated() {
    let mut shard = TestShard::new();
    for body in [&b"a"[..], b"b", b"c"] {
        send(&mut shard, "T", 0, body, "");
    }
    let response = shard.call(pull_request("G", "T", 0, 1, "*", false));
    assert_eq!(response.code, 0);
    let h = header(&response);
    assert_eq!((h.next_begin_offset, h.min_offset, h.max_offset), (3, 0, 3));
    assert_eq!(h.suggest_which_broker_id, 0);
    let messages = records(&response.body);
    let bodies: Vec<&[u8]> = messages
        .iter()
        .map(|m| &m.raw[m.layout.body.clone()])
        .collect();
    assert_eq!(bodies, vec![&b"b"[..], b"c"]);
    assert_eq!(shard.state.stats.get_messages, 2);
}

#[test]
fn tag_filter_returns_only_matching_tags_and_skips_the_rest() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"1", "A");
    send(&mut shard, "T", 0, b"2", "B");
    send(&mut shard, "T", 0, b"3", "A");
    let response = shard.call(pull_request("G", "T", 0, 0, "A", false));
    assert_eq!(response.code, 0);
    let tags: Vec<Option<String>> = records(&response.body)
        .iter()
        .map(|m| m.tags().map(str::to_owned))
        .collect();
    assert_eq!(tags, vec![Some("A".into()), Some("A".into())]);
    assert_eq!(header(&response).next_begin_offset, 3);
}

#[test]
fn nothing_matching_answers_retry_immediately_past_the_scanned_entries() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"1", "B");
    let response = shard.call(pull_request("G", "T", 0, 0, "A", true));
    assert_eq!(response.code, ResponseCode::PullRetryImmediately.as_i32());
    assert_eq!(header(&response).next_begin_offset, 1);
}

#[test]
fn offset_below_min_is_moved_to_min() {
    let mut shard = TestShard::new();
    for _ in 0..3 {
        send(&mut shard, "T", 0, b"x", "");
    }
    shard.state.store.drop_before("T", 0, 2);
    let response = shard.call(pull_request("G", "T", 0, 0, "*", false));
    assert_eq!(response.code, ResponseCode::PullOffsetMoved.as_i32());
    assert_eq!(header(&response).next_begin_offset, 2);
}

#[test]
fn offset_far_past_max_is_moved() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    let response = shard.call(pull_request("G", "T", 0, 10, "*", false));
    assert_eq!(response.code, ResponseCode::PullOffsetMoved.as_i32());
    // min is 0, so RocketMQ corrects to the min offset.
    assert_eq!(header(&response).next_begin_offset, 0);
    shard.state.store.drop_before("T", 0, 1);
    send(&mut shard, "T", 0, b"y", "");
    let response = shard.call(pull_request("G", "T", 0, 10, "*", false));
    assert_eq!(header(&response).next_begin_offset, 2);
}

#[test]
fn empty_queue_is_not_found_at_zero_and_moved_elsewhere() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 1, b"x", "");
    let response = shard.call(pull_request("G", "T", 0, 0, "*", false));
    assert_eq!(response.code, ResponseCode::PullNotFound.as_i32());
    let response = shard.call(pull_request("G", "T", 0, 5, "*", false));
    assert_eq!(response.code, ResponseCode::PullOffsetMoved.as_i32());
    assert_eq!(header(&response).next_begin_offset, 0);
}

#[test]
fn caught_up_pull_without_suspend_is_not_found_at_once() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    let response = shard.call(pull_request("G", "T", 0, 1, "*", false));
    assert_eq!(response.code, ResponseCode::PullNotFound.as_i32());
    assert_eq!(header(&response).next_begin_offset, 1);
}

#[test]
fn long_poll_is_woken_by_a_send_to_that_queue() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"old", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    assert_eq!(shard.state.pulls.len(), 1);
    send(&mut shard, "T", 1, b"other queue", "");
    assert!(shard.outbox().is_empty());
    send(&mut shard, "T", 0, b"new", "");
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conn, CONN.id);
    assert_eq!(out[0].command.code, 0);
    let messages = records(&out[0].command.body);
    assert_eq!(&messages[0].body()[..], b"new");
    assert!(shard.state.pulls.is_empty());
}

#[test]
fn long_poll_expires_with_pull_not_found() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    shard.advance(14_999);
    assert!(shard.outbox().is_empty());
    shard.advance(1);
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command.code, ResponseCode::PullNotFound.as_i32());
}

#[test]
fn parked_pull_does_not_delay_other_requests_on_the_connection() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    let query = request_with(
        RequestCode::QueryConsumerOffset,
        &QueryConsumerOffsetRequestHeader {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            set_zero_if_not_found: None,
            rpc: Default::default(),
        },
    );
    let response = shard.call(query);
    assert_eq!(response.code, 0);
}

#[test]
fn short_polling_holds_for_the_configured_time() {
    let mut config = BrokerConfig::standalone();
    config.polling.long_polling = false;
    let mut shard = TestShard::with_config(config);
    send(&mut shard, "T", 0, b"x", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    shard.advance(1_000);
    assert_eq!(shard.outbox().len(), 1);
}

#[test]
fn full_long_poll_registry_answers_at_once() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_pending_pulls = 1;
    let mut shard = TestShard::with_config(config);
    send(&mut shard, "T", 0, b"x", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    let response = shard.call(pull_request("G", "T", 0, 1, "*", true));
    assert_eq!(response.code, ResponseCode::PullNotFound.as_i32());
}

#[test]
fn closed_connection_forgets_its_parked_pulls() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    shard.state.connection_closed(CONN.id);
    send(&mut shard, "T", 0, b"y", "");
    assert!(shard.outbox().is_empty());
}

#[test]
fn commit_offset_flag_records_the_offset() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    let mut request = pull_request("G", "T", 0, 1, "*", false);
    request.ext_fields.insert("sysFlag".into(), "5".into());
    request.ext_fields.insert("commitOffset".into(), "1".into());
    shard.call(request);
    assert_eq!(shard.state.offsets.query("G", "T", 0), Some(1));
}

#[test]
fn missing_required_pull_fields_are_named() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"x", "");
    for field in [
        "consumerGroup",
        "topic",
        "queueId",
        "queueOffset",
        "maxMsgNums",
        "sysFlag",
        "commitOffset",
        "suspendTimeoutMillis",
        "subVersion",
    ] {
        let response = shard.call(without(pull_request("G", "T", 0, 0, "*", false), field));
        assert_names_field(&response, field);
    }
}

#[test]
fn subscription_comes_from_the_heartbeat_when_the_pull_carries_none() {
    let mut shard = TestShard::new();
    send(&mut shard, "T", 0, b"1", "A");
    send(&mut shard, "T", 0, b"2", "B");
    let mut request = pull_request("G", "T", 0, 0, "*", false);
    request.ext_fields.insert("sysFlag".into(), "0".into());
    let response = shard.call(request.clone());
    assert_eq!(response.code, ResponseCode::SubscriptionNotExist.as_i32());
    assert_eq!(shard.call(heartbeat_request("c1", "G", "T", "B")).code, 0);
    let response = shard.call(request);
    assert_eq!(response.code, 0);
    let messages = records(&response.body);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].tags(), Some("B"));
}

#[test]
fn unknown_topic_bad_queue_and_disabled_group_are_refused() {
    let mut shard = TestShard::new();
    let response = shard.call(pull_request("G", "Nope", 0, 0, "*", false));
    assert_eq!(response.code, ResponseCode::TopicNotExist.as_i32());
    send(&mut shard, "T", 0, b"x", "");
    let response = shard.call(pull_request("G", "T", 9, 0, "*", false));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    let mut group = crate::server::group::SubscriptionGroupConfig::new("Off");
    group.consume_enable = false;
    shard.state.groups.update(group, 1).expect("group");
    let response = shard.call(pull_request("Off", "T", 0, 0, "*", false));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
}

#[test]
fn sql92_subscriptions_are_refused_clearly_when_property_filter_is_off() {
    let mut config = BrokerConfig::standalone();
    config.filter.enable_property_filter = false;
    let mut shard = TestShard::with_config(config);
    send(&mut shard, "T", 0, b"x", "");
    let mut request = pull_request("G", "T", 0, 0, "a > 1", false);
    request
        .ext_fields
        .insert("expressionType".into(), "SQL92".into());
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    let remark = response.remark.unwrap_or_default();
    assert!(remark.contains("SQL92") && remark.contains("enable_property_filter"));
}

#[test]
fn pull_size_limits_always_return_the_first_message() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_pull_bytes = 1024;
    let mut shard = TestShard::with_config(config);
    send(&mut shard, "T", 0, &[7u8; 2000], "");
    send(&mut shard, "T", 0, b"small", "");
    let response = shard.call(pull_request("G", "T", 0, 0, "*", false));
    assert_eq!(records(&response.body).len(), 1);
    assert_eq!(header(&response).next_begin_offset, 1);
}

#[test]
fn parked_pull_wakes_only_once_the_new_record_is_durable() {
    let mut config = BrokerConfig::standalone();
    config.store.flush_mode = crate::config::FlushMode::Sync;
    let mut shard = TestShard::with_config(config);
    send(&mut shard, "T", 0, b"old", "");
    shard.state.store.set_auto_durable(false);
    assert!(
        shard
            .call_raw(pull_request("G", "T", 0, 1, "*", true))
            .is_none()
    );
    assert!(shard.call_raw(send_request("T", 0, b"new", &[])).is_none());
    shard.advance(1);
    let early = shard.outbox();
    assert!(
        early.is_empty(),
        "neither ack nor pull before durability: {early:?}"
    );
    let end = shard.state.store.commit_log_max_offset() as u64;
    shard.state.store.set_durable_offset(end);
    shard.advance(1);
    let out = shard.outbox();
    assert_eq!(out.len(), 2, "the send ack and the woken pull");
}
