use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageResponseHeader;
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::config::{BrokerConfig, FlushMode};
use crate::server::handler::testing::*;

fn ok_header(response: &RemotingCommand) -> SendMessageResponseHeader {
    assert_eq!(response.code, 0, "send failed: {:?}", response.remark);
    SendMessageResponseHeader::decode(response).expect("send response header")
}

#[test]
fn send_stores_the_message_and_answers_its_offsets() {
    let mut shard = TestShard::new();
    let first = ok_header(&shard.call(send_request("Orders", 1, b"hello", &[("TAGS", "A")])));
    let second = ok_header(&shard.call(send_request("Orders", 1, b"world", &[])));
    assert_eq!((first.queue_id, first.queue_offset), (1, 0));
    assert_eq!(second.queue_offset, 1);
    let (host, physical) = parse_offset_msg_id(&first.msg_id).expect("offset msg id");
    assert_eq!(host, shard.state.identity.store_host);
    let raw = shard.state.store.read_at(physical).expect("stored");
    let message = &records(&raw)[0];
    assert_eq!(&message.body()[..], b"hello");
    assert_eq!(message.tags(), Some("A"));
    assert_eq!(message.property("CLUSTER"), Some("DefaultCluster"));
    assert_eq!(message.layout.born_host, CONN.remote);
}

#[test]
fn send_response_carries_region_and_trace_switch() {
    let mut shard = TestShard::new();
    let response = shard.call(send_request("T", 0, b"x", &[]));
    assert_eq!(response.ext("MSG_REGION"), Some("DefaultRegion"));
    assert_eq!(response.ext("TRACE_ON"), Some("true"));
}

#[test]
fn send_missing_required_field_names_it() {
    let mut shard = TestShard::new();
    for field in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let response = shard.call(without(send_request("T", 0, b"x", &[]), field));
        assert_names_field(&response, field);
    }
}

#[test]
fn send_v1_header_is_accepted() {
    let mut shard = TestShard::new();
    let v2 = send_request("T", 0, b"x", &[]);
    let header = ringmq_wire::header::send::SendMessageRequestHeaderV2::decode(&v2)
        .expect("v2")
        .into_v1();
    let request = request_with(RequestCode::SendMessage, &header).with_body(&b"x"[..]);
    ok_header(&shard.call(request));
}

#[test]
fn unknown_topic_without_auto_create_is_topic_not_exist() {
    let mut config = BrokerConfig::standalone();
    config.topics.auto_create_topic = false;
    let mut shard = TestShard::with_config(config);
    let response = shard.call(send_request("Nope", 0, b"x", &[]));
    assert_eq!(response.code, ResponseCode::TopicNotExist.as_i32());
    assert!(response.remark.unwrap_or_default().contains("Nope"));
}

#[test]
fn auto_created_topic_asks_for_registration() {
    let mut shard = TestShard::new();
    ok_header(&shard.call(send_request("Fresh", 0, b"x", &[])));
    assert!(shard.state.topics.get("Fresh").is_some());
    assert!(shard.state.take_register_request());
}

/// A waker that counts its wakes.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn auto_created_topic_wakes_the_waiting_registration_loop() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll, Waker};

    let mut shard = TestShard::new();
    let counter = Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert_eq!(shard.state.poll_register_request(&mut cx), Poll::Pending);
    ok_header(&shard.call(send_request("Existing", 0, b"x", &[])));
    shard.state.take_register_request();
    assert_eq!(shard.state.poll_register_request(&mut cx), Poll::Pending);
    let before = counter.0.load(Ordering::SeqCst);
    ok_header(&shard.call(send_request("Existing", 0, b"y", &[])));
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        before,
        "no topic change, no wake"
    );
    ok_header(&shard.call(send_request("Fresh", 0, b"x", &[])));
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        before + 1,
        "the loop is woken"
    );
    assert_eq!(shard.state.poll_register_request(&mut cx), Poll::Ready(()));
    assert!(shard.state.take_register_request());
    assert_eq!(shard.state.poll_register_request(&mut cx), Poll::Pending);
}

