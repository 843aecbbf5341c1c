//! Transactional messages end to end: a real 2-shard `ringmq-broker` (short check interval
//! and timeout) and the Rust client's transaction producer.
//!
//! - committed messages are consumed exactly once, rolled-back ones never;
//! - a local transaction answering UNKNOWN is checked back by the broker, and the checker's
//!   COMMIT delivers the message;
//! - a broker restart between the half message and its `END_TRANSACTION` still commits
//!   (the end reaches the restarted broker), and a half left UNKNOWN across a restart is
//!   checked back after it and committed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_client::{
    ConsumeFromWhere, ConsumeResult, LocalTransactionState, Message, MessageListener, Producer,
    ProducerConfig, PushConsumer, PushConsumerConfig, SendStatus,
};
use support::client::{Log, counts, create_topic, runtime, wait_all_delivered};
use support::{Broker, BrokerOptions, Namesrv};

const TOPIC: &str = "E2eTxTopic";
const PRODUCER_GROUP: &str = "e2e_tx_producer";
const CONSUMER_GROUP: &str = "e2e_tx_consumer";
const COMMITS: usize = 20;
const ROLLBACKS: usize = 10;
const UNKNOWNS: usize = 3;

/// Check interval and timeout short enough for a test, long enough that ends sent at once
/// usually arrive before any check.
const TRANSACTION_TOML: &str = "[transaction]\ntimeout_ms = 1000\ncheck_interval_ms = 500\n";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stops the broker (SIGTERM, clean exit) and starts it again on the same data.
async fn restart(broker: &Arc<Mutex<Broker>>) {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        let mut broker = lock(&broker);
        broker.stop();
        broker.restart();
    })
    .await
    .expect("restart task");
}

async fn send_tx(producer: &Producer, body: &str, state: LocalTransactionState) {
    let result = producer
        .send_in_transaction(
            Message::new(TOPIC, body.to_owned()),
            |_| async move { state },
        )
        .await
        .unwrap_or_else(|e| panic!("transactional send of {body} failed: {e}"));
    assert_eq!(result.send.status, SendStatus::Ok, "{body}");
    assert_eq!(result.state, state, "{body}");
}

#[test]
fn transactions_commit_roll_back_and_resolve_through_check_backs_across_restarts() {
    let namesrv = Namesrv::start();
    let broker = Arc::new(Mutex::new(Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-tx".into(),
            extra_config: TRANSACTION_TOML.into(),
            ..BrokerOptions::default()
        },
    )));
    let main = runtime();
    main.block_on(async {
        create_topic(&namesrv.addr, TOPIC, 2, 2).await;
        let producer = Producer::new(
            support::client::client(&namesrv.addr, "tx-producer"),
            ProducerConfig::new(PRODUCER_GROUP),
        )
        .expect("producer");
        let checked: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let seen = checked.clone();
        producer.set_transaction_checker(move |message| {
            let body = String::from_utf8_lossy(&message.body).into_owned();
            *lock(&seen).entry(body.clone()).or_insert(0) += 1;
            async move {
                if body.starts_with("rollback") {
                    LocalTransactionState::Rollback
                } else {
                    LocalTransactionState::Commit
                }
            }
        });
        // Brokers learn which connection belongs to the group from heartbeats; send them
        // often so a restarted broker knows the producer again quickly.
        let beating = producer.clone();
        let heartbeats = tokio::spawn(async move {
            loop {
                beating.heartbeat().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });

        // 1. The broker restarts while the local transaction runs; its COMMIT reaches the
        //    restarted broker.
        let restarting = broker.clone();
        let result = producer
            .send_in_transaction(
                Message::new(TOPIC, "restart-direct".to_owned()),
                |_| async move {
                    restart(&restarting).await;
                    LocalTransactionState::Commit
                },
            )
            .await
            .expect("transactional send before the restart");
        assert_eq!(result.send.status, SendStatus::Ok);

        // 2. Left UNKNOWN, then the broker restarts: the check-back after the restart
        //    commits it.
        send_tx(&producer, "restart-check", LocalTransactionState::Unknown).await;
        restart(&broker).await;

        // 3. Commits, rollbacks and unknowns resolved by check-backs.
        for i in 0..COMMITS {
            send_tx(
                &producer,
                &format!("commit-{i}"),
                LocalTransactionState::Commit,
            )
            .await;
        }
        for i in 0..ROLLBACKS {
            send_tx(
                &producer,
                &format!("rollback-{i}"),
                LocalTransactionState::Rollback,
            )
            .await;
        }
        for i in 0..UNKNOWNS {
            send_tx(
                &producer,
                &format!("unknown-{i}"),
                LocalTransactionState::Unknown,
            )
            .await;
        }

        let log = Log::default();
        let mut consumer = PushConsumer::new(
            support::client::client(&namesrv.addr, "tx-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                ..PushConsumerConfig::new(CONSUMER_GROUP)
            },
        )
        .expect("push consumer");
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        let sink = log.clone();
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let sink = sink.clone();
                async move {
                    sink.record(&messages);
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");

        let mut expected: BTreeSet<String> = (0..COMMITS).map(|i| format!("commit-{i}")).collect();
        expected.extend((0..UNKNOWNS).map(|i| format!("unknown-{i}")));
        expected.insert("restart-direct".into());
        expected.insert("restart-check".into());
        wait_all_delivered("committed transactions", &[&log], &expected).await;
        // Several more check rounds: nothing decided may come back, nothing rolled back
        // may appear.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let delivered = counts(&[&log]);
        let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
        let unexpected: Vec<_> = delivered
            .keys()
            .filter(|body| !expected.contains(*body))
            .collect();
        assert!(
            unexpected.is_empty(),
            "delivered but not committed: {unexpected:?}"
        );
        let checked = lock(&checked).clone();
        for body in (0..UNKNOWNS)
            .map(|i| format!("unknown-{i}"))
            .chain(["restart-check".to_owned()])
        {
            assert!(
                checked.contains_key(&body),
                "{body} was never checked back: {checked:?}"
            );
        }
        heartbeats.abort();
        consumer.shutdown().await;
        producer.shutdown();
    });
    lock(&broker).stop();
}
