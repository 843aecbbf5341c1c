use ringmq_wire::RequestCode;

use super::*;
use crate::server::handler::testing::*;

fn shard_in(dir: &Path) -> TestShard {
    let mut config = BrokerConfig::standalone();
    config.store.path = dir.to_owned();
    TestShard::with_config(config)
}

fn update(pairs: &[(&str, &str)]) -> RemotingCommand {
    RemotingCommand::request(RequestCode::UpdateBrokerConfig)
        .with_body(encode_properties(pairs.iter().copied()).into_bytes())
}

fn broker_config(shard: &mut TestShard) -> std::collections::BTreeMap<String, String> {
    let response = shard.call(RemotingCommand::request(RequestCode::GetBrokerConfig));
    assert_eq!(response.code, 0);
    parse_properties(&response.body).expect("properties")
}

#[test]
fn broker_permission_applies_live_registers_masked_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut shard = shard_in(dir.path());
    shard.call(send_request("T", 0, b"before", &[]));
    let version = shard.state.topics.data_version();
    let response = shard.call(update(&[("brokerPermission", "4")]));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(broker_config(&mut shard)["brokerPermission"], "4");
    assert_ne!(shard.state.topics.data_version(), version);
    assert!(shard.state.take_register_request());
    assert_eq!(
        shard.state.take_admin_changes(),
        vec![AdminChange::BrokerConfigUpdated(vec![(
            "brokerPermission".into(),
            "4".into()
        )])]
    );
    // Sends refused, and the registration shows read-only topics.
    let refused = shard.call(send_request("T", 0, b"after", &[]));
    assert_eq!(refused.code, ResponseCode::NoPermission.as_i32());
    let register = crate::server::register::register_request(&shard.state);
    let body = ringmq_wire::body::register::RegisterBrokerBody::decode(&register.body, false)
        .expect("register body");
    let topics = &body.topic_config_serialize_wrapper.topic_config_table;
    assert_eq!(topics["T"].perm, 4);
    assert!(topics.values().all(|t| t.perm & 2 == 0));
    // Persisted next to the data, and applied at the next start.
    let mut restarted = BrokerConfig::standalone();
    restarted.store.path = dir.path().to_owned();
    let applied = apply_overlay(&mut restarted).expect("overlay");
    assert_eq!(applied, vec![("brokerPermission".into(), "4".into())]);
    assert_eq!(restarted.broker.permission, 4);
    // Back to read-write: the overlay keeps the latest value only.
    assert_eq!(shard.call(update(&[("brokerPermission", "6")])).code, 0);
    assert_eq!(shard.call(send_request("T", 0, b"again", &[])).code, 0);
    let mut restarted = BrokerConfig::standalone();
    restarted.store.path = dir.path().to_owned();
    apply_overlay(&mut restarted).expect("overlay");
    assert_eq!(restarted.broker.permission, 6);
}

#[test]
fn read_only_unknown_and_invalid_keys_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut shard = shard_in(dir.path());
    let response = shard.call(update(&[("flushDiskType", "SYNC_FLUSH")]));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
    let remark = response.remark.unwrap_or_default();
    assert!(
        remark.contains("`flushDiskType`") && remark.contains("store.flush_mode"),
        "{remark}"
    );

    let response = shard.call(update(&[("noSuchKey", "1")]));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    let remark = response.remark.unwrap_or_default();
    assert!(
        remark.contains("`noSuchKey`") && remark.contains("brokerPermission"),
        "{remark}"
    );

    let response = shard.call(update(&[("brokerPermission", "3")]));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response
            .remark
            .unwrap_or_default()
            .contains("`brokerPermission`")
    );
    let response = shard.call(update(&[("longPollingEnable", "maybe")]));
    assert!(
        response
            .remark
            .unwrap_or_default()
            .contains("true or false")
    );

    // All or nothing: a good key next to a bad one is not applied.
    let response = shard.call(update(&[("longPollingEnable", "false"), ("brokerId", "1")]));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
    assert!(shard.state.config.polling.long_polling);
    assert!(shard.state.take_admin_changes().is_empty());
    assert!(!overlay_path(&shard.state.config).exists());

    let empty = shard.call(RemotingCommand::request(RequestCode::UpdateBrokerConfig));
    assert_eq!(empty.code, ResponseCode::SystemError.as_i32());
}

#[test]
fn changes_from_another_shard_apply_without_persisting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut shard = shard_in(dir.path());
    shard.state.apply_admin_change(
        AdminChange::BrokerConfigUpdated(vec![
            ("shortPollingTimeMills".into(), "2500".into()),
            ("transactionCheckMax".into(), "3".into()),
        ]),
        shard.now_ms,
    );
    assert_eq!(shard.state.config.polling.short_polling_time_ms, 2500);
    assert_eq!(shard.state.config.transaction.check_max, 3);
    assert_eq!(broker_config(&mut shard)["shortPollingTimeMills"], "2500");
    assert!(!overlay_path(&shard.state.config).exists());
}

#[test]
fn a_bad_overlay_names_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::standalone();
    config.store.path = dir.path().to_owned();
    std::fs::write(overlay_path(&config), "brokerName=other\n").expect("write");
    let error = apply_overlay(&mut config).expect_err("read-only key in the overlay");
    let text = error.to_string();
    assert!(
        text.contains(OVERLAY_FILE) && text.contains("`brokerName`"),
        "{text}"
    );
}

#[test]
fn shards_writing_the_overlay_at_once_lose_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(OVERLAY_FILE);
    let keys = [
        ("longPollingEnable", "false"),
        ("shortPollingTimeMills", "2000"),
        ("transactionCheckMax", "7"),
        ("brokerPermission", "4"),
    ];
    std::thread::scope(|scope| {
        for (key, value) in keys {
            let path = path.clone();
            scope.spawn(move || {
                for _ in 0..20 {
                    write_overlay(&path, &[(key.to_owned(), value.to_owned())]).expect("write");
                }
            });
        }
    });
    let written: std::collections::BTreeMap<String, String> =
        read_overlay(&path).expect("read").into_iter().collect();
    for (key, value) in keys {
        assert_eq!(written.get(key).map(String::as_str), Some(value), "{key}");
    }
    let mut config = BrokerConfig::standalone();
    config.store.path = dir.path().to_owned();
    apply_overlay(&mut config).expect("the merged overlay applies");
    assert_eq!(config.broker.permission, 4);
    assert_eq!(config.transaction.check_max, 7);
}
