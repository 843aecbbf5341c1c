//! The client against the real broker logic and the real NameServer, in process.
//!
//! The broker's shard service is I/O-free (`ShardService`): this test drives it over tokio
//! sockets on a thread of its own (the service is single-threaded), registers it with an
//! in-process `ringmq-namesrv` using the broker's own `REGISTER_BROKER` request, and then
//! produces, consumes and administers with the client exactly as an application would.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::broker::start_broker;
use ringmq_client::{
    Admin, ClientConfig, ClientInstance, ConsumeFromWhere, ConsumeResult, LitePullConsumer,
    LitePullConsumerConfig, Message, MessageListener, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::body::topic::TopicConfig;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn instance(namesrv: &str, name: &str) -> ClientInstance {
    let mut config = ClientConfig::new(namesrv);
    config.instance_name = Some(name.to_owned());
    config.route_refresh_interval = Duration::from_millis(200);
    ClientInstance::new(config).expect("instance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_and_administer_against_the_real_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let namesrv = NameServer::start(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NameServerConfig::default()
    })
    .await
    .expect("NameServer");
    let namesrv_addr = namesrv.local_addr().to_string();
    let broker_addr = start_broker(namesrv_addr.clone());

    // Admin: the topic is created on every master of the cluster.
    let admin = Admin::new(instance(&namesrv_addr, "admin"));
    let cluster = admin.cluster_info().await.expect("cluster info");
    let (cluster_name, _) = cluster
        .cluster_addr_table
        .iter()
        .next()
        .expect("one cluster");
    let created = admin
        .create_topic_in_cluster(cluster_name, &TopicConfig::new("E2E", 4))
        .await
        .expect("topic created");
    assert_eq!(created, vec![broker_addr.clone()]);

    // Wait for the re-registration to publish the topic.
    let deadline = tokio::time::Instant::now() + WAIT;
    while admin.topic_route("E2E").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "route never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let producer = Producer::new(
        instance(&namesrv_addr, "producer"),
        ProducerConfig::new("PG"),
    )
    .expect("producer");
    let mut sent = BTreeSet::new();
    for i in 0..20 {
        let result = producer
            .send(
                Message::new("E2E", format!("message {i}"))
                    // Sends go round robin over the 4 queues: blocks of 4 share a tag, so
                    // every queue holds both tags and ends with an "even" message.
                    .with_tags(if (i / 4) % 2 == 0 { "even" } else { "odd" })
                    .with_keys([format!("key-{i}")]),
            )
            .await
            .expect("sent");
        sent.insert(result.msg_id);
    }
    // Batches are not exercised here: the broker decodes SEND_BATCH_MESSAGE headers as V1
    // while Java clients (and this one) send V2 keys; reported to the wire owner.
    let stats = admin.topic_stats("E2E").await.expect("topic stats");
    let stored: i64 = stats.offset_table.values().map(|o| o.max_offset).sum();
    assert_eq!(stored, 20);

    // Push consumer, tag filtered.
    let (tx, mut rx) = mpsc::channel(64);
    let mut consumer = PushConsumer::new(
        instance(&namesrv_addr, "push"),
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            ..PushConsumerConfig::new("E2E-PUSH")
        },
    )
    .expect("consumer");
    consumer.subscribe("E2E", "even").expect("subscribe");
    consumer
        .start(MessageListener::concurrently(move |messages| {
            let tx = tx.clone();
            async move {
                for message in messages {
                    let _ = tx.send(message).await;
                }
                ConsumeResult::Success
            }
        }))
        .await
        .expect("started");
    let mut received = Vec::new();
    while received.len() < 12 {
        let message = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("received {} of 12", received.len()))
            .expect("message");
        assert_eq!(message.tags(), Some("even"));
        assert!(sent.contains(message.msg_id()));
        received.push(message);
    }
    consumer.shutdown().await;
    let progress = admin
        .consume_stats("E2E-PUSH", None)
        .await
        .expect("progress");
    let consumed: i64 = progress
        .offset_table
        .iter()
        .filter(|(q, _)| q.topic == "E2E")
        .map(|(_, o)| o.consumer_offset)
        .sum();
    assert_eq!(consumed, 20, "{progress:?}");

    // Lite pull consumer sees everything.
    let mut lite = LitePullConsumer::new(
        instance(&namesrv_addr, "lite"),
        LitePullConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            auto_commit: false,
            ..LitePullConsumerConfig::new("E2E-LITE")
        },
    )
    .expect("lite");
    lite.subscribe("E2E", "*").expect("subscribe");
    lite.start().await.expect("started");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut polled = 0;
    while polled < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polled {polled} of 20"
        );
        polled += lite
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
            .len();
    }
    lite.commit().await.expect("commit");
    lite.shutdown().await;

    // Message queries.
    let by_key = admin
        .query_messages_by_key("E2E", "key-7", 32, 0, i64::MAX)
        .await
        .expect("query by key");
    assert_eq!(by_key.len(), 1);
    assert_eq!(&by_key[0].body[..], b"message 7");
    let by_id = admin
        .view_message_by_id(&by_key[0].offset_msg_id)
        .await
        .expect("view by id");
    assert_eq!(by_id.body, by_key[0].body);

    namesrv.shutdown().await;
}

/// A second member joining a group makes the broker send `NOTIFY_CONSUMER_IDS_CHANGED`;
/// both members rebalance on it (no 20 s wait) and split the queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_rebalance_when_the_broker_notifies_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let namesrv = NameServer::start(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NameServerConfig::default()
    })
    .await
    .expect("NameServer");
    let namesrv_addr = namesrv.local_addr().to_string();
    let broker_addr = start_broker(namesrv_addr.clone());
    let admin = Admin::new(instance(&namesrv_addr, "admin"));
    admin
        .create_topic(&broker_addr, &TopicConfig::new("SPLIT", 4))
        .await
        .expect("topic created");
    let deadline = tokio::time::Instant::now() + WAIT;
    while admin.topic_route("SPLIT").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "route never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = MessageListener::concurrently(|_| async { ConsumeResult::Success });
    let mut members = Vec::new();
    for name in ["m1", "m2"] {
        let mut consumer = PushConsumer::new(
            instance(&namesrv_addr, name),
            PushConsumerConfig::new("SPLIT-GROUP"),
        )
        .expect("consumer");
        consumer.subscribe("SPLIT", "*").expect("subscribe");
        consumer.start(listener.clone()).await.expect("started");
        members.push(consumer);
    }
    let of_split = |c: &PushConsumer| -> BTreeSet<ringmq_client::MessageQueue> {
        c.owned_queues()
            .into_iter()
            .filter(|q| q.topic == "SPLIT")
            .collect()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (a, b) = (of_split(&members[0]), of_split(&members[1]));
        if a.len() == 2 && b.len() == 2 && a.is_disjoint(&b) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no split after the notification: {a:?} / {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for member in &mut members {
        member.shutdown().await;
    }
    namesrv.shutdown().await;
}
