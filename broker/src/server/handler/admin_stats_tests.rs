use ringmq_wire::body::consumer::ConsumerConnection;
use ringmq_wire::body::kv::KvTable;
use ringmq_wire::body::stats::{ConsumeStats, TopicStatsTable};
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

#[test]
fn topic_stats_report_each_queue() {
    let mut shard = TestShard::new();
    for _ in 0..3 {
        shard.call(send_request("T", 1, b"x", &[]));
    }
    let request = request_with(
        RequestCode::GetTopicStatsInfo,
        &GetTopicStatsInfoRequestHeader {
            topic: "T".into(),
            rpc: Default::default(),
        },
    );
    let response = shard.call(request);
    let table = TopicStatsTable::decode(&response.body).expect("stats");
    assert_eq!(table.offset_table.len(), 4);
    let q1 = table
        .offset_table
        .iter()
        .find(|(q, _)| q.queue_id == 1)
        .map(|(_, o)| *o)
        .expect("queue 1");
    assert_eq!((q1.min_offset, q1.max_offset), (0, 3));
    assert_eq!(q1.last_update_timestamp, shard.now_ms as i64);
    let missing = request_with(
        RequestCode::GetTopicStatsInfo,
        &GetTopicStatsInfoRequestHeader {
            topic: "Nope".into(),
            rpc: Default::default(),
        },
    );
    assert_eq!(
        shard.call(missing).code,
        ResponseCode::TopicNotExist.as_i32()
    );
}

#[test]
fn consume_stats_compare_broker_and_consumer_offsets() {
    let mut shard = TestShard::new();
    for _ in 0..5 {
        shard.call(send_request("T", 0, b"x", &[]));
    }
    shard.state.offsets.commit("G", "T", 0, 2);
    let request = request_with(
        RequestCode::GetConsumeStats,
        &GetConsumeStatsRequestHeader {
            consumer_group: "G".into(),
            topic: None,
            topic_list: None,
            rpc: Default::default(),
        },
    );
    let stats = ConsumeStats::decode(&shard.call(request).body).expect("consume stats");
    assert_eq!(stats.total_diff(), 3);
}

#[test]
fn consumer_connections_list_the_group_or_say_it_is_offline() {
    let mut shard = TestShard::new();
    let request = request_with(
        RequestCode::GetConsumerConnectionList,
        &GetConsumerConnectionListRequestHeader {
            consumer_group: "G".into(),
            rpc: Default::default(),
        },
    );
    assert_eq!(
        shard.call(request.clone()).code,
        ResponseCode::ConsumerNotOnline.as_i32()
    );
    shard.call(heartbeat_request("c1", "G", "T", "A || B"));
    let body = ConsumerConnection::decode(&shard.call(request).body).expect("connections");
    assert_eq!(body.connection_set.len(), 1);
    assert_eq!(body.connection_set[0].client_id, "c1");
    assert_eq!(body.connection_set[0].client_addr, CONN.remote.to_string());
    assert!(body.subscription_table.contains_key("T"));
}

#[test]
fn runtime_info_and_broker_config_report_real_values() {
    let mut shard = TestShard::new();
    shard.call(send_request("T", 0, b"x", &[]));
    let info = shard.call(RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo));
    let table: KvTable = ringmq_wire::json::parse("kv", &info.body).expect("kv");
    assert_eq!(table.table["msgPutTotalTodayNow"], "1");
    assert_ne!(table.table["commitLogMaxOffset"], "0");
    let config = shard.call(RemotingCommand::request(RequestCode::GetBrokerConfig));
    let text = String::from_utf8(config.body.to_vec()).expect("utf-8");
    assert!(text.contains("brokerName=broker-a-s0\n"), "{text}");
    assert!(text.contains("flushDiskType=ASYNC_FLUSH\n"), "{text}");
    assert!(config.ext("version").is_some_and(|v| v.contains("counter")));
}

#[test]
fn all_consumer_offsets_lists_every_group_and_queue() {
    let mut shard = TestShard::new();
    shard.state.offsets.commit("G", "T", 1, 7);
    let response = shard.call(RemotingCommand::request(RequestCode::GetAllConsumerOffset));
    let wrapper =
        ringmq_wire::body::consumer::ConsumerOffsetSerializeWrapper::decode(&response.body)
            .expect("offsets body");
    assert_eq!(wrapper.offset_table["T@G"][&1], 7);
}

#[test]
fn topic_consumed_by_lists_online_and_committed_groups() {
    use ringmq_wire::header::admin::GetTopicConfigRequestHeader;
    let mut shard = TestShard::new();
    shard.state.offsets.commit("Committed", "T", 0, 3);
    shard.state.offsets.commit("Elsewhere", "Other", 0, 3);
    shard.call(heartbeat_request("c1", "Online", "T", "*"));
    let request = request_with(
        RequestCode::QueryTopicConsumeByWho,
        &GetTopicConfigRequestHeader {
            topic: "T".into(),
            rpc: Default::default(),
        },
    );
    let response = shard.call(request);
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({ "groupList": ["Committed", "Online"] })
    );
}

#[test]
fn producer_connections_list_the_group_or_say_it_does_not_exist() {
    use ringmq_wire::body::consumer::ProducerConnection;
    use ringmq_wire::body::heartbeat::{HeartbeatData, ProducerData};
    use ringmq_wire::header::admin::GetProducerConnectionListRequestHeader;

    let mut shard = TestShard::new();
    let request = request_with(
        RequestCode::GetProducerConnectionList,
        &GetProducerConnectionListRequestHeader {
            producer_group: "PG".into(),
            rpc: Default::default(),
        },
    );
    let missing = shard.call(request.clone());
    assert_eq!(missing.code, ResponseCode::SystemError.as_i32());
    assert!(missing.remark.unwrap_or_default().contains("PG"));
    let data = HeartbeatData {
        client_id: "127.0.0.1@producer-1".into(),
        producer_data_set: vec![ProducerData {
            group_name: "PG".into(),
        }],
        ..HeartbeatData::default()
    };
    let beat =
        shard.call(RemotingCommand::request(RequestCode::HeartBeat).with_body(data.encode()));
    assert_eq!(beat.code, ResponseCode::Success.as_i32());
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::Success.as_i32());
    let body: ProducerConnection =
        ringmq_wire::json::parse("producer connection", &response.body).expect("body");
    assert_eq!(body.connection_set.len(), 1);
    assert_eq!(body.connection_set[0].client_id, "127.0.0.1@producer-1");
    assert_eq!(body.connection_set[0].client_addr, CONN.remote.to_string());
}
