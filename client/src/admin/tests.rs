//! Admin tests against a fake NameServer and fake brokers.

use std::collections::HashMap;

use ringmq_wire::body::stats::{OffsetWrapper, TopicOffset};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use tokio::sync::mpsc;

use super::*;
use crate::instance::ClientConfig;
use crate::testutil::{fake_broker, fake_namesrv, route_of};

/// A broker answering admin requests with data naming itself (`name`).
fn admin_broker(
    name: &'static str,
) -> impl Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static {
    move |request: &RemotingCommand| {
        let ok = RemotingCommand::response_to(request, ResponseCode::Success);
        match request.request_code() {
            Some(RequestCode::GetTopicStatsInfo) => {
                let mut table = TopicStatsTable::default();
                for queue_id in 0..2 {
                    table.offset_table.insert(
                        MessageQueue::new("T", name, queue_id),
                        TopicOffset {
                            min_offset: 0,
                            max_offset: 10 + i64::from(queue_id),
                            last_update_timestamp: 1,
                        },
                    );
                }
                table.topic_put_tps = 1.5;
                ok.with_body(table.encode())
            }
            Some(RequestCode::GetConsumeStats) => {
                let mut stats = ConsumeStats::default();
                stats.offset_table.insert(
                    MessageQueue::new("T", name, 0),
                    OffsetWrapper {
                        broker_offset: 100,
                        consumer_offset: 60,
                        ..OffsetWrapper::default()
                    },
                );
                ok.with_body(stats.encode())
            }
            Some(RequestCode::GetBrokerConfig) => {
                ok.with_body(format!("brokerName={name}\nflushDiskType=ASYNC_FLUSH\n"))
            }
            Some(RequestCode::GetBrokerRuntimeInfo) => {
                let mut table = KvTable::default();
                table.table.insert("brokerVersionDesc".into(), name.into());
                ok.with_body(ringmq_wire::json::to_vec(&table))
            }
            Some(
                RequestCode::UpdateAndCreateTopic
                | RequestCode::DeleteTopicInBroker
                | RequestCode::UpdateAndCreateSubscriptiongroup
                | RequestCode::DeleteSubscriptiongroup
                | RequestCode::UpdateBrokerConfig,
            ) => ok,
            _ => RemotingCommand::error_response(
                request,
                ResponseCode::RequestCodeNotSupported,
                "not in this fake",
            ),
        }
    }
}

struct Fixture {
    admin: Admin,
    a: String,
    b: String,
    a_seen: mpsc::Receiver<RemotingCommand>,
    b_seen: mpsc::Receiver<RemotingCommand>,
}

async fn fixture() -> Fixture {
    let (a, a_seen) = fake_broker(admin_broker("broker-a")).await;
    let (b, b_seen) = fake_broker(admin_broker("broker-b")).await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &a, 2), ("broker-b", &b, 2)]),
    )]))
    .await;
    let instance = ClientInstance::new(ClientConfig::new(namesrv)).expect("instance");
    Fixture {
        admin: Admin::new(instance),
        a,
        b,
        a_seen,
        b_seen,
    }
}

fn drain(rx: &mut mpsc::Receiver<RemotingCommand>) -> Vec<RemotingCommand> {
    let mut out = Vec::new();
    while let Ok(request) = rx.try_recv() {
        out.push(request);
    }
    out
}

#[tokio::test]
async fn create_topic_in_cluster_reaches_every_master() {
    let mut f = fixture().await;
    let mut config = TopicConfig::new("NewTopic", 8);
    config.order = true;
    let done = f
        .admin
        .create_topic_in_cluster("TestCluster", &config)
        .await
        .expect("created");
    assert_eq!(done.len(), 2);
    assert!(done.contains(&f.a) && done.contains(&f.b));
    for seen in [&mut f.a_seen, &mut f.b_seen] {
        let request = drain(seen).pop().expect("request");
        assert_eq!(request.code, RequestCode::UpdateAndCreateTopic.as_i32());
        assert_eq!(request.ext("topic"), Some("NewTopic"));
        assert_eq!(request.ext("readQueueNums"), Some("8"));
        assert_eq!(request.ext("writeQueueNums"), Some("8"));
        assert_eq!(request.ext("perm"), Some("6"));
        assert_eq!(request.ext("order"), Some("true"));
        assert_eq!(request.ext("topicFilterType"), Some("SINGLE_TAG"));
    }
    let error = f
        .admin
        .create_topic_in_cluster("NoSuchCluster", &config)
        .await
        .expect_err("unknown cluster");
    assert!(error.to_string().contains("TestCluster"), "{error}");
}

#[tokio::test]
async fn topic_stats_are_merged_across_brokers() {
    let f = fixture().await;
    let stats = f.admin.topic_stats("T").await.expect("stats");
    assert_eq!(stats.offset_table.len(), 4);
    let brokers: BTreeSet<_> = stats
        .offset_table
        .keys()
        .map(|q| q.broker_name.clone())
        .collect();
    assert_eq!(brokers.len(), 2);
    assert!((stats.topic_put_tps - 3.0).abs() < 1e-9);
}