#[test]
fn read_only_topic_and_broker_refuse_sends() {
    let mut shard = TestShard::new();
    shard
        .state
        .topics
        .create_or_update(
            crate::server::topic::with_perm(TopicConfig::new("RO", 2), perm::READ),
            1,
        )
        .expect("created");
    let response = shard.call(send_request("RO", 0, b"x", &[]));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());

    let mut config = BrokerConfig::standalone();
    config.broker.permission = 4;
    let mut read_only = TestShard::with_config(config);
    let response = read_only.call(send_request("T", 0, b"x", &[]));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
}

#[test]
fn system_topics_cannot_be_sent_to() {
    let mut shard = TestShard::new();
    let response = shard.call(send_request("SCHEDULE_TOPIC_XXXX", 0, b"x", &[]));
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
}

#[test]
fn illegal_queue_id_is_refused() {
    let mut shard = TestShard::new();
    ok_header(&shard.call(send_request("Q", 0, b"x", &[])));
    let response = shard.call(send_request("Q", 4, b"x", &[]));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(response.remark.unwrap_or_default().contains("queueId[4]"));
}

#[test]
fn negative_queue_id_picks_a_write_queue() {
    let mut shard = TestShard::new();
    let header = ok_header(&shard.call(send_request("Q", -1, b"x", &[])));
    assert!((0..4).contains(&header.queue_id));
}

#[test]
fn oversized_body_is_message_illegal() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_message_bytes = 1024;
    let mut shard = TestShard::with_config(config);
    let response = shard.call(send_request("T", 0, &[0u8; 1025], &[]));
    assert_eq!(response.code, ResponseCode::MessageIllegal.as_i32());
    assert_eq!(shard.state.stats.put_failures, 1);
}

#[test]
fn retry_message_past_max_reconsume_goes_to_dlq() {
    let mut shard = TestShard::new();
    let mut request = send_request("%RETRY%G", 0, b"x", &[]);
    request.ext_fields.insert("j".into(), "16".into());
    let header = ok_header(&shard.call(request));
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("id");
    let raw = shard.state.store.read_at(physical).expect("stored");
    assert_eq!(records(&raw)[0].topic(), "%DLQ%G");
    assert!(shard.state.topics.get("%DLQ%G").is_some());
}

#[test]
fn delayed_message_is_parked_in_the_schedule_topic() {
    let mut shard = TestShard::new();
    let header = ok_header(&shard.call(send_request("T", 2, b"x", &[("DELAY", "3")])));
    assert_eq!(header.queue_id, 2);
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("id");
    let raw = shard.state.store.read_at(physical).expect("stored");
    let message = &records(&raw)[0];
    assert_eq!(message.topic(), "SCHEDULE_TOPIC_XXXX");
    assert_eq!(message.layout.queue_id, 2);
    assert_eq!(message.property("REAL_TOPIC"), Some("T"));
    assert_eq!(message.property("REAL_QID"), Some("2"));
    let entry = shard.state.store.entries("SCHEDULE_TOPIC_XXXX", 2, 0, 1)[0];
    assert_eq!(entry.tags_code, (shard.now_ms + 10_000) as i64);
}

#[test]
fn prepared_transaction_message_is_stored_as_a_half_message() {
    let mut shard = TestShard::new();
    let mut request = send_request("T", 1, b"x", &[("UNIQ_KEY", "U1"), ("PGROUP", "PG")]);
    request.ext_fields.insert("f".into(), "4".into());
    let response = shard.call(request);
    assert_eq!(response.code, ResponseCode::Success.as_i32());
    let header = SendMessageResponseHeader::decode(&response).expect("header");
    assert_eq!(header.queue_id, 1, "the queue the producer chose");
    assert_eq!(header.transaction_id.as_deref(), Some("U1"));
    assert_eq!(
        shard.state.store.max_offset("T", 1),
        0,
        "invisible in the real topic"
    );
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("offset msg id");
    let raw = shard.state.store.read_at(physical).expect("stored");
    let half = &records(&raw)[0];
    assert_eq!(half.topic(), "RMQ_SYS_TRANS_HALF_TOPIC");
    assert_eq!(half.layout.queue_id, 0);
    assert_eq!(half.layout.sys_flag & 0xC, 0, "transaction bits cleared");
    assert_eq!(half.property("REAL_TOPIC"), Some("T"));
    assert_eq!(half.property("REAL_QID"), Some("1"));
}

