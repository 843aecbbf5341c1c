use ringmq_wire::body::client::ResetOffsetBody;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::ResetOffsetRequestHeader;
use ringmq_wire::{LanguageCode, RemotingCommand, RequestCode, ResponseCode};

use crate::server::ConnId;
use crate::server::handler::testing::*;

const GROUP: &str = "G";
const CLIENT: &str = "10.0.0.9@4242";
const CONSUMER_CONN: u64 = 7;

/// A shard with 5 messages stored at `t0` and 5 at `t0 + 1000` in queue 0 of `T`, and the
/// group's committed offset 8 on queue 0. Returns the shard and `t0`.
fn shard_with_history() -> (TestShard, i64) {
    let mut shard = TestShard::new();
    let t0 = shard.now_ms as i64;
    for i in 0..10 {
        if i == 5 {
            shard.now_ms += 1000;
            shard.state.store.set_now_ms(shard.now_ms as i64);
        }
        assert_eq!(shard.call(send_request("T", 0, b"m", &[])).code, 0);
    }
    assert!(shard.state.offsets.commit(GROUP, "T", 0, 8));
    shard.outbox();
    (shard, t0)
}

fn connect_consumer(shard: &mut TestShard) {
    let response = shard
        .call_on(
            other_conn(CONSUMER_CONN),
            heartbeat_request(CLIENT, GROUP, "T", "*"),
        )
        .expect("heartbeat answered");
    assert_eq!(response.code, 0);
    shard.outbox();
}

fn reset(timestamp: i64, force: bool) -> RemotingCommand {
    reset_with(timestamp, force, None, None)
}

fn reset_with(
    timestamp: i64,
    force: bool,
    queue_id: Option<i32>,
    offset: Option<i64>,
) -> RemotingCommand {
    request_with(
        RequestCode::InvokeBrokerToResetOffset,
        &ResetOffsetRequestHeader {
            topic: "T".into(),
            group: GROUP.into(),
            timestamp,
            is_force: force,
            queue_id,
            offset,
            rpc: Default::default(),
        },
    )
}

/// The offset of queue `queue_id` of `T` in a reset table.
fn offset_of(body: &ResetOffsetBody, queue_id: i32) -> Option<i64> {
    body.offset_table
        .iter()
        .find(|(q, _)| q.topic == "T" && q.queue_id == queue_id)
        .map(|(_, offset)| *offset)
}

/// The `RESET_CONSUMER_CLIENT_OFFSET` requests sent to the consumer's connection.
fn sent_to_consumer(shard: &mut TestShard) -> Vec<RemotingCommand> {
    shard
        .outbox()
        .into_iter()
        .filter(|o| o.conn == ConnId(CONSUMER_CONN))
        .map(|o| o.command)
        .filter(|c| c.code == RequestCode::ResetConsumerClientOffset.as_i32())
        .collect()
}

#[test]
fn rewinds_commits_and_tells_every_consumer() {
    let (mut shard, t0) = shard_with_history();
    connect_consumer(&mut shard);
    let response = shard.call(reset(t0 + 1000, false));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let table = ResetOffsetBody::decode(&response.body).expect("reset table");
    assert_eq!(offset_of(&table, 0), Some(5));
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(5));
    // Every readable queue is in the table, named by this shard's broker name.
    let queues = shard.state.topics.get("T").expect("topic").read_queue_nums;
    assert_eq!(table.offset_table.len(), queues as usize);
    let broker = shard.state.identity.broker_name.clone();
    assert!(table.offset_table.keys().all(|q| q.broker_name == broker));

    let sent = sent_to_consumer(&mut shard);
    assert_eq!(sent.len(), 1, "one reset per live consumer");
    assert!(sent[0].is_oneway());
    let header = ResetOffsetRequestHeader::decode(&sent[0]).expect("header");
    assert_eq!((header.group.as_str(), header.topic.as_str()), (GROUP, "T"));
    assert_eq!(header.timestamp, t0 + 1000);
    let body = ResetOffsetBody::decode(&sent[0].body).expect("body");
    assert_eq!(body, table);
}