#[tokio::test]
async fn consume_stats_fall_back_to_all_masters_and_merge() {
    let f = fixture().await;
    let stats = f.admin.consume_stats("G", None).await.expect("stats");
    assert_eq!(stats.offset_table.len(), 2);
    assert_eq!(stats.total_diff(), 80);
}

#[tokio::test]
async fn broker_config_and_runtime_info_are_parsed() {
    let f = fixture().await;
    let config = f.admin.broker_config(&f.a).await.expect("config");
    assert_eq!(config["brokerName"], "broker-a");
    assert_eq!(config["flushDiskType"], "ASYNC_FLUSH");
    let info = f.admin.broker_runtime_info(&f.b).await.expect("info");
    assert_eq!(info["brokerVersionDesc"], "broker-b");
}

#[tokio::test]
async fn subscription_groups_are_created_with_a_json_body() {
    let mut f = fixture().await;
    let config = SubscriptionGroupConfig::new("CG");
    f.admin
        .create_subscription_group(&f.a, &config)
        .await
        .expect("created");
    let request = drain(&mut f.a_seen).pop().expect("request");
    assert_eq!(
        SubscriptionGroupConfig::decode(&request.body).expect("body"),
        config
    );
    let error = f
        .admin
        .create_subscription_group(&f.a, &SubscriptionGroupConfig::default())
        .await
        .expect_err("empty name");
    assert!(matches!(error, ClientError::InvalidArgument(_)));
}

#[tokio::test]
async fn unsupported_operations_surface_the_broker_error() {
    let f = fixture().await;
    let error = f
        .admin
        .consumer_connection("G")
        .await
        .expect_err("fake does not support it");
    assert_eq!(
        error.response_code(),
        Some(ResponseCode::RequestCodeNotSupported.as_i32())
    );
}

#[tokio::test]
async fn messages_are_found_by_key_unique_id_broker_id_and_offset() {
    use crate::message::Message;
    use crate::producer::{Producer, ProducerConfig};
    use crate::testutil::mini_broker::MiniBroker;

    let broker = MiniBroker::start().await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker.addr, 2)]),
    )]))
    .await;
    let instance = ClientInstance::new(ClientConfig::new(namesrv)).expect("instance");
    let producer = Producer::new(instance.clone(), ProducerConfig::new("PG")).expect("producer");
    let sent = producer
        .send(Message::new("T", "order #7").with_keys(["order-7", "customer-1"]))
        .await
        .expect("sent");
    producer
        .send(Message::new("T", "other").with_keys(["order-8"]))
        .await
        .expect("sent");
    let admin = Admin::new(instance);

    let by_key = admin
        .query_messages_by_key("T", "order-7", 64, 0, i64::MAX)
        .await
        .expect("query");
    assert_eq!(by_key.len(), 1);
    assert_eq!(&by_key[0].body[..], b"order #7");
    assert!(
        admin
            .query_messages_by_key("T", "nothing", 64, 0, i64::MAX)
            .await
            .expect("query")
            .is_empty()
    );

    let by_unique = admin
        .query_message_by_unique_key("T", &sent.msg_id)
        .await
        .expect("query")
        .expect("found");
    assert_eq!(by_unique.msg_id(), sent.msg_id);

    // The mini broker stores at 127.0.0.1:10911 in its ids; point the id at its real port.
    let (_, physical) =
        ringmq_wire::msgid::parse_offset_msg_id(&sent.offset_msg_id).expect("broker id");
    let real_id = ringmq_wire::msgid::offset_msg_id(broker.addr.parse().expect("addr"), physical);
    let by_id = admin.view_message_by_id(&real_id).await.expect("view");
    assert_eq!(&by_id.body[..], b"order #7");
    assert_eq!(by_id.broker_name, "broker-a");

    let at = admin
        .view_message_at(&sent.queue, sent.queue_offset)
        .await
        .expect("pull")
        .expect("message");
    assert_eq!(at.msg_id(), sent.msg_id);
    assert!(
        admin
            .view_message_at(&sent.queue, sent.queue_offset + 100)
            .await
            .expect("pull")
            .is_none()
    );
    assert!(admin.view_message_by_id("not-an-id").await.is_err());
}

#[tokio::test]
async fn offsets_of_an_offline_group_are_reset_by_time() {
    use crate::testutil::mini_broker::MiniBroker;

    let broker = MiniBroker::start().await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &broker.addr, 3)]),
    )]))
    .await;
    let admin = Admin::new(ClientInstance::new(ClientConfig::new(namesrv)).expect("instance"));
    // The mini broker answers every timestamp search with offset 0.
    let done = admin
        .reset_offset_by_time("G", "T", 1_700_000_000_000)
        .await
        .expect("reset");
    assert_eq!(done.len(), 3);
    for queue_id in 0..3 {
        assert_eq!(broker.committed("G", "T", queue_id), Some(0));
    }
}

