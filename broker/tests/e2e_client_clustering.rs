//! Clustering end to end: the Rust client produces 10 000 messages into a real 2-shard
//! `ringmq-broker`; two push consumers of one group (started, and their rebalance settled,
//! before the first message) consume them: every message exactly once overall, and both
//! consumers get a share.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ringmq_client::{
    ConsumeFromWhere, ConsumeResult, MessageListener, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};
use support::client::{
    Log, counts, create_topic, runtime, send_all, wait_all_delivered, wait_settled,
};
use support::{Broker, BrokerOptions, Namesrv};

const MESSAGES: usize = 10_000;
const TOPIC: &str = "E2eClusteringTopic";
const GROUP: &str = "e2e_clustering_group";

async fn consumer(namesrv: &str, name: &str, log: Log) -> PushConsumer {
    let mut consumer = PushConsumer::new(
        support::client::client(namesrv, name),
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            ..PushConsumerConfig::new(GROUP)
        },
    )
    .expect("push consumer");
    consumer.subscribe(TOPIC, "*").expect("subscribe");
    consumer
        .start(MessageListener::concurrently(move |messages| {
            let log = log.clone();
            async move {
                log.record(&messages);
                ConsumeResult::Success
            }
        }))
        .await
        .expect("start consumer");
    consumer
}

#[test]
fn two_push_consumers_share_10k_messages_exactly_once() {
    let namesrv = Namesrv::start();
    let _broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-clu".into(),
            ..BrokerOptions::default()
        },
    );
    runtime().block_on(async {
        create_topic(&namesrv.addr, TOPIC, 4, 2).await;
        let (log_a, log_b) = (Log::default(), Log::default());
        let mut a = consumer(&namesrv.addr, "clu-a", log_a.clone()).await;
        let mut b = consumer(&namesrv.addr, "clu-b", log_b.clone()).await;
        wait_settled(&[&a, &b], TOPIC, 8).await;

        let producer = Producer::new(
            support::client::client(&namesrv.addr, "clu-producer"),
            ProducerConfig::new("e2e_clustering_producer"),
        )
        .expect("producer");
        let bodies: Vec<String> = (0..MESSAGES).map(|i| format!("clu-{i}")).collect();
        let results = send_all(&producer, TOPIC, &bodies, 64).await;
        let stored: BTreeSet<_> = results
            .iter()
            .map(|r| {
                (
                    r.queue.broker_name.clone(),
                    r.queue.queue_id,
                    r.queue_offset,
                )
            })
            .collect();
        assert_eq!(
            stored.len(),
            MESSAGES,
            "every message has its own queue offset"
        );

        let expected: BTreeSet<String> = bodies.iter().cloned().collect();
        wait_all_delivered("clustering", &[&log_a, &log_b], &expected).await;
        // A duplicate would arrive after the last first delivery: give it time to show.
        tokio::time::sleep(Duration::from_secs(3)).await;
        a.shutdown().await;
        b.shutdown().await;

        let counts = counts(&[&log_a, &log_b]);
        let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            duplicated.is_empty(),
            "{} messages delivered more than once, e.g. {:?}",
            duplicated.len(),
            &duplicated[..duplicated.len().min(5)]
        );
        assert_eq!(
            counts.len(),
            MESSAGES,
            "nothing but the sent messages arrives"
        );
        let (na, nb) = (log_a.len(), log_b.len());
        assert_eq!(na + nb, MESSAGES);
        assert!(na > 0 && nb > 0, "both consumers get a share: {na} / {nb}");
        // Each consumer only sees the queues it owns: no queue is consumed by both.
        let queues = |log: &Log| -> BTreeSet<(String, i32)> {
            log.snapshot()
                .into_iter()
                .map(|d| (d.broker, d.queue_id))
                .collect()
        };
        assert!(queues(&log_a).is_disjoint(&queues(&log_b)));
    });
}
