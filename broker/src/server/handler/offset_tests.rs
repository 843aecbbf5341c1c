use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::offset::*;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

fn query(group: &str, queue_id: i32, zero: Option<bool>) -> RemotingCommand {
    request_with(
        RequestCode::QueryConsumerOffset,
        &QueryConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: "T".into(),
            queue_id,
            set_zero_if_not_found: zero,
            rpc: Default::default(),
        },
    )
}

fn update(group: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    request_with(
        RequestCode::UpdateConsumerOffset,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: "T".into(),
            queue_id,
            commit_offset: offset,
            rpc: Default::default(),
        },
    )
}

fn offset_of(response: &RemotingCommand) -> i64 {
    assert_eq!(response.code, 0, "{:?}", response.remark);
    QueryConsumerOffsetResponseHeader::decode(response)
        .expect("offset header")
        .offset
}

fn send_n(shard: &mut TestShard, queue_id: i32, n: usize) {
    for _ in 0..n {
        assert_eq!(shard.call(send_request("T", queue_id, b"x", &[])).code, 0);
    }
}

#[test]
fn new_group_on_a_young_queue_starts_at_zero() {
    let mut shard = TestShard::new();
    send_n(&mut shard, 0, 3);
    assert_eq!(offset_of(&shard.call(query("Fresh", 0, None))), 0);
}

#[test]
fn new_group_on_an_empty_or_rolled_queue_is_not_found() {
    let mut shard = TestShard::new();
    send_n(&mut shard, 0, 3);
    let response = shard.call(query("Fresh", 1, None));
    assert_eq!(response.code, ResponseCode::QueryNotFound.as_i32());
    shard.state.store.drop_before("T", 0, 2);
    let response = shard.call(query("Fresh", 0, None));
    assert_eq!(response.code, ResponseCode::QueryNotFound.as_i32());
    let response = shard.call(query("Fresh", 0, Some(false)));
    assert_eq!(response.code, ResponseCode::QueryNotFound.as_i32());
}

#[test]
fn committed_offset_is_returned() {
    let mut shard = TestShard::new();
    send_n(&mut shard, 0, 3);
    assert_eq!(shard.call(update("G", 0, 2)).code, 0);
    assert_eq!(offset_of(&shard.call(query("G", 0, None))), 2);
}

#[test]
fn update_for_unknown_topic_or_bad_queue_is_refused() {
    let mut shard = TestShard::new();
    let response = shard.call(update("G", 0, 1));
    assert_eq!(response.code, ResponseCode::TopicNotExist.as_i32());
    send_n(&mut shard, 0, 1);
    let response = shard.call(update("G", 99, 1));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
}

#[test]
fn oneway_update_gets_no_reply_but_is_recorded() {
    let mut shard = TestShard::new();
    send_n(&mut shard, 0, 1);
    let mut request = update("G", 0, 1);
    request.set_oneway();
    assert!(shard.call_raw(request).is_none());
    assert_eq!(shard.state.offsets.query("G", "T", 0), Some(1));
}

#[test]
fn max_min_search_and_earliest_time() {
    let mut shard = TestShard::new();
    send_n(&mut shard, 0, 2);
    shard.advance(1_000);
    send_n(&mut shard, 0, 1);
    let topic_queue = |code| {
        let mut r = RemotingCommand::request(code);
        r.ext_fields.insert("topic".into(), "T".into());
        r.ext_fields.insert("queueId".into(), "0".into());
        r
    };
    let offset = |r: &RemotingCommand| OffsetResponseHeader::decode(r).expect("offset").offset;
    assert_eq!(
        offset(&shard.call(topic_queue(RequestCode::GetMaxOffset))),
        3
    );
    assert_eq!(
        offset(&shard.call(topic_queue(RequestCode::GetMinOffset))),
        0
    );
    let mut search = topic_queue(RequestCode::SearchOffsetByTimestamp);
    search
        .ext_fields
        .insert("timestamp".into(), (shard.now_ms - 500).to_string().into());
    assert_eq!(offset(&shard.call(search)), 2);
    let earliest = shard.call(topic_queue(RequestCode::GetEarliestMsgStoretime));
    let ts = GetEarliestMsgStoretimeResponseHeader::decode(&earliest)
        .expect("timestamp")
        .timestamp;
    assert_eq!(ts, (shard.now_ms - 1_000) as i64);
}

#[test]
fn missing_offset_fields_are_named() {
    let mut shard = TestShard::new();
    for field in ["consumerGroup", "topic", "queueId"] {
        assert_names_field(&shard.call(without(query("G", 0, None), field)), field);
    }
    assert_names_field(
        &shard.call(without(update("G", 0, 1), "commitOffset")),
        "commitOffset",
    );
    let mut max = RemotingCommand::request(RequestCode::GetMaxOffset);
    max.ext_fields.insert("topic".into(), "T".into());
    assert_names_field(&shard.call(max), "queueId");
}
