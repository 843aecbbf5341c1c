//! Lite pull consumer tests against the in-memory mini broker.

use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::admin::retry_topic;
use crate::instance::ClientConfig;
use crate::message::Message;
use crate::producer::{Producer, ProducerConfig};
use crate::testutil::mini_broker::MiniBroker;
use crate::testutil::{fake_namesrv, route_of};

const WAIT: Duration = Duration::from_secs(10);

async fn setup(group: &str) -> (MiniBroker, String) {
    let broker = MiniBroker::start().await;
    let namesrv = fake_namesrv(HashMap::from([
        ("T".to_owned(), route_of(&[("broker-a", &broker.addr, 4)])),
        (
            retry_topic(group),
            route_of(&[("broker-a", &broker.addr, 1)]),
        ),
    ]))
    .await;
    (broker, namesrv)
}

fn instance(namesrv: &str, name: &str) -> ClientInstance {
    let mut config = ClientConfig::new(namesrv);
    config.instance_name = Some(name.to_owned());
    ClientInstance::new(config).expect("instance")
}

fn config(group: &str) -> LitePullConsumerConfig {
    LitePullConsumerConfig {
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        auto_commit: false,
        ..LitePullConsumerConfig::new(group)
    }
}

async fn poll_n(consumer: &LitePullConsumer, n: usize) -> Vec<MessageExt> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polled {} of {n}",
            out.len()
        );
        out.extend(
            consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    out
}

#[tokio::test]
async fn assign_poll_commit_and_seek() {
    let (broker, namesrv) = setup("L1").await;
    let producer =
        Producer::new(instance(&namesrv, "p"), ProducerConfig::new("PG")).expect("producer");
    let queue = MessageQueue::new("T", "broker-a", 0);
    for i in 0..5 {
        producer
            .send_to_queue(Message::new("T", format!("m{i}")), &queue)
            .await
            .expect("sent");
    }
    let mut consumer = LitePullConsumer::new(instance(&namesrv, "l1"), config("L1")).expect("c");
    consumer.assign(vec![queue.clone()]).expect("assign");
    consumer.start().await.expect("started");
    assert_eq!(consumer.assignment(), vec![queue.clone()]);
    let first = poll_n(&consumer, 5).await;
    let offsets: Vec<i64> = first.iter().map(|m| m.queue_offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    consumer.commit().await.expect("commit");
    assert_eq!(broker.committed("L1", "T", 0), Some(5));
    assert_eq!(consumer.committed(&queue).await.expect("query"), Some(5));
    consumer.seek(&queue, 2).expect("seek");
    let again = poll_n(&consumer, 3).await;
    assert_eq!(again[0].queue_offset, 2);
    assert_eq!(&again[0].body[..], b"m2");
    let stranger = MessageQueue::new("T", "broker-a", 3);
    assert!(consumer.seek(&stranger, 0).is_err());
    consumer.shutdown().await;
    assert_eq!(broker.committed("L1", "T", 0), Some(5));
}

#[tokio::test]
async fn subscription_gets_every_queue_of_a_lone_member() {
    let (_broker, namesrv) = setup("L2").await;
    let producer =
        Producer::new(instance(&namesrv, "p2"), ProducerConfig::new("PG")).expect("producer");
    for i in 0..8 {
        producer
            .send(Message::new("T", format!("s{i}")))
            .await
            .expect("sent");
    }
    let mut consumer = LitePullConsumer::new(instance(&namesrv, "l2"), config("L2")).expect("c");
    consumer.subscribe("T", "*").expect("subscribe");
    consumer.start().await.expect("started");
    let bodies: BTreeSet<_> = poll_n(&consumer, 8)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies.len(), 8);
    assert_eq!(consumer.assignment().len(), 4);
    consumer.shutdown().await;
    assert!(consumer.poll(Duration::from_millis(10)).await.is_err());
}