#[test]
fn without_force_offsets_only_move_back() {
    let (mut shard, _) = shard_with_history();
    connect_consumer(&mut shard);
    // The end of the queue (10) lies past the committed 8: kept at 8 unless forced.
    let response = shard.call(reset(-1, false));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let table = ResetOffsetBody::decode(&response.body).expect("table");
    assert_eq!(offset_of(&table, 0), Some(8));
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(8));

    let response = shard.call(reset(-1, true));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let table = ResetOffsetBody::decode(&response.body).expect("table");
    assert_eq!(offset_of(&table, 0), Some(10));
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(10));
}

#[test]
fn a_time_before_everything_rewinds_to_the_start() {
    let (mut shard, t0) = shard_with_history();
    connect_consumer(&mut shard);
    let response = shard.call(reset(t0 - 60_000, false));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(0));
}

#[test]
fn no_consumer_online_is_refused_and_nothing_changes() {
    let (mut shard, t0) = shard_with_history();
    let response = shard.call(reset(t0, true));
    assert_eq!(response.code, ResponseCode::ConsumerNotOnline.as_i32());
    let remark = response.remark.unwrap_or_default();
    assert!(
        remark.starts_with("Consumer not online, so can not reset offset, Group: G Topic: T"),
        "{remark}"
    );
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(8));
}

#[test]
fn unknown_topic_and_unknown_group_are_refused_with_rocketmq_remarks() {
    let (mut shard, t0) = shard_with_history();
    connect_consumer(&mut shard);
    let mut request = reset(t0, true);
    request.ext_fields.insert("topic".into(), "Nope".into());
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response
            .remark
            .unwrap_or_default()
            .contains("no topic in this broker. topic=Nope")
    );

    let mut request = reset(t0, true);
    request.ext_fields.insert("group".into(), "Other".into());
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert_eq!(
        response.remark.as_deref(),
        Some("THe consumer group <Other> not exist")
    );
    assert!(sent_to_consumer(&mut shard).is_empty());
}

#[test]
fn missing_fields_are_named() {
    let (mut shard, t0) = shard_with_history();
    for field in ["topic", "group", "timestamp", "isForce"] {
        let response = shard.call(without(reset(t0, true), field));
        assert_names_field(&response, field);
    }
}

#[test]
fn one_queue_to_an_explicit_offset_checked_against_its_range() {
    let (mut shard, _) = shard_with_history();
    connect_consumer(&mut shard);
    let response = shard.call(reset_with(0, false, Some(0), Some(9)));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let table = ResetOffsetBody::decode(&response.body).expect("table");
    assert_eq!(table.offset_table.len(), 1);
    assert_eq!(offset_of(&table, 0), Some(9), "explicit: moves forward too");
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(9));

    let response = shard.call(reset_with(0, false, Some(0), Some(50)));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert_eq!(
        response.remark.as_deref(),
        Some("Target offset 50 not in consume queue range [0-10]")
    );
    let response = shard.call(reset_with(0, false, Some(99), None));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(response.remark.unwrap_or_default().contains("queueId 99"));
}

#[test]
fn a_cpp_request_gets_the_list_form() {
    let (mut shard, t0) = shard_with_history();
    connect_consumer(&mut shard);
    let mut request = reset(t0, true);
    request.language = LanguageCode::Cpp;
    let response = shard.call(request);
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    let list = body["offsetTable"].as_array().expect("a list");
    let q0 = list
        .iter()
        .find(|e| e["queueId"] == 0)
        .expect("queue 0 listed");
    assert_eq!(q0["offset"], 0);
    assert_eq!(q0["topic"], "T");
    let sent = sent_to_consumer(&mut shard);
    assert_eq!(&sent[0].body[..], &response.body[..]);
}

#[test]
fn a_client_too_old_for_resets_is_refused() {
    let (mut shard, t0) = shard_with_history();
    let mut heartbeat = heartbeat_request(CLIENT, GROUP, "T", "*");
    heartbeat.version = 27;
    assert_eq!(
        shard
            .call_on(other_conn(CONSUMER_CONN), heartbeat)
            .expect("answered")
            .code,
        0
    );
    let response = shard.call(reset(t0, true));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response
            .remark
            .unwrap_or_default()
            .starts_with("the client does not support this feature")
    );
    assert_eq!(shard.state.offsets.query(GROUP, "T", 0), Some(8));
}
