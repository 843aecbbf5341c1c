//! Producer tests against a fake NameServer and fake brokers.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ringmq_wire::header::send::SendMessageResponseHeader;
use tokio::sync::mpsc;

use super::*;
use crate::instance::ClientConfig;
use crate::testutil::{fake_broker, fake_namesrv, route_of};

/// An answer that stores everything: `msgId`, queue id and a growing offset.
fn storing_broker() -> impl Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static {
    let offset = Arc::new(AtomicI64::new(0));
    move |request: &RemotingCommand| {
        let mut response = RemotingCommand::response_to(request, ResponseCode::Success);
        SendMessageResponseHeader {
            msg_id: "0A0000010000000000000000000000FF".into(),
            queue_id: request.ext("e").unwrap_or("0").parse().unwrap_or(0),
            queue_offset: offset.fetch_add(1, Ordering::Relaxed),
            ..SendMessageResponseHeader::default()
        }
        .encode_into(&mut response);
        response
    }
}

fn failing_broker() -> impl Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static {
    |request: &RemotingCommand| {
        RemotingCommand::error_response(request, ResponseCode::SystemBusy, "busy, try later")
    }
}

async fn producer_for(
    routes: HashMap<String, ringmq_wire::body::route::TopicRouteData>,
) -> Producer {
    let namesrv = fake_namesrv(routes).await;
    let instance = ClientInstance::new(ClientConfig::new(namesrv)).expect("instance");
    Producer::new(instance, ProducerConfig::new("PG")).expect("producer")
}

fn drain(rx: &mut mpsc::Receiver<RemotingCommand>) -> Vec<RemotingCommand> {
    let mut out = Vec::new();
    while let Ok(request) = rx.try_recv() {
        out.push(request);
    }
    out
}

#[tokio::test]
async fn send_writes_a_v2_request_and_returns_the_result() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 4)]),
    )]))
    .await;
    let result = producer
        .send(
            Message::new("T", "hello")
                .with_tags("TagA")
                .with_keys(["k1"])
                .with_property("color", "red"),
        )
        .await
        .expect("sent");
    assert_eq!(result.status, SendStatus::Ok);
    assert_eq!(result.msg_id.len(), 32);
    assert_eq!(result.offset_msg_id, "0A0000010000000000000000000000FF");
    assert_eq!(result.queue.broker_name, "broker-a");
    let request = drain(&mut seen).pop().expect("request seen");
    assert_eq!(request.code, RequestCode::SendMessageV2.as_i32());
    assert_eq!(request.ext("a"), Some("PG"));
    assert_eq!(request.ext("b"), Some("T"));
    assert_eq!(request.ext("c"), Some(DEFAULT_TOPIC));
    assert_eq!(request.ext("f"), Some("0"));
    assert_eq!(request.ext("n"), Some("broker-a"));
    assert_eq!(&request.body[..], b"hello");
    let properties = crate::message::decode_properties(request.ext("i").expect("properties"));
    assert_eq!(properties["TAGS"], "TagA");
    assert_eq!(properties["KEYS"], "k1");
    assert_eq!(properties["color"], "red");
    assert_eq!(properties["UNIQ_KEY"], result.msg_id);
    assert_eq!(properties["WAIT"], "true");
    assert_eq!(
        request.ext("e"),
        Some(result.queue.queue_id.to_string().as_str())
    );
}

#[tokio::test]
async fn large_bodies_are_compressed_and_flagged() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 1)]),
    )]))
    .await;
    let body = "compressible ".repeat(1000);
    producer
        .send(Message::new("T", body.clone()))
        .await
        .expect("sent");
    let request = drain(&mut seen).pop().expect("request");
    let sys_flag: i32 = request.ext("f").expect("f").parse().expect("number");
    assert_eq!(sys_flag & sys_flag::COMPRESSED, sys_flag::COMPRESSED);
    assert!(request.body.len() < body.len());
    let mut inflated = String::new();
    flate2::read::ZlibDecoder::new(&request.body[..])
        .read_to_string(&mut inflated)
        .expect("zlib");
    assert_eq!(inflated, body);
}

#[tokio::test]
async fn too_large_messages_are_refused_before_sending() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 1)]),
    )]))
    .await;
    // Random-looking bytes do not compress below the limit.
    let body: Vec<u8> = (0..MESSAGE_BODY_BYTES_MAX + 1)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect();
    let error = producer
        .send(Message::new("T", body))
        .await
        .expect_err("too large");
    assert!(
        matches!(error, ClientError::MessageTooLarge { .. }),
        "{error}"
    );
    assert!(drain(&mut seen).is_empty());
}

