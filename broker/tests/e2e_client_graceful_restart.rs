//! Graceful broker restart mid-stream end to end (issue 6): a real 2-shard
//! `ringmq-broker` is stopped with SIGTERM while a push consumer consumes, then restarted
//! on the same data; the consumer carries on, nothing is lost (including messages sent
//! after the restart), and the group's committed offsets end at every queue's end.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, MessageListener, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use support::client::{
    CLUSTER, Log, WAIT, counts, create_topic, runtime, send_all, wait_all_delivered, wait_until,
};
use support::{Broker, BrokerOptions, Namesrv};

const BEFORE: usize = 4_000;
const AFTER: usize = 500;
const TOPIC: &str = "E2eRestartTopic";
const GROUP: &str = "e2e_restart_group";

#[test]
fn consumer_loses_nothing_across_a_graceful_broker_restart() {
    let namesrv = Namesrv::start();
    let mut broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-restart".into(),
            ..BrokerOptions::default()
        },
    );
    let main = runtime();
    let before: Vec<String> = (0..BEFORE).map(|i| format!("restart-{i}")).collect();
    let after: Vec<String> = (BEFORE..BEFORE + AFTER)
        .map(|i| format!("restart-{i}"))
        .collect();
    let log = Log::default();
    let (producer, mut consumer) = main.block_on(async {
        create_topic(&namesrv.addr, TOPIC, 4, 2).await;
        let producer = Producer::new(
            support::client::client(&namesrv.addr, "restart-producer"),
            ProducerConfig::new("e2e_restart_producer"),
        )
        .expect("producer");
        send_all(&producer, TOPIC, &before, 64).await;
        let mut consumer = PushConsumer::new(
            support::client::client(&namesrv.addr, "restart-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                consume_threads: 4,
                persist_interval: Duration::from_millis(500),
                ..PushConsumerConfig::new(GROUP)
            },
        )
        .expect("push consumer");
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        let sink = log.clone();
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let sink = sink.clone();
                async move {
                    // Slow enough that the broker stops mid-stream.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    sink.record(&messages);
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");
        (producer, consumer)
    });

    support::wait_for("the consumer to be mid-stream", WAIT, || {
        (log.len() >= BEFORE / 5).then_some(())
    });
    broker.stop();
    let at_stop = log.len();
    broker.restart();

    main.block_on(async {
        let admin = Admin::new(support::client::client(&namesrv.addr, "restart-admin"));
        wait_until("both shards registered again", WAIT, || async {
            let info = admin.cluster_info().await.ok()?;
            (info.cluster_addr_table.get(CLUSTER)?.len() == 2).then_some(())
        })
        .await;
        // The producer's connections broke with the old process; its sends retry.
        send_all(&producer, TOPIC, &after, 16).await;
        let expected: BTreeSet<String> = before.iter().chain(&after).cloned().collect();
        wait_all_delivered("across the restart", &[&log], &expected).await;
        consumer.shutdown().await;

        let counts = counts(&[&log]);
        assert_eq!(counts.len(), BEFORE + AFTER, "only sent messages arrive");
        let redelivered = counts.values().filter(|n| **n > 1).count();
        eprintln!(
            "{at_stop} of {BEFORE} consumed when the broker stopped; {redelivered} redelivered"
        );
        // The offsets committed before the stop survived it, and the consumer's final
        // commit (at shutdown) reached every queue's end.
        let stats = admin
            .consume_stats(GROUP, Some(TOPIC))
            .await
            .expect("consume stats");
        let queues: Vec<_> = stats
            .offset_table
            .iter()
            .filter(|(q, _)| q.topic == TOPIC)
            .collect();
        assert_eq!(queues.len(), 8, "progress for every queue");
        for (queue, progress) in queues {
            assert_eq!(
                progress.consumer_offset, progress.broker_offset,
                "{queue:?} committed to its end"
            );
        }
    });
}
