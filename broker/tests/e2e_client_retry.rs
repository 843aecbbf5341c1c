//! Delayed messages, consumer retry and dead-letter end to end: a real 1-shard
//! `ringmq-broker` (every delay level 1 s, level 18 4 s) driven by the Rust client.
//!
//! - a message sent with delay level 1 arrives, stored again at least 1 s after it was sent;
//! - a message a push consumer fails once comes back from `%RETRY%<group>` with
//!   reconsume times 1 and `RETRY_TOPIC` naming the original topic;
//! - a message that always fails lands in `%DLQ%<group>` after `max_reconsume_times`;
//! - a delayed message pending when the broker stops (SIGTERM) arrives after the restart.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, Message, MessageExt, MessageListener, Producer,
    ProducerConfig, PushConsumer, PushConsumerConfig,
};
use support::client::{CLUSTER, WAIT, client, create_topic, runtime, wait_until};
use support::{Broker, BrokerOptions, Namesrv};

const TOPIC: &str = "E2eRetryTopic";
const DELAY_LEVELS: &str = "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 4s";

/// What a listener saw: (body, reconsume times, RETRY_TOPIC, store time, born time).
type Seen = Arc<Mutex<Vec<(String, i32, Option<String>, i64, i64)>>>;

fn record(seen: &Seen, messages: &[MessageExt]) {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for m in messages {
        seen.push((
            String::from_utf8_lossy(&m.body).into_owned(),
            m.reconsume_times,
            m.property("RETRY_TOPIC").map(str::to_owned),
            m.store_timestamp,
            m.born_timestamp,
        ));
    }
}

fn snapshot(seen: &Seen) -> Vec<(String, i32, Option<String>, i64, i64)> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

async fn consumer(
    namesrv: &str,
    group: &str,
    max_reconsume: Option<i32>,
    seen: Seen,
) -> PushConsumer {
    let mut consumer = PushConsumer::new(
        client(namesrv, group),
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            max_reconsume_times: max_reconsume,
            persist_interval: Duration::from_millis(500),
            ..PushConsumerConfig::new(group)
        },
    )
    .expect("push consumer");
    consumer.subscribe(TOPIC, "*").expect("subscribe");
    consumer
        .start(MessageListener::concurrently(move |messages| {
            let seen = seen.clone();
            async move {
                record(&seen, &messages);
                // "fail-once" fails its first delivery; "always-fail" every one.
                let fail = messages.iter().any(|m| {
                    let body = String::from_utf8_lossy(&m.body);
                    body == "always-fail" || (body == "fail-once" && m.reconsume_times == 0)
                });
                if fail {
                    ConsumeResult::ReconsumeLater
                } else {
                    ConsumeResult::Success
                }
            }
        }))
        .await
        .expect("start consumer");
    consumer
}

#[test]
fn delayed_retried_and_dead_lettered_messages_and_delays_across_a_restart() {
    let namesrv = Namesrv::start();
    let mut broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-retry".into(),
            shards: 1,
            extra_config: format!("[schedule]\nmessage_delay_level = \"{DELAY_LEVELS}\"\n"),
            ..BrokerOptions::default()
        },
    );
    let main = runtime();
    let seen: Seen = Arc::default();
    let seen_dlq: Seen = Arc::default();
    let (producer, mut retrying, mut dead_lettering) = main.block_on(async {
        create_topic(&namesrv.addr, TOPIC, 1, 1).await;
        let retrying = consumer(&namesrv.addr, "e2e_retry_group", None, seen.clone()).await;
        let dead_lettering =
            consumer(&namesrv.addr, "e2e_dlq_group", Some(1), seen_dlq.clone()).await;
        let producer = Producer::new(
            client(&namesrv.addr, "retry-producer"),
            ProducerConfig::new("e2e_retry_producer"),
        )
        .expect("producer");
        producer
            .send(Message::new(TOPIC, "delayed").with_delay_level(1))
            .await
            .expect("send delayed");
        producer
            .send(Message::new(TOPIC, "fail-once"))
            .await
            .expect("send");
        producer
            .send(Message::new(TOPIC, "always-fail"))
            .await
            .expect("send");
        (producer, retrying, dead_lettering)
    });

    // The delayed message: delivered once, stored again at least a level later.
    let delayed = support::wait_for("the delayed message", WAIT, || {
        snapshot(&seen).into_iter().find(|s| s.0 == "delayed")
    });
    assert!(
        delayed.3 >= delayed.4 + 1_000,
        "stored for delivery at {} ms, sent at {} ms: not delayed",
        delayed.3,
        delayed.4
    );
    assert_eq!(delayed.1, 0);

    // Failed once: back from the retry topic with one reconsume.
    let retried = support::wait_for("the retried message", WAIT, || {
        snapshot(&seen)
            .into_iter()
            .find(|s| s.0 == "fail-once" && s.1 == 1)
    });
    assert_eq!(
        retried.2.as_deref(),
        Some(TOPIC),
        "RETRY_TOPIC names the topic"
    );

    main.block_on(async {
        let admin = Admin::new(client(&namesrv.addr, "retry-admin"));
        // Always failing with max 1 reconsume: delivered twice, then dead-lettered.
        wait_until("the dead-lettered message", WAIT, || async {
            let stats = admin.topic_stats("%DLQ%e2e_dlq_group").await.ok()?;
            let stored: i64 = stats.offset_table.values().map(|o| o.max_offset).sum();
            (stored == 1).then_some(())
        })
        .await;
        let route = admin
            .topic_route("%RETRY%e2e_retry_group")
            .await
            .expect("the retry topic is routed");
        assert_eq!(route.queue_datas.len(), 1);
        let deliveries: Vec<i32> = snapshot(&seen_dlq)
            .into_iter()
            .filter(|s| s.0 == "always-fail")
            .map(|s| s.1)
            .collect();
        assert_eq!(deliveries, vec![0, 1], "two deliveries before the DLQ");
        assert_eq!(
            snapshot(&seen).iter().filter(|s| s.0 == "delayed").count(),
            1,
            "the delayed message arrived once"
        );

        // A delayed message pending across a clean restart.
        producer
            .send(Message::new(TOPIC, "across-restart").with_delay_level(18))
            .await
            .expect("send delayed");
    });
    broker.stop();
    broker.restart();
    main.block_on(async {
        let admin = Admin::new(client(&namesrv.addr, "retry-admin-2"));
        wait_until("the shard registered again", WAIT, || async {
            let info = admin.cluster_info().await.ok()?;
            (info.cluster_addr_table.get(CLUSTER)?.len() == 1).then_some(())
        })
        .await;
        wait_until("the delayed message after the restart", WAIT, || async {
            snapshot(&seen)
                .iter()
                .any(|s| s.0 == "across-restart")
                .then_some(())
        })
        .await;
        retrying.shutdown().await;
        dead_lettering.shutdown().await;
    });
    let across: Vec<_> = snapshot(&seen)
        .into_iter()
        .filter(|s| s.0 == "across-restart")
        .collect();
    assert_eq!(across.len(), 1, "delivered once across a clean restart");
}