#[tokio::test]
async fn failed_broker_is_retried_elsewhere_and_then_avoided() {
    let (bad, mut bad_seen) = fake_broker(failing_broker()).await;
    let (good, mut good_seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("a-bad", &bad, 2), ("b-good", &good, 2)]),
    )]))
    .await;
    for i in 0..6 {
        let result = producer
            .send(Message::new("T", format!("m{i}")))
            .await
            .expect("retried on the good broker");
        assert_eq!(result.queue.broker_name, "b-good");
    }
    assert_eq!(drain(&mut good_seen).len(), 6);
    let stats = producer.stats();
    assert_eq!((stats.sent, stats.failed, stats.retried), (6, 0, 1));
    // The bad broker was tried once, then kept out of rotation.
    assert_eq!(drain(&mut bad_seen).len(), 1);
}

#[tokio::test]
async fn all_brokers_failing_reports_every_attempt() {
    let (bad, _seen) = fake_broker(failing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("a-bad", &bad, 2)]),
    )]))
    .await;
    let error = producer
        .send(Message::new("T", "x"))
        .await
        .expect_err("fails");
    match &error {
        ClientError::SendFailed { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert_eq!(
                last.response_code(),
                Some(ResponseCode::SystemBusy.as_i32())
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(error.to_string().contains("busy, try later"), "{error}");
}

#[tokio::test]
async fn ordered_sends_keep_a_key_on_one_queue() {
    let (broker, _seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 8)]),
    )]))
    .await;
    let mut queues = Vec::new();
    for i in 0..5 {
        let result = producer
            .send_ordered(Message::new("T", format!("step {i}")), "order-7")
            .await
            .expect("sent");
        queues.push(result.queue.queue_id);
    }
    let expected = selector::index_by_key_hash("order-7", 8).expect("index") as i32;
    assert_eq!(queues, vec![expected; 5]);
    let queue = MessageQueue::new("T", "broker-a", 3);
    let result = producer
        .send_to_queue(Message::new("T", "fixed"), &queue)
        .await
        .expect("sent");
    assert_eq!(result.queue.queue_id, 3);
}

#[tokio::test]
async fn oneway_sends_are_flagged() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 1)]),
    )]))
    .await;
    producer
        .send_oneway(Message::new("T", "fire"))
        .await
        .expect("queued");
    let request = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("arrives")
        .expect("request");
    assert!(request.is_oneway());
}

#[tokio::test]
async fn unknown_topic_without_auto_create_is_a_clear_error() {
    let producer = producer_for(HashMap::new()).await;
    let error = producer
        .send(Message::new("Missing", "x"))
        .await
        .expect_err("no route");
    assert!(
        matches!(error, ClientError::NoRoute { ref topic, .. } if topic == "Missing"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_topic_goes_to_the_auto_create_template_brokers() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        DEFAULT_TOPIC.to_owned(),
        route_of(&[("broker-a", &broker, 8)]),
    )]))
    .await;
    let result = producer
        .send(Message::new("Fresh", "x"))
        .await
        .expect("sent via TBW102 brokers");
    assert!(result.queue.queue_id < 4, "default_topic_queue_nums is 4");
    let request = drain(&mut seen).pop().expect("request");
    assert_eq!(request.ext("b"), Some("Fresh"));
    assert_eq!(request.ext("d"), Some("4"));
}

