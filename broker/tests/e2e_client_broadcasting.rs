//! Broadcasting end to end: two push consumers of one group in broadcasting mode against a
//! real 2-shard `ringmq-broker` each receive every message the Rust client produced.

mod support;

use std::collections::BTreeSet;

use ringmq_client::{
    ConsumeFromWhere, ConsumeResult, MessageListener, MessageModel, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use support::client::{
    Log, WAIT, counts, create_topic, runtime, send_all, wait_all_delivered, wait_until,
};
use support::{Broker, BrokerOptions, Namesrv};

const MESSAGES: usize = 2_000;
const TOPIC: &str = "E2eBroadcastTopic";
const GROUP: &str = "e2e_broadcast_group";

async fn consumer(namesrv: &str, name: &str, dir: &std::path::Path, log: Log) -> PushConsumer {
    let mut consumer = PushConsumer::new(
        support::client::client(namesrv, name),
        PushConsumerConfig {
            message_model: MessageModel::Broadcasting,
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            offset_file: Some(dir.join(format!("{name}-offsets.json"))),
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
fn two_broadcasting_consumers_each_get_every_message() {
    let namesrv = Namesrv::start();
    let _broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-bc".into(),
            ..BrokerOptions::default()
        },
    );
    let offsets = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        create_topic(&namesrv.addr, TOPIC, 4, 2).await;
        let (log_a, log_b) = (Log::default(), Log::default());
        let mut a = consumer(&namesrv.addr, "bc-a", offsets.path(), log_a.clone()).await;
        let mut b = consumer(&namesrv.addr, "bc-b", offsets.path(), log_b.clone()).await;
        // Broadcasting consumers own every queue, whoever else is in the group.
        for c in [&a, &b] {
            wait_until(
                "a broadcasting consumer to own all queues",
                WAIT,
                || async {
                    let owned = c
                        .owned_queues()
                        .into_iter()
                        .filter(|q| q.topic == TOPIC)
                        .count();
                    (owned == 8).then_some(())
                },
            )
            .await;
        }

        let producer = Producer::new(
            support::client::client(&namesrv.addr, "bc-producer"),
            ProducerConfig::new("e2e_broadcast_producer"),
        )
        .expect("producer");
        let bodies: Vec<String> = (0..MESSAGES).map(|i| format!("bc-{i}")).collect();
        send_all(&producer, TOPIC, &bodies, 64).await;

        let expected: BTreeSet<String> = bodies.iter().cloned().collect();
        wait_all_delivered("consumer a", &[&log_a], &expected).await;
        wait_all_delivered("consumer b", &[&log_b], &expected).await;
        a.shutdown().await;
        b.shutdown().await;
        for (name, log) in [("a", &log_a), ("b", &log_b)] {
            let counts = counts(&[log]);
            assert_eq!(
                counts.len(),
                MESSAGES,
                "consumer {name} got only sent messages"
            );
            assert!(
                counts.values().all(|n| *n == 1),
                "consumer {name} got a message twice"
            );
        }
    });
}
