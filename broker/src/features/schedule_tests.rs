//! Tests of the delay-level service over the in-memory store.

use std::sync::Arc;

use ringmq_wire::record::{StoredMessage, tag_hash_code};

use super::*;
use crate::config::BrokerConfig;
use crate::server::handler::testing::{TestShard, pull_request, send_request};
use crate::server::state::ShardState;

/// Every message of a queue, from offset 0.
fn queue(shard: &TestShard, topic: &str, queue_id: i32) -> Vec<StoredMessage> {
    let result = shard
        .state
        .store
        .get(&QueueRead {
            topic,
            queue_id,
            offset: 0,
            max_count: 1_000,
            max_bytes: 64 << 20,
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

fn send_delayed(shard: &mut TestShard, topic: &str, body: &[u8], level: &str) {
    let response = shard.call(send_request(
        topic,
        1,
        body,
        &[("DELAY", level), ("TAGS", "tagA"), ("KEYS", "key1")],
    ));
    assert_eq!(response.code, 0, "{:?}", response.remark);
}

fn saved_offset(shard: &TestShard, level: i32) -> Option<i64> {
    shard
        .state
        .offsets
        .query(DELAY_OFFSET_GROUP, system::SCHEDULE_TOPIC, level - 1)
}

#[test]
fn the_default_levels_are_rocketmqs_eighteen() {
    let levels = parse_delay_levels(DEFAULT_DELAY_LEVELS).expect("parses");
    assert_eq!(levels.len(), 18);
    assert_eq!(levels[0], 1_000);
    assert_eq!(levels[4], 60_000);
    assert_eq!(levels[17], 7_200_000);
    assert_eq!(
        parse_delay_levels("2d 1h").expect("parses"),
        vec![172_800_000, 3_600_000]
    );
}

#[test]
fn bad_level_strings_are_refused_naming_the_level() {
    assert_eq!(parse_delay_levels("  "), Err(DelayLevelError::Empty));
    for (text, level) in [
        ("1s 5x", 2),
        ("0s", 1),
        ("s", 1),
        ("1s -1m", 2),
        ("400d", 1),
    ] {
        match parse_delay_levels(text) {
            Err(DelayLevelError::BadLevel { level: got, .. }) => assert_eq!(got, level, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let many = vec!["1s"; DELAY_LEVELS_MAX + 1].join(" ");
    assert!(matches!(
        parse_delay_levels(&many),
        Err(DelayLevelError::TooMany { count }) if count == DELAY_LEVELS_MAX + 1
    ));
    let error = BrokerConfig::from_toml_str(
        "[broker]\nlisten_addr = \"127.0.0.1\"\n[schedule]\nmessage_delay_level = \"1q\"\n",
    )
    .expect_err("refused");
    assert!(
        error.to_string().contains("schedule.message_delay_level"),
        "{error}"
    );
}

#[test]
fn the_delay_levels_come_from_the_config() {
    let config = BrokerConfig::from_toml_str(
        "[broker]\nlisten_addr = \"127.0.0.1\"\n[schedule]\nmessage_delay_level = \"2s 3s\"\n",
    )
    .expect("valid");
    let shard = TestShard::with_config(config);
    assert_eq!(shard.state.schedule.max_level(), 2);
    assert_eq!(shard.state.schedule.delay_ms(1), 2_000);
    // Levels above the highest use the highest.
    let slot = shard.state.schedule.slot(7, 1_000);
    assert_eq!((slot.level, slot.queue_id, slot.deliver_ms), (2, 1, 4_000));
}

#[test]
fn a_delayed_message_is_invisible_until_due_then_delivered_to_its_real_queue() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"later", "1");
    assert_eq!(shard.state.store.max_offset("T", 1), 0);
    assert_eq!(queue(&shard, system::SCHEDULE_TOPIC, 0).len(), 1);
    shard.advance(500);
    assert_eq!(
        shard.state.store.max_offset("T", 1),
        0,
        "not due after 0.5 s"
    );
    assert!(
        shard
            .state
            .next_deadline_ms()
            .is_some_and(|t| t <= shard.now_ms + 500)
    );
    shard.advance(500);
    let delivered = queue(&shard, "T", 1);
    assert_eq!(delivered.len(), 1, "due after 1 s");
    let message = &delivered[0];
    assert_eq!(&message.body()[..], b"later");
    assert_eq!(message.property("DELAY"), None);
    assert_eq!(message.property("REAL_TOPIC"), Some("T"));
    assert_eq!(message.property("REAL_QID"), Some("1"));
    assert_eq!(message.layout.born_timestamp, 1_700_000_000_000);
    let entry = shard.state.store.entries("T", 1, 0, 1)[0];
    assert_eq!(entry.tags_code, tag_hash_code(Some("tagA")));
    let by_key = shard
        .state
        .store
        .query_by_key("T", "key1", 10, 0, i64::MAX)
        .expect("query");
    assert_eq!(by_key.len(), 1, "indexed under the real topic");
    assert_eq!(saved_offset(&shard, 1), Some(1));
    assert_eq!(shard.state.schedule.delivered(), 1);
    shard.advance(5_000);
    assert_eq!(queue(&shard, "T", 1).len(), 1, "delivered once");
}

#[test]
fn levels_above_the_highest_are_clamped_to_it() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"x", "99");
    let parked = queue(&shard, system::SCHEDULE_TOPIC, 17);
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].property("DELAY"), Some("18"));
}

