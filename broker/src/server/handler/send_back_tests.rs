//! Tests of `CONSUMER_SEND_MSG_BACK` over the in-memory store.

use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::ConsumerSendMsgBackRequestHeader;
use ringmq_wire::header::send::SendMessageResponseHeader;
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::record::StoredMessage;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::config::BrokerConfig;
use crate::server::handler::testing::*;
use crate::server::store::QueueRead;
use crate::server::topic::perm;

/// Sends a message to `T` queue 0 and returns its CommitLog offset and offset msgId.
fn stored_message(shard: &mut TestShard) -> (i64, String) {
    let response = shard.call(send_request(
        "T",
        0,
        b"work",
        &[("TAGS", "tagA"), ("UNIQ_KEY", "UK1")],
    ));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let header = SendMessageResponseHeader::decode(&response).expect("send response");
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("offset msg id");
    (physical, header.msg_id)
}

fn send_back_request(
    offset: i64,
    group: &str,
    delay_level: i32,
    max: Option<i32>,
) -> RemotingCommand {
    request_with(
        RequestCode::ConsumerSendMsgBack,
        &ConsumerSendMsgBackRequestHeader {
            offset,
            group: group.into(),
            delay_level,
            origin_msg_id: Some("UK1".into()),
            origin_topic: Some("T".into()),
            unit_mode: Some(false),
            max_reconsume_times: max,
            rpc: Default::default(),
        },
    )
}

fn queue(shard: &TestShard, topic: &str, queue_id: i32) -> Vec<StoredMessage> {
    let result = shard
        .state
        .store
        .get(&QueueRead {
            topic,
            queue_id,
            offset: 0,
            max_count: 100,
            max_bytes: 1 << 20,
            tag_codes: None,
            splice: false,
        })
        .expect("read");
    result
        .records
        .iter()
        .map(|raw| {
            StoredMessage::decode(raw.memory().expect("in memory"), true).expect("valid record")
        })
        .collect()
}

fn ok(response: &RemotingCommand) {
    assert_eq!(response.code, 0, "send back failed: {:?}", response.remark);
}

#[test]
fn a_failed_message_comes_back_from_the_retry_topic_after_level_three() {
    let mut shard = TestShard::new();
    let (offset, msg_id) = stored_message(&mut shard);
    ok(&shard.call(send_back_request(offset, "G", 0, None)));
    let retry = shard
        .state
        .topics
        .get("%RETRY%G")
        .expect("retry topic created");
    assert_eq!((retry.read_queue_nums, retry.perm), (1, perm::READ_WRITE));
    // Level 3 + 0 reconsumes = 10 s, parked in schedule queue 2.
    let parked = queue(&shard, "SCHEDULE_TOPIC_XXXX", 2);
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].property("REAL_TOPIC"), Some("%RETRY%G"));
    assert_eq!(parked[0].property("DELAY"), Some("3"));
    shard.advance(9_000);
    assert!(queue(&shard, "%RETRY%G", 0).is_empty(), "not before 10 s");
    shard.advance(1_000);
    let retried = queue(&shard, "%RETRY%G", 0);
    assert_eq!(retried.len(), 1);
    let message = &retried[0];
    assert_eq!(&message.body()[..], b"work");
    assert_eq!(message.layout.reconsume_times, 1);
    assert_eq!(message.property("RETRY_TOPIC"), Some("T"));
    assert_eq!(message.property("ORIGIN_MESSAGE_ID"), Some(msg_id.as_str()));
    assert_eq!(message.property("UNIQ_KEY"), Some("UK1"));
    assert_eq!(message.property("DELAY"), None);
    assert_eq!(message.tags(), Some("tagA"));
    assert_eq!(message.layout.born_host, CONN.remote);
}

#[test]
fn a_requested_delay_level_is_used_and_later_retries_grow() {
    let mut shard = TestShard::new();
    let (offset, msg_id) = stored_message(&mut shard);
    ok(&shard.call(send_back_request(offset, "G", 1, None)));
    shard.advance(1_000);
    let first = queue(&shard, "%RETRY%G", 0);
    assert_eq!(first.len(), 1, "level 1 = 1 s");
    // Failing again: level 3 + 1 reconsume = level 4 (30 s), origin id kept.
    ok(&shard.call(send_back_request(
        first[0].layout.physical_offset,
        "G",
        0,
        None,
    )));
    assert_eq!(queue(&shard, "SCHEDULE_TOPIC_XXXX", 3).len(), 1);
    shard.advance(30_000);
    let second = queue(&shard, "%RETRY%G", 0);
    assert_eq!(second.len(), 2);
    assert_eq!(second[1].layout.reconsume_times, 2);
    assert_eq!(second[1].property("RETRY_TOPIC"), Some("T"));
    assert_eq!(
        second[1].property("ORIGIN_MESSAGE_ID"),
        Some(msg_id.as_str())
    );
}

