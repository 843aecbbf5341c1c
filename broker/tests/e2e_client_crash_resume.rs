//! Consumer crash and resume end to end: a push consumer of a real 2-shard `ringmq-broker`
//! commits offsets while consuming, then crashes mid-stream (its tokio runtime is dropped:
//! no shutdown, no final commit, its connections just close); a new consumer of the same
//! group resumes from the committed offsets. Nothing is lost, and the messages delivered
//! twice are exactly those the first consumer had consumed past its last commit (bounded
//! by what was uncommitted).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, MessageListener, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use support::client::{
    Log, WAIT, counts, create_topic, runtime, send_all, wait_all_delivered, wait_until,
};
use support::{Broker, BrokerOptions, Namesrv};

const FIRST: usize = 4_000;
const SECOND: usize = 1_000;
const TOPIC: &str = "E2eCrashTopic";
const GROUP: &str = "e2e_crash_group";

async fn consumer(namesrv: &str, name: &str, log: Log) -> PushConsumer {
    let mut consumer = PushConsumer::new(
        support::client::client(namesrv, name),
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            consume_threads: 4,
            persist_interval: Duration::from_millis(300),
            ..PushConsumerConfig::new(GROUP)
        },
    )
    .expect("push consumer");
    consumer.subscribe(TOPIC, "*").expect("subscribe");
    consumer
        .start(MessageListener::concurrently(move |messages| {
            let log = log.clone();
            async move {
                // Slow enough that the crash happens mid-stream.
                tokio::time::sleep(Duration::from_millis(5)).await;
                log.record(&messages);
                ConsumeResult::Success
            }
        }))
        .await
        .expect("start consumer");
    consumer
}

/// The group's committed offset per (broker, queue id), as the brokers hold it.
async fn committed(admin: &Admin) -> BTreeMap<(String, i32), i64> {
    let stats = admin.consume_stats(GROUP, Some(TOPIC)).await.ok();
    stats
        .map(|s| {
            s.offset_table
                .into_iter()
                .filter(|(q, _)| q.topic == TOPIC)
                .map(|(q, o)| ((q.broker_name, q.queue_id), o.consumer_offset))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_new_consumer_resumes_from_committed_offsets_after_a_crash() {
    let namesrv = Namesrv::start();
    let _broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-crash".into(),
            ..BrokerOptions::default()
        },
    );
    let main = runtime();
    let admin = main.block_on(async {
        create_topic(&namesrv.addr, TOPIC, 2, 2).await;
        Admin::new(support::client::client(&namesrv.addr, "crash-admin"))
    });
    let producer = main.block_on(async {
        Producer::new(
            support::client::client(&namesrv.addr, "crash-producer"),
            ProducerConfig::new("e2e_crash_producer"),
        )
        .expect("producer")
    });
    let first: Vec<String> = (0..FIRST).map(|i| format!("crash-{i}")).collect();
    let second: Vec<String> = (FIRST..FIRST + SECOND)
        .map(|i| format!("crash-{i}"))
        .collect();
    main.block_on(send_all(&producer, TOPIC, &first, 64));

    // The first consumer lives on its own runtime, so that dropping it is a crash.
    let crashing = runtime();
    let log_a = Log::default();
    let consumer_a = crashing.block_on(consumer(&namesrv.addr, "crash-a", log_a.clone()));
    main.block_on(async {
        wait_until(
            "the first consumer to commit offsets mid-stream",
            WAIT,
            || async {
                let total: i64 = committed(&admin).await.values().filter(|o| **o > 0).sum();
                (total >= (FIRST / 4) as i64).then_some(())
            },
        )
        .await;
    });
    // Crash: the consumer's tasks and connections vanish without a shutdown.
    drop(crashing);
    drop(consumer_a);
    let consumed_by_a = log_a.snapshot();
    assert!(
        consumed_by_a.len() < FIRST,
        "the crash happened mid-stream ({} of {FIRST} consumed)",
        consumed_by_a.len()
    );

    main.block_on(async {
        // Let any commit already on the wire land before reading what the broker holds;
        // a later commit can only raise an offset, which keeps the checks below valid.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let committed = committed(&admin).await;
        assert!(
            !committed.is_empty(),
            "the broker holds the group's offsets"
        );
        let at = |d: &support::client::Delivery| {
            committed
                .get(&(d.broker.clone(), d.queue_id))
                .copied()
                .unwrap_or(0)
        };
        let uncommitted: BTreeSet<String> = consumed_by_a
            .iter()
            .filter(|d| d.offset >= at(d))
            .map(|d| d.body.clone())
            .collect();

        send_all(&producer, TOPIC, &second, 64).await;
        let log_b = Log::default();
        let mut b = consumer(&namesrv.addr, "crash-b", log_b.clone()).await;
        let expected: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
        wait_all_delivered("after the crash", &[&log_a, &log_b], &expected).await;
        b.shutdown().await;

        let by_b = log_b.snapshot();
        for d in &by_b {
            assert!(
                d.offset >= at(d),
                "the new consumer resumed below the committed offset: {d:?} (committed {})",
                at(d)
            );
        }
        let seen_by_a: BTreeSet<&str> = consumed_by_a.iter().map(|d| d.body.as_str()).collect();
        let duplicates: BTreeSet<String> = by_b
            .iter()
            .filter(|d| seen_by_a.contains(d.body.as_str()))
            .map(|d| d.body.clone())
            .collect();
        assert!(
            duplicates.is_subset(&uncommitted),
            "only uncommitted messages are redelivered"
        );
        eprintln!(
            "consumer a consumed {}, {} of them uncommitted at the crash; {} redelivered to b",
            consumed_by_a.len(),
            uncommitted.len(),
            duplicates.len()
        );
        let counts = counts(&[&log_b]);
        assert!(
            counts.values().all(|n| *n == 1),
            "the new consumer alone gets nothing twice"
        );
    });
}
