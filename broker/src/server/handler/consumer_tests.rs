use ringmq_wire::body::consumer::{
    GetConsumerListByGroupResponseBody, LockBatchRequestBody, LockBatchResponseBody, MessageQueue,
};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::{
    GetConsumerListByGroupRequestHeader, NotifyConsumerIdsChangedRequestHeader,
};
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

fn list(shard: &mut TestShard, group: &str) -> RemotingCommand {
    shard.call(request_with(
        RequestCode::GetConsumerListByGroup,
        &GetConsumerListByGroupRequestHeader {
            consumer_group: group.into(),
            rpc: Default::default(),
        },
    ))
}

fn ids(response: &RemotingCommand) -> Vec<String> {
    assert_eq!(response.code, 0, "{:?}", response.remark);
    GetConsumerListByGroupResponseBody::decode(&response.body)
        .expect("consumer list body")
        .consumer_id_list
}

fn unregister(client: &str, group: &str) -> RemotingCommand {
    request_with(
        RequestCode::UnregisterClient,
        &UnregisterClientRequestHeader {
            client_id: client.into(),
            producer_group: None,
            consumer_group: Some(group.into()),
            rpc: Default::default(),
        },
    )
}

#[test]
fn consumer_list_returns_only_live_members_of_that_group() {
    let mut shard = TestShard::new();
    assert_eq!(
        shard
            .call_on(CONN, heartbeat_request("c1", "G", "T", "*"))
            .map(|r| r.code),
        Some(0)
    );
    shard.call_on(other_conn(2), heartbeat_request("c2", "G", "T", "*"));
    shard.call_on(other_conn(3), heartbeat_request("c3", "H", "T", "*"));
    assert_eq!(ids(&list(&mut shard, "G")), vec!["c1", "c2"]);
    assert_eq!(ids(&list(&mut shard, "H")), vec!["c3"]);
    shard.call(unregister("c1", "G"));
    assert_eq!(ids(&list(&mut shard, "G")), vec!["c2"]);
    shard.state.connection_closed(other_conn(2).id);
    let response = list(&mut shard, "G");
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response
            .remark
            .unwrap_or_default()
            .contains("no consumer for this group")
    );
}

#[test]
fn heartbeat_creates_group_and_retry_topic() {
    let mut shard = TestShard::new();
    shard.call(heartbeat_request("c1", "G", "T", "*"));
    assert!(shard.state.groups.get("G").is_some());
    assert!(shard.state.topics.get("%RETRY%G").is_some());
    assert!(shard.state.take_register_request());
}

#[test]
fn new_member_triggers_notify_consumer_ids_changed_to_the_group() {
    let mut shard = TestShard::new();
    shard.call_on(CONN, heartbeat_request("c1", "G", "T", "*"));
    shard.outbox();
    shard.call_on(other_conn(2), heartbeat_request("c2", "G", "T", "*"));
    let out = shard.outbox();
    let mut conns: Vec<_> = out.iter().map(|o| o.conn).collect();
    conns.sort();
    assert_eq!(conns, vec![CONN.id, other_conn(2).id]);
    for o in &out {
        assert_eq!(
            o.command.code,
            RequestCode::NotifyConsumerIdsChanged.as_i32()
        );
        assert!(o.command.is_oneway());
        let header = NotifyConsumerIdsChangedRequestHeader::decode(&o.command).expect("header");
        assert_eq!(header.consumer_group, "G");
    }
    // A repeated heartbeat is no change.
    shard.call_on(other_conn(2), heartbeat_request("c2", "G", "T", "*"));
    assert!(shard.outbox().is_empty());
    // Leaving notifies who remains.
    shard.call(unregister("c1", "G"));
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conn, other_conn(2).id);
}

#[test]
fn silent_consumers_expire_and_the_rest_are_notified() {
    let mut shard = TestShard::new();
    shard.call_on(CONN, heartbeat_request("c1", "G", "T", "*"));
    shard.advance(60_000);
    shard.call_on(other_conn(2), heartbeat_request("c2", "G", "T", "*"));
    shard.outbox();
    shard.advance(70_000);
    assert_eq!(ids(&list(&mut shard, "G")), vec!["c2"]);
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].conn, other_conn(2).id);
}

#[test]
fn malformed_heartbeat_body_is_an_error_naming_the_body() {
    let mut shard = TestShard::new();
    let request = RemotingCommand::request(RequestCode::HeartBeat).with_body(&b"{not json"[..]);
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(response.remark.unwrap_or_default().contains("heartbeat"));
}

#[test]
fn unregister_missing_client_id_names_it() {
    let mut shard = TestShard::new();
    let response = shard.call(without(unregister("c1", "G"), "clientID"));
    assert_names_field(&response, "clientID");
    let response = shard.call(without(list_request("G"), "consumerGroup"));
    assert_names_field(&response, "consumerGroup");
}

fn list_request(group: &str) -> RemotingCommand {
    request_with(
        RequestCode::GetConsumerListByGroup,
        &GetConsumerListByGroupRequestHeader {
            consumer_group: group.into(),
            rpc: Default::default(),
        },
    )
}

fn lock_request(code: RequestCode, client: &str, queues: &[i32]) -> RemotingCommand {
    let body = LockBatchRequestBody {
        client_id: client.into(),
        consumer_group: "G".into(),
        mq_set: queues
            .iter()
            .map(|q| MessageQueue::new("T", "broker-a-s0", *q))
            .collect(),
        only_this_broker: true,
    };
    RemotingCommand::request(code).with_body(ringmq_wire::json::to_vec(&body))
}

fn locked(response: &RemotingCommand) -> Vec<i32> {
    assert_eq!(response.code, 0, "{:?}", response.remark);
    LockBatchResponseBody::decode(&response.body)
        .expect("lock body")
        .lock_ok_mq_set
        .iter()
        .map(|q| q.queue_id)
        .collect()
}

#[test]
fn lock_batch_grants_free_queues_and_unlock_releases_them() {
    let mut shard = TestShard::new();
    assert_eq!(
        locked(&shard.call(lock_request(RequestCode::LockBatchMq, "a", &[0, 1]))),
        vec![0, 1]
    );
    assert_eq!(
        locked(&shard.call(lock_request(RequestCode::LockBatchMq, "b", &[1, 2]))),
        vec![2]
    );
    assert_eq!(
        shard
            .call(lock_request(RequestCode::UnlockBatchMq, "a", &[1]))
            .code,
        0
    );
    assert_eq!(
        locked(&shard.call(lock_request(RequestCode::LockBatchMq, "b", &[1]))),
        vec![1]
    );
    shard.advance(60_001);
    assert_eq!(
        locked(&shard.call(lock_request(RequestCode::LockBatchMq, "b", &[0]))),
        vec![0]
    );
}
