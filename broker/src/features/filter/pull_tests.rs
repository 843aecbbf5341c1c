//! Pulls with SQL92 subscriptions through the real pull handler, over the in-memory store.

use ringmq_wire::body::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::pull::PullMessageResponseHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::server::handler::testing::*;

fn send(shard: &mut TestShard, n: u32, props: &[(&str, &str)]) {
    let body = n.to_string();
    let response = shard.call(send_request("T", 0, body.as_bytes(), props));
    assert_eq!(response.code, 0, "{:?}", response.remark);
}

fn sql_pull(offset: i64, expression: &str) -> RemotingCommand {
    let mut request = pull_request("G", "T", 0, offset, expression, false);
    request
        .ext_fields
        .insert("expressionType".into(), "SQL92".into());
    request
}

fn bodies(response: &RemotingCommand) -> Vec<String> {
    records(&response.body)
        .iter()
        .map(|m| String::from_utf8_lossy(&m.raw[m.layout.body.clone()]).into_owned())
        .collect()
}

fn next_offset(response: &RemotingCommand) -> i64 {
    PullMessageResponseHeader::decode(response)
        .expect("pull response header")
        .next_begin_offset
}

#[test]
fn pull_returns_only_matching_messages_and_advances_past_the_rest() {
    let mut shard = TestShard::new();
    for n in 0..10u32 {
        let a = n.to_string();
        let tag = if n % 2 == 0 { "x" } else { "y" };
        send(&mut shard, n, &[("a", &a), ("TAGS", tag)]);
    }
    send(&mut shard, 10, &[("TAGS", "x")]); // no `a`: never matches `a > …`
    let response = shard.call(sql_pull(0, "a > 5 AND TAGS IN ('x')"));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(bodies(&response), ["6", "8"]);
    assert_eq!(next_offset(&response), 11);
    // From the next offset there is nothing new: not found (a suspended pull would wait).
    let response = shard.call(sql_pull(11, "a > 5 AND TAGS IN ('x')"));
    assert_eq!(response.code, ResponseCode::PullNotFound.as_i32());
}

#[test]
fn sparse_matches_are_found_across_several_store_reads() {
    let mut shard = TestShard::new();
    for n in 0..100u32 {
        let kind = if n == 70 { "rare" } else { "common" };
        send(&mut shard, n, &[("kind", kind)]);
    }
    // The pull asks for 32 messages; the match is past the first three batches' worth.
    let response = shard.call(sql_pull(0, "kind = 'rare'"));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(bodies(&response), ["70"]);
    assert_eq!(next_offset(&response), 100);
    // Nothing matching at all: the offset still moves to the end.
    let response = shard.call(sql_pull(0, "kind = 'none'"));
    assert_eq!(response.code, ResponseCode::PullNotFound.as_i32());
    assert_eq!(next_offset(&response), 100);
}

#[test]
fn syntax_error_is_subscription_parse_failed_with_the_position() {
    let mut shard = TestShard::new();
    send(&mut shard, 0, &[("a", "1")]);
    let response = shard.call(sql_pull(0, "a > 5 AND OR b = 1"));
    assert_eq!(
        response.code,
        ResponseCode::SubscriptionParseFailed.as_i32()
    );
    let remark = response.remark.unwrap_or_default();
    assert!(remark.contains("line 1, column 11"), "{remark}");
}

#[test]
fn unknown_expression_type_is_refused() {
    let mut shard = TestShard::new();
    send(&mut shard, 0, &[("a", "1")]);
    let mut request = sql_pull(0, "a > 1");
    request
        .ext_fields
        .insert("expressionType".into(), "XPATH".into());
    let response = shard.call(request);
    assert_eq!(
        response.code,
        ResponseCode::SubscriptionParseFailed.as_i32()
    );
}

fn sql_heartbeat(expression: &str) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: "127.0.0.1@sql".into(),
        consumer_data_set: vec![ConsumerData {
            group_name: "G".into(),
            subscription_data_set: vec![SubscriptionData {
                topic: "T".into(),
                sub_string: expression.into(),
                expression_type: "SQL92".into(),
                sub_version: 1,
                ..SubscriptionData::default()
            }],
            ..ConsumerData::default()
        }],
        ..HeartbeatData::default()
    };
    RemotingCommand::request(RequestCode::HeartBeat).with_body(data.encode())
}

/// A pull without the subscription flag (the stock push consumer's default) uses the
/// subscription of the group's heartbeat.
fn registered_pull() -> RemotingCommand {
    let mut request = pull_request("G", "T", 0, 0, "", false);
    request.ext_fields.insert("sysFlag".into(), "0".into());
    request.ext_fields.remove("subscription");
    request
        .ext_fields
        .insert("expressionType".into(), "SQL92".into());
    request
}

#[test]
fn heartbeat_registered_sql_subscription_filters_pulls() {
    let mut shard = TestShard::new();
    send(&mut shard, 0, &[("region", "eu")]);
    send(&mut shard, 1, &[("region", "us")]);
    let response = shard.call(sql_heartbeat("region = 'us'"));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let response = shard.call(registered_pull());
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(bodies(&response), ["1"]);
    // Compiled once, reused by the next pulls.
    let compiled = shard.state.filters.compiled_count();
    shard.call(registered_pull());
    assert_eq!(shard.state.filters.compiled_count(), compiled);
}

#[test]
fn heartbeat_registered_broken_expression_is_filter_data_not_exist() {
    let mut shard = TestShard::new();
    send(&mut shard, 0, &[("region", "eu")]);
    assert_eq!(shard.call(sql_heartbeat("region = ")).code, 0);
    let response = shard.call(registered_pull());
    assert_eq!(response.code, ResponseCode::FilterDataNotExist.as_i32());
    assert!(response.remark.unwrap_or_default().contains("column"));
}