#[test]
fn each_level_delivers_in_order_and_stops_at_the_first_message_not_due() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"a", "2");
    shard.advance(2_000);
    send_delayed(&mut shard, "T", b"b", "2");
    send_delayed(&mut shard, "T", b"fast", "1");
    shard.advance(1_000);
    let bodies: Vec<Vec<u8>> = queue(&shard, "T", 1)
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, vec![b"fast".to_vec()]);
    shard.advance(2_000);
    let bodies: Vec<Vec<u8>> = queue(&shard, "T", 1)
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, vec![b"fast".to_vec(), b"a".to_vec()]);
    shard.advance(3_000);
    let bodies: Vec<Vec<u8>> = queue(&shard, "T", 1)
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, vec![b"fast".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(shard.state.schedule.offsets()[..2], [1, 2]);
}

#[test]
fn a_parked_pull_on_the_real_queue_is_answered_by_the_delivery() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"x", "1");
    let parked = shard.call_raw(pull_request("G", "T", 1, 0, "*", true));
    assert!(parked.is_none(), "nothing to pull yet: parked");
    shard.advance(1_000);
    let answered = shard.outbox();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].command.code, 0, "FOUND");
}

#[test]
fn the_saved_offset_waits_until_the_delivered_copy_is_durable() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"x", "1");
    shard.state.store.set_auto_durable(false);
    shard.advance(1_000);
    assert_eq!(shard.state.schedule.offsets()[0], 1, "delivered");
    assert_eq!(
        saved_offset(&shard, 1),
        None,
        "copy not durable: offset not saved"
    );
    shard.state.store.set_durable_offset(u64::MAX);
    shard.advance(1);
    assert_eq!(saved_offset(&shard, 1), Some(1));
}

fn restart(shard: &mut TestShard) {
    shard.state.persist_meta().expect("persist");
    let store = std::mem::take(&mut shard.state.store);
    let identity = shard.state.identity.clone();
    let config = Arc::clone(&shard.state.config);
    shard.state = ShardState::new(identity, config, store, shard.now_ms);
}

#[test]
fn a_restart_neither_loses_pending_delayed_messages_nor_delivers_twice() {
    let mut shard = TestShard::new();
    send_delayed(&mut shard, "T", b"first", "1");
    send_delayed(&mut shard, "T", b"pending", "3");
    shard.advance(1_000);
    assert_eq!(queue(&shard, "T", 1).len(), 1);
    restart(&mut shard);
    assert_eq!(shard.state.schedule.offsets()[0], 1, "progress restored");
    shard.advance(1_000);
    assert_eq!(queue(&shard, "T", 1).len(), 1, "not delivered twice");
    shard.advance(8_000);
    let bodies: Vec<Vec<u8>> = queue(&shard, "T", 1)
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, vec![b"first".to_vec(), b"pending".to_vec()]);
}

#[test]
fn a_record_without_real_topic_is_skipped_not_blocking_the_level() {
    let mut shard = TestShard::new();
    // Written straight into the schedule queue, as a foreign tool might have.
    let broken = Requeue {
        topic: system::SCHEDULE_TOPIC.into(),
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: shard.state.identity.store_host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: bytes::Bytes::from_static(b"orphan"),
        properties: ringmq_wire::record::Properties::new(),
        tags_code: Some(0),
        source: None,
    };
    requeue::append(&mut shard.state, &broken, shard.now_ms).expect("append");
    send_delayed(&mut shard, "T", b"good", "1");
    shard.advance(1_000);
    let bodies: Vec<Vec<u8>> = queue(&shard, "T", 1)
        .iter()
        .map(|m| m.body().to_vec())
        .collect();
    assert_eq!(bodies, vec![b"good".to_vec()]);
    assert_eq!(saved_offset(&shard, 1), Some(2));
}

#[test]
fn deliveries_per_tick_are_bounded() {
    let mut shard = TestShard::new();
    for i in 0..(DELIVER_BATCH_MAX + 10) {
        send_delayed(&mut shard, "T", format!("m{i}").as_bytes(), "1");
    }
    shard.now_ms += 1_000;
    shard.state.store.set_now_ms(shard.now_ms as i64);
    deliver_due(&mut shard.state, shard.now_ms);
    assert_eq!(
        shard.state.store.max_offset("T", 1),
        DELIVER_BATCH_MAX as i64
    );
    deliver_due(&mut shard.state, shard.now_ms);
    assert_eq!(
        shard.state.store.max_offset("T", 1),
        (DELIVER_BATCH_MAX + 10) as i64
    );
}
