use ringmq_wire::body::register::TopicConfigSerializeWrapper;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

fn create(topic: &str, queues: i32, perm: i32) -> RemotingCommand {
    request_with(
        RequestCode::UpdateAndCreateTopic,
        &CreateTopicRequestHeader {
            topic: topic.into(),
            default_topic: "TBW102".into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: None,
            order: false,
            attributes: None,
            force: None,
            rpc: Default::default(),
        },
    )
}

fn get_one_request(topic: &str) -> RemotingCommand {
    request_with(
        RequestCode::GetTopicConfig,
        &GetTopicConfigRequestHeader {
            topic: topic.into(),
            rpc: Default::default(),
        },
    )
}

#[test]
fn created_topic_is_served_and_fanned_out_to_other_shards() {
    let mut shard = TestShard::new();
    assert_eq!(shard.call(create("Orders", 4, 6)).code, 0);
    let response = shard.call(get_one_request("Orders"));
    assert_eq!(response.code, 0);
    let config: TopicConfig = ringmq_wire::json::parse("topic", &response.body).expect("json");
    assert_eq!((config.read_queue_nums, config.perm), (4, 6));
    let changes = shard.state.take_admin_changes();
    assert!(matches!(&changes[..], [AdminChange::TopicUpdated(t)] if t.topic_name == "Orders"));
    assert!(shard.state.take_register_request());

    let mut other = TestShard::new();
    for change in changes {
        other.state.apply_admin_change(change, other.now_ms);
    }
    assert!(other.state.topics.get("Orders").is_some());
}

#[test]
fn created_and_fanned_out_topics_are_persisted_at_once() {
    // Regression: topics were saved only every flush_consumer_offset_interval_ms, so a
    // broker killed (SIGKILL) within that window forgot a topic it had acknowledged.
    let mut shard = TestShard::new();
    assert_eq!(shard.call(create("Durable", 4, 6)).code, 0);
    let saved = shard.state.store.load_meta();
    assert!(saved.topics.iter().any(|t| t.topic_name == "Durable"));

    let mut other = TestShard::new();
    for change in shard.state.take_admin_changes() {
        other.state.apply_admin_change(change, other.now_ms);
    }
    let saved = other.state.store.load_meta();
    assert!(saved.topics.iter().any(|t| t.topic_name == "Durable"));
}

#[test]
fn invalid_topic_requests_are_refused_with_reasons() {
    let mut shard = TestShard::new();
    let response = shard.call(create("bad topic", 4, 6));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    let response = shard.call(create("DefaultCluster", 4, 6));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    let response = shard.call(create("T", 0, 6));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    for field in [
        "topic",
        "readQueueNums",
        "writeQueueNums",
        "perm",
        "topicFilterType",
        "order",
    ] {
        assert_names_field(&shard.call(without(create("T", 4, 6), field)), field);
    }
}

#[test]
fn deleted_topic_is_gone_with_its_offsets() {
    let mut shard = TestShard::new();
    shard.call(create("Gone", 2, 6));
    shard.state.offsets.commit("G", "Gone", 0, 5);
    let delete = request_with(
        RequestCode::DeleteTopicInBroker,
        &DeleteTopicRequestHeader {
            topic: "Gone".into(),
            rpc: Default::default(),
        },
    );
    assert_eq!(shard.call(delete).code, 0);
    assert_eq!(
        shard.call(get_one_request("Gone")).code,
        ResponseCode::TopicNotExist.as_i32()
    );
    assert_eq!(shard.state.offsets.query("G", "Gone", 0), None);
}

#[test]
fn all_topic_config_lists_every_topic_with_the_data_version() {
    let mut shard = TestShard::new();
    shard.call(create("A", 2, 6));
    let response = shard.call(RemotingCommand::request(RequestCode::GetAllTopicConfig));
    let wrapper: TopicConfigSerializeWrapper =
        ringmq_wire::json::parse("topics", &response.body).expect("wrapper");
    assert!(wrapper.topic_config_table.contains_key("A"));
    assert!(wrapper.topic_config_table.contains_key("TBW102"));
    assert_eq!(wrapper.data_version, shard.state.topics.data_version());
}
