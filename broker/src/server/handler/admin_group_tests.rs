use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

fn get(group: &str) -> RemotingCommand {
    request_with(
        RequestCode::GetSubscriptiongroupConfig,
        &GetSubscriptionGroupConfigRequestHeader {
            group: group.into(),
            rpc: Default::default(),
        },
    )
}

#[test]
fn group_create_get_list_delete() {
    let mut shard = TestShard::new();
    let mut config = SubscriptionGroupConfig::new("G");
    config.retry_max_times = 3;
    let create = RemotingCommand::request(RequestCode::UpdateAndCreateSubscriptiongroup)
        .with_body(config.encode());
    assert_eq!(shard.call(create).code, 0);
    let response = shard.call(get("G"));
    let got = SubscriptionGroupConfig::decode(&response.body).expect("group");
    assert_eq!(got.retry_max_times, 3);
    let all = shard.call(RemotingCommand::request(
        RequestCode::GetAllSubscriptiongroupConfig,
    ));
    let wrapper = SubscriptionGroupWrapper::decode(&all.body).expect("wrapper");
    assert!(wrapper.subscription_group_table.contains_key("G"));
    shard.state.offsets.commit("G", "T", 0, 4);
    let delete = request_with(
        RequestCode::DeleteSubscriptiongroup,
        &DeleteSubscriptionGroupRequestHeader {
            group_name: "G".into(),
            clean_offset: Some(true),
            rpc: Default::default(),
        },
    );
    assert_eq!(shard.call(delete).code, 0);
    assert_eq!(
        shard.call(get("G")).code,
        ResponseCode::SubscriptionGroupNotExist.as_i32()
    );
    assert_eq!(shard.state.offsets.query("G", "T", 0), None);
    let changes = shard.state.take_admin_changes();
    assert_eq!(changes.len(), 2);
}

#[test]
fn bad_group_body_and_missing_fields_are_reported() {
    let mut shard = TestShard::new();
    let create = RemotingCommand::request(RequestCode::UpdateAndCreateSubscriptiongroup)
        .with_body(&b"[1,2]"[..]);
    assert_eq!(shard.call(create).code, ResponseCode::SystemError.as_i32());
    assert_names_field(&shard.call(without(get("G"), "group")), "group");
}