#[test]
fn past_max_reconsume_times_the_message_lands_in_the_dead_letter_topic() {
    let mut shard = TestShard::new();
    let (offset, msg_id) = stored_message(&mut shard);
    ok(&shard.call(send_back_request(offset, "G", 1, Some(1))));
    shard.advance(1_000);
    let retried = queue(&shard, "%RETRY%G", 0);
    ok(&shard.call(send_back_request(
        retried[0].layout.physical_offset,
        "G",
        0,
        Some(1),
    )));
    let dlq = shard.state.topics.get("%DLQ%G").expect("dlq topic created");
    assert_eq!((dlq.read_queue_nums, dlq.perm), (1, perm::READ_WRITE));
    let dead = queue(&shard, "%DLQ%G", 0);
    assert_eq!(dead.len(), 1, "stored at once, no delay");
    assert_eq!(dead[0].layout.reconsume_times, 2);
    assert_eq!(dead[0].property("RETRY_TOPIC"), Some("T"));
    assert_eq!(dead[0].property("ORIGIN_MESSAGE_ID"), Some(msg_id.as_str()));
    assert_eq!(dead[0].property("DELAY"), None);
    shard.advance(60_000);
    assert_eq!(queue(&shard, "%RETRY%G", 0).len(), 1, "no further retry");
}

#[test]
fn the_groups_retry_max_times_applies_without_a_client_limit() {
    let mut shard = TestShard::new();
    let (offset, _) = stored_message(&mut shard);
    let mut group = crate::server::group::SubscriptionGroupConfig::new("G");
    group.retry_max_times = 0;
    shard
        .state
        .groups
        .update(group, shard.now_ms)
        .expect("group");
    ok(&shard.call(send_back_request(offset, "G", 0, None)));
    assert_eq!(queue(&shard, "%DLQ%G", 0).len(), 1);
}

#[test]
fn a_negative_delay_level_dead_letters_at_once() {
    let mut shard = TestShard::new();
    let (offset, _) = stored_message(&mut shard);
    ok(&shard.call(send_back_request(offset, "G", -1, None)));
    let dead = queue(&shard, "%DLQ%G", 0);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].layout.reconsume_times, 1);
}

#[test]
fn an_unknown_group_without_auto_creation_is_refused() {
    let mut config = BrokerConfig::standalone();
    config.topics.auto_create_subscription_group = false;
    let mut shard = TestShard::with_config(config);
    let (offset, _) = stored_message(&mut shard);
    let response = shard.call(send_back_request(offset, "Nobody", 0, None));
    assert_eq!(
        response.code,
        ResponseCode::SubscriptionGroupNotExist.as_i32()
    );
    assert!(shard.state.topics.get("%RETRY%Nobody").is_none());
}

#[test]
fn a_missing_original_is_a_system_error_naming_the_offset() {
    let mut shard = TestShard::new();
    let response = shard.call(send_back_request(987_654, "G", 0, None));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response.remark.unwrap_or_default().contains("987654"),
        "remark names the offset"
    );
}

#[test]
fn a_missing_header_field_is_named() {
    let mut shard = TestShard::new();
    for field in ["offset", "group", "delayLevel"] {
        let response = shard.call(without(send_back_request(0, "G", 0, None), field));
        assert_names_field(&response, field);
    }
}

#[test]
fn the_answer_waits_until_the_copy_is_durable() {
    let mut shard = TestShard::new();
    let (offset, _) = stored_message(&mut shard);
    shard.state.store.set_auto_durable(false);
    assert!(
        shard
            .call_raw(send_back_request(offset, "G", 0, None))
            .is_none(),
        "held until durable"
    );
    shard.state.store.set_durable_offset(u64::MAX);
    shard.advance(1);
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command.code, 0);
}

#[test]
fn a_read_only_broker_refuses_send_back() {
    let mut config = BrokerConfig::standalone();
    config.broker.permission = 4;
    let mut shard = TestShard::with_config(config);
    let response = shard.call(send_back_request(0, "G", 0, None));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
}