#[test]
fn sync_send_is_acknowledged_only_once_durable() {
    let mut config = BrokerConfig::standalone();
    config.store.flush_mode = FlushMode::Sync;
    let mut shard = TestShard::with_config(config);
    shard.state.store.set_auto_durable(false);
    assert!(shard.call_raw(send_request("T", 0, b"a", &[])).is_none());
    assert!(shard.call_raw(send_request("T", 0, b"b", &[])).is_none());
    shard.advance(1);
    assert!(shard.outbox().is_empty());
    let end = shard.state.store.commit_log_max_offset() as u64;
    shard.state.store.set_durable_offset(end);
    shard.advance(1);
    let out = shard.outbox();
    assert_eq!(out.len(), 2);
    let offsets: Vec<i64> = out
        .iter()
        .map(|o| ok_header(&o.command).queue_offset)
        .collect();
    assert_eq!(offsets, vec![0, 1], "acknowledged in append order");
}

#[test]
fn send_not_durable_in_time_answers_flush_disk_timeout() {
    let mut config = BrokerConfig::standalone();
    config.store.flush_mode = FlushMode::Sync;
    let mut shard = TestShard::with_config(config);
    shard.state.store.set_auto_durable(false);
    assert!(shard.call_raw(send_request("T", 0, b"a", &[])).is_none());
    shard.advance(5_000);
    let out = shard.outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command.code, ResponseCode::FlushDiskTimeout.as_i32());
}

#[test]
fn closed_connection_drops_its_pending_acks() {
    let mut config = BrokerConfig::standalone();
    config.store.flush_mode = FlushMode::Sync;
    let mut shard = TestShard::with_config(config);
    shard.state.store.set_auto_durable(false);
    assert!(shard.call_raw(send_request("T", 0, b"a", &[])).is_none());
    shard.state.connection_closed(CONN.id);
    shard.state.store.set_auto_durable(true);
    shard.advance(1);
    assert!(shard.outbox().is_empty());
}

#[test]
fn batch_send_stores_every_message_consecutively() {
    let mut shard = TestShard::new();
    let batch = vec![
        ringmq_wire::record::BatchMessage {
            flag: 0,
            body: bytes::Bytes::from_static(b"one"),
            properties: bytes::Bytes::from_static(b"UNIQ_KEY\x01u1\x02"),
        },
        ringmq_wire::record::BatchMessage {
            flag: 0,
            body: bytes::Bytes::from_static(b"two"),
            properties: bytes::Bytes::from_static(b"UNIQ_KEY\x01u2\x02"),
        },
    ];
    let mut body = bytes::BytesMut::new();
    ringmq_wire::record::encode_batch(&batch, &mut body).expect("encode batch");
    let mut request = send_request("B", 1, b"", &[]);
    request.code = RequestCode::SendBatchMessage.as_i32();
    let v2 = ringmq_wire::header::send::SendMessageRequestHeaderV2::decode(&request).expect("v2");
    let mut request = request_with(RequestCode::SendBatchMessage, &v2.into_v1());
    request.body = body.freeze();
    let header = ok_header(&shard.call(request));
    assert_eq!(header.queue_offset, 0);
    assert_eq!(header.msg_id.split(',').count(), 2);
    assert_eq!(shard.state.store.max_offset("B", 1), 2);
}