/// A broker for the online reset: broker-a has a consumer of the group online (answers 222
/// with its table), broker-b has none (answers CONSUMER_NOT_ONLINE, then serves the offline
/// reset: every time search finds offset 3, the group's committed offset is 7 on queue 0 and
/// 1 on queue 1).
fn reset_broker(
    name: &'static str,
    online: bool,
) -> impl Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static {
    use ringmq_wire::body::client::ResetOffsetBody;
    use ringmq_wire::header::consumer::ResetOffsetRequestHeader;
    use ringmq_wire::header::offset::QueryConsumerOffsetResponseHeader;
    move |request: &RemotingCommand| {
        let ok = RemotingCommand::response_to(request, ResponseCode::Success);
        match request.request_code() {
            Some(RequestCode::InvokeBrokerToResetOffset) if online => {
                let header = ResetOffsetRequestHeader::decode(request).expect("header");
                let mut body = ResetOffsetBody::default();
                for queue_id in 0..2 {
                    body.offset_table.insert(
                        MessageQueue::new(&header.topic, name, queue_id),
                        i64::from(queue_id) + 1,
                    );
                }
                ok.with_body(body.encode())
            }
            Some(RequestCode::InvokeBrokerToResetOffset) => RemotingCommand::error_response(
                request,
                ResponseCode::ConsumerNotOnline,
                "Consumer not online, so can not reset offset",
            ),
            Some(RequestCode::SearchOffsetByTimestamp) => {
                let mut response = ok;
                OffsetResponseHeader { offset: 3 }.encode_into(&mut response);
                response
            }
            Some(RequestCode::QueryConsumerOffset) => {
                let committed = if request.ext("queueId") == Some("0") {
                    7
                } else {
                    1
                };
                let mut response = ok;
                QueryConsumerOffsetResponseHeader { offset: committed }.encode_into(&mut response);
                response
            }
            Some(RequestCode::UpdateConsumerOffset) => ok,
            _ => RemotingCommand::error_response(
                request,
                ResponseCode::RequestCodeNotSupported,
                "not in this fake",
            ),
        }
    }
}

#[tokio::test]
async fn online_reset_asks_every_broker_and_falls_back_where_no_consumer_is_online() {
    let (a, mut a_seen) = fake_broker(reset_broker("broker-a", true)).await;
    let (b, mut b_seen) = fake_broker(reset_broker("broker-b", false)).await;
    let namesrv = fake_namesrv(HashMap::from([(
        "T".to_owned(),
        route_of(&[("broker-a", &a, 2), ("broker-b", &b, 2)]),
    )]))
    .await;
    let admin = Admin::new(ClientInstance::new(ClientConfig::new(namesrv)).expect("instance"));
    let outcome = admin
        .reset_offset_by_time_online("G", "T", 1_700_000_000_000, false)
        .await
        .expect("reset");
    assert_eq!(outcome.brokers[&a], ResetPath::Online);
    assert_eq!(outcome.brokers[&b], ResetPath::Offline);
    let offset =
        |broker: &str, queue_id| outcome.offsets[&MessageQueue::new("T", broker, queue_id)];
    assert_eq!((offset("broker-a", 0), offset("broker-a", 1)), (1, 2));
    // Not forced: queue 0 moves back from 7 to 3, queue 1 stays at 1.
    assert_eq!((offset("broker-b", 0), offset("broker-b", 1)), (3, 1));
    let sent = drain(&mut a_seen);
    let reset = sent
        .iter()
        .find(|r| r.code == RequestCode::InvokeBrokerToResetOffset.as_i32())
        .expect("222 sent");
    assert_eq!(reset.ext("group"), Some("G"));
    assert_eq!(reset.ext("timestamp"), Some("1700000000000"));
    assert_eq!(reset.ext("isForce"), Some("false"));
    let updates: Vec<(Option<String>, Option<String>)> = drain(&mut b_seen)
        .iter()
        .filter(|r| r.code == RequestCode::UpdateConsumerOffset.as_i32())
        .map(|r| {
            (
                r.ext("queueId").map(str::to_owned),
                r.ext("commitOffset").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(updates, vec![(Some("0".to_owned()), Some("3".to_owned()))]);

    // One queue: through 222 where a consumer is online, UPDATE_CONSUMER_OFFSET elsewhere.
    let queue = MessageQueue::new("T", "broker-b", 1);
    let path = admin
        .reset_queue_offset(&b, "G", &queue, 2)
        .await
        .expect("one queue");
    assert_eq!(path, ResetPath::Offline);
    let path = admin
        .reset_queue_offset(&a, "G", &MessageQueue::new("T", "broker-a", 1), 2)
        .await
        .expect("one queue");
    assert_eq!(path, ResetPath::Online);
    let reset = drain(&mut a_seen).pop().expect("222 sent");
    assert_eq!(
        (reset.ext("queueId"), reset.ext("offset")),
        (Some("1"), Some("2"))
    );
}