#[tokio::test]
async fn spawned_sends_run_concurrently_within_the_window() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 4)]),
    )]))
    .await;
    let instance = ClientInstance::new(ClientConfig::new(namesrv)).expect("instance");
    let config = ProducerConfig {
        max_in_flight: 2,
        ..ProducerConfig::new("PG")
    };
    let producer = Producer::new(instance, config).expect("producer");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let producer = producer.clone();
            tokio::spawn(async move { producer.send(Message::new("T", format!("m{i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("sent");
    }
    assert_eq!(drain(&mut seen).len(), 50);
    producer.shutdown();
    assert!(matches!(
        producer.send(Message::new("T", "late")).await,
        Err(ClientError::Shutdown)
    ));
}

#[tokio::test]
async fn batches_go_in_one_request_and_decode_back() {
    let (broker, mut seen) = fake_broker(storing_broker()).await;
    let producer = producer_for(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker, 2)]),
    )]))
    .await;
    let messages: Vec<_> = (0..3)
        .map(|i| Message::new("T", format!("b{i}")).with_tags("TagB"))
        .collect();
    let result = producer.send_batch(messages).await.expect("sent");
    assert_eq!(result.msg_id.split(',').count(), 3);
    let request = drain(&mut seen).pop().expect("request");
    assert_eq!(request.code, RequestCode::SendBatchMessage.as_i32());
    assert_eq!(request.ext("m"), Some("true"));
    let decoded = ringmq_wire::record::decode_batch(&request.body, 16).expect("batch body");
    assert_eq!(decoded.len(), 3);
    assert_eq!(&decoded[2].body[..], b"b2");
    let properties = crate::message::decode_properties(
        std::str::from_utf8(&decoded[0].properties).expect("utf8"),
    );
    assert_eq!(properties["TAGS"], "TagB");
    assert_eq!(
        Some(properties["UNIQ_KEY"].as_str()),
        result.msg_id.split(',').next()
    );
    let mixed = vec![Message::new("T", "a"), Message::new("U", "b")];
    assert!(matches!(
        producer.send_batch(mixed).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(producer.send_batch(Vec::new()).await.is_err());
}

#[tokio::test]
async fn transactions_commit_and_answer_check_backs() {
    use crate::testutil::mini_broker::MiniBroker;
    use transaction::LocalTransactionState;

    let broker = MiniBroker::start().await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker.addr, 1)]),
    )]))
    .await;
    let instance = ClientInstance::new(ClientConfig::new(namesrv)).expect("instance");
    let producer = Producer::new(instance, ProducerConfig::new("TXG")).expect("producer");
    let (checked_tx, mut checked_rx) = mpsc::channel(4);
    producer.set_transaction_checker(move |message| {
        let checked_tx = checked_tx.clone();
        async move {
            let _ = checked_tx.send(message.body.clone()).await;
            LocalTransactionState::Rollback
        }
    });
    let result = producer
        .send_in_transaction(Message::new("T", "half"), |send| async move {
            assert_eq!(send.status, SendStatus::Ok);
            LocalTransactionState::Unknown
        })
        .await
        .expect("sent");
    assert_eq!(result.state, LocalTransactionState::Unknown);
    // The half message was flagged prepared and carries its producer group.
    let stored = broker
        .state
        .lock()
        .expect("state")
        .log
        .values()
        .next()
        .cloned()
        .expect("record");
    let stored = ringmq_wire::record::StoredMessage::decode(&stored, true).expect("decode");
    assert_eq!(
        stored.layout.sys_flag & sys_flag::TRANSACTION_PREPARED,
        sys_flag::TRANSACTION_PREPARED
    );
    assert_eq!(stored.property("PGROUP"), Some("TXG"));
    let physical = stored.layout.physical_offset;

    // The first transactional send to a broker introduces the producer with a heartbeat
    // (no waiting for the 30 s loop), so the broker can check back at once.
    assert!(
        broker
            .state
            .lock()
            .expect("state")
            .producers
            .contains_key("TXG"),
        "the producer's heartbeat reached the broker with the first transactional send"
    );
    broker.check_transaction("TXG", physical).await;
    let checked = tokio::time::timeout(Duration::from_secs(10), checked_rx.recv())
        .await
        .expect("checker called")
        .expect("body");
    assert_eq!(&checked[..], b"half");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ended = broker.state.lock().expect("state").ended.clone();
        if ended.len() == 2 {
            assert_eq!(ended[0], (physical, 0, false));
            assert_eq!(ended[1], (physical, 0xC, true));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ended: {ended:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn direct_v2_fields_match_the_header_struct_encoding() {
    use ringmq_wire::header::send::SendMessageRequestHeaderV2;
    for (batch, properties, sys_flag) in [
        (false, "UNIQ_KEY\u{1}0A0B\u{2}WAIT\u{1}true\u{2}", 0),
        (true, "", sys_flag::COMPRESSED),
        (
            false,
            &"x".repeat(300) as &str,
            sys_flag::TRANSACTION_PREPARED,
        ),
    ] {
        let fields = SendFields {
            producer_group: "a_group_name_longer_than_24_bytes",
            topic: "T",
            default_topic_queue_nums: 4,
            queue_id: 7,
            sys_flag,
            born_timestamp: 1_700_000_000_123,
            flag: -3,
            properties,
            batch,
            broker_name: "broker-a-s0",
        };
        let mut direct = RemotingCommand::request(RequestCode::SendMessageV2);
        fields.write_v2(&mut direct.ext_fields);
        let mut via_structs = RemotingCommand::request(RequestCode::SendMessageV2);
        SendMessageRequestHeaderV2::from(fields.to_header()).encode_into(&mut via_structs);
        assert_eq!(direct.ext_fields, via_structs.ext_fields);
        let decoded = SendMessageRequestHeaderV2::decode(&direct).expect("decodes as V2");
        assert_eq!(decoded.into_v1(), fields.to_header());
        // Same bytes on the wire, in both header encodings.
        for serialize_type in [
            ringmq_wire::SerializeType::Json,
            ringmq_wire::SerializeType::RocketMq,
        ] {
            direct.serialize_type = serialize_type;
            via_structs.serialize_type = serialize_type;
            via_structs.opaque = direct.opaque;
            assert_eq!(
                direct.encode_frame().expect("encodes"),
                via_structs.encode_frame().expect("encodes")
            );
        }
    }
}