#[test]
fn send_message_with_the_batch_flag_is_a_batch() {
    // rocketmq-client-cpp 2.x sends a batch as SEND_MESSAGE (10) with `batch=true`.
    let mut shard = TestShard::new();
    let batch: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|text| ringmq_wire::record::BatchMessage {
            flag: 0,
            body: bytes::Bytes::copy_from_slice(text.as_bytes()),
            properties: bytes::Bytes::from_static(b"TAGS\x01T\x02"),
        })
        .collect();
    let mut body = bytes::BytesMut::new();
    ringmq_wire::record::encode_batch(&batch, &mut body).expect("encode batch");
    let v2 = ringmq_wire::header::send::SendMessageRequestHeaderV2::decode(&send_request(
        "CppBatch",
        0,
        b"",
        &[],
    ))
    .expect("v2");
    let mut v1 = v2.into_v1();
    v1.batch = Some(true);
    let mut request = request_with(RequestCode::SendMessage, &v1);
    request.body = body.freeze();
    let header = ok_header(&shard.call(request));
    assert_eq!(header.msg_id.split(',').count(), 3);
    assert_eq!(shard.state.store.max_offset("CppBatch", 0), 3);
    let raw = shard
        .state
        .store
        .read_at(
            parse_offset_msg_id(header.msg_id.split(',').nth(1).unwrap())
                .unwrap()
                .1,
        )
        .expect("stored");
    let second = &records(&raw)[0];
    assert_eq!(&second.body()[..], b"two");
    assert_eq!(second.tags(), Some("T"));
}

/// The general path the fast one must match byte for byte.
fn with_cluster_general(text: &str, cluster: &str) -> String {
    let mut properties = Properties::parse(text.as_bytes()).expect("parse");
    properties.insert(property::CLUSTER, cluster.to_owned());
    properties.encode().expect("encode")
}

#[test]
fn fast_properties_match_the_general_path_for_canonical_strings() {
    for text in [
        "",
        "UNIQ_KEY\u{1}u1\u{2}",
        "UNIQ_KEY\u{1}u1\u{2}WAIT\u{1}true\u{2}TAGS\u{1}A\u{2}KEYS\u{1}k1 k2\u{2}",
        "\u{1}empty-name\u{2}",
        "EMPTY\u{1}\u{2}",
    ] {
        assert_eq!(
            with_cluster_fast(text, "DefaultCluster").as_deref(),
            Some(with_cluster_general(text, "DefaultCluster").as_str()),
            "{text:?}"
        );
    }
}

#[test]
fn fast_properties_leave_the_unusual_cases_to_the_general_path() {
    for text in [
        "UNIQ_KEY\u{1}u1",               // no final separator
        "\u{2}UNIQ_KEY\u{1}u1\u{2}",     // empty pair first
        "A\u{1}1\u{2}\u{2}B\u{1}2\u{2}", // empty pair between
        "NOSEP\u{2}",                    // pair without a name/value separator
        "A\u{1}1\u{1}2\u{2}",            // second separator in the value
        "CLUSTER\u{1}other\u{2}",        // replaced in place
        "DELAY\u{1}3\u{2}",              // rewrites the properties
    ] {
        assert_eq!(with_cluster_fast(text, "DefaultCluster"), None, "{text:?}");
    }
    assert_eq!(with_cluster_fast("A\u{1}1\u{2}", "bad\u{2}name"), None);
}

#[test]
fn send_with_keys_and_an_existing_cluster_property_stores_them_as_before() {
    let mut shard = TestShard::new();
    let header = ok_header(&shard.call(send_request(
        "Orders",
        0,
        b"x",
        &[("KEYS", "k1 k2"), ("CLUSTER", "theirs"), ("UNIQ_KEY", "u9")],
    )));
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("offset msg id");
    let raw = shard.state.store.read_at(physical).expect("stored");
    let message = &records(&raw)[0];
    assert_eq!(message.property("CLUSTER"), Some("DefaultCluster"));
    assert_eq!(message.keys().collect::<Vec<_>>(), ["k1", "k2"]);
    assert_eq!(message.uniq_key(), Some("u9"));
}
