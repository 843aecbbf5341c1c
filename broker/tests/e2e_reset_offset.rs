//! `resetOffsetByTime` end to end against the real binaries (`ringmq-namesrv`, a 2-shard
//! `ringmq-broker`, the `ringmq-broker admin` command):
//! - with a Rust push consumer running, a reset to a time between two batches makes every
//!   shard commit the new offsets and send `RESET_CONSUMER_CLIENT_OFFSET`; the consumer gets
//!   exactly the second batch again, and nothing of the first;
//! - with the group offline, `INVOKE_BROKER_TO_RESET_OFFSET` is answered
//!   `CONSUMER_NOT_ONLINE` (as RocketMQ's broker does) and the command falls back to updating
//!   the committed offsets, as mqadmin does; the one-queue form (`-b -q -o`) too.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::Duration;

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, MessageListener, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use ringmq_wire::ResponseCode;
use support::client::{Log, WAIT, counts, create_topic, runtime, send_all, wait_until};
use support::{Broker, BrokerOptions, Namesrv};

const TOPIC: &str = "E2eResetTopic";
const GROUP: &str = "e2e_reset_group";
const BATCH: usize = 20;

fn admin_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .arg("admin")
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ringmq-broker admin")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Committed offset and max offset per (broker, queue) of the group on the topic.
async fn progress(admin: &Admin) -> BTreeMap<(String, i32), (i64, i64)> {
    let stats = admin.consume_stats(GROUP, Some(TOPIC)).await.ok();
    stats
        .map(|s| {
            s.offset_table
                .into_iter()
                .filter(|(q, _)| q.topic == TOPIC)
                .map(|(q, o)| {
                    (
                        (q.broker_name, q.queue_id),
                        (o.consumer_offset, o.broker_offset),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_caught_up(admin: &Admin, what: &str) {
    wait_until(what, WAIT, || async {
        let progress = progress(admin).await;
        (progress.len() == 4 && progress.values().all(|(c, b)| c == b && *b > 0)).then_some(())
    })
    .await;
}

#[test]
fn reset_by_time_rewinds_a_running_consumer_and_an_offline_group() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-reset".into(),
            ..BrokerOptions::default()
        },
    );
    let ns = namesrv.addr.clone();
    let main = runtime();
    let first: Vec<String> = (0..BATCH).map(|i| format!("first-{i}")).collect();
    let second: Vec<String> = (0..BATCH).map(|i| format!("second-{i}")).collect();
    let log = Log::default();
    let (admin, mut consumer, between) = main.block_on(async {
        create_topic(&ns, TOPIC, 2, 2).await;
        let admin = Admin::new(support::client::client(&ns, "reset-admin"));
        let producer = Producer::new(
            support::client::client(&ns, "reset-producer"),
            ProducerConfig::new("e2e_reset_producer"),
        )
        .expect("producer");
        send_all(&producer, TOPIC, &first, 8).await;
        // Store times are whole milliseconds: leave a clear gap around the reset time.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let between = now_ms();
        tokio::time::sleep(Duration::from_millis(50)).await;
        send_all(&producer, TOPIC, &second, 8).await;
        producer.shutdown();

        let mut consumer = PushConsumer::new(
            support::client::client(&ns, "reset-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                persist_interval: Duration::from_millis(300),
                ..PushConsumerConfig::new(GROUP)
            },
        )
        .expect("consumer");
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        let recorded = log.clone();
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let log = recorded.clone();
                async move {
                    log.record(&messages);
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");
        wait_until("every message consumed once", WAIT, || async {
            (log.len() >= 2 * BATCH).then_some(())
        })
        .await;
        wait_caught_up(&admin, "the consumer's offsets to reach the end").await;
        (admin, consumer, between)
    });

    // Online: the second batch comes again, the first does not.
    let between_arg = between.to_string();
    let out = admin_cli(&[
        "resetOffsetByTime",
        "-n",
        &ns,
        "-g",
        GROUP,
        "-t",
        TOPIC,
        "-s",
        &between_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("#brokerName") && printed.contains("e2e-reset-s1"),
        "{printed}"
    );
    assert!(
        !printed.contains("updated directly"),
        "online on every shard: {printed}"
    );
    main.block_on(async {
        wait_until("the second batch redelivered", WAIT, || async {
            let seen = counts(&[&log]);
            second.iter().all(|b| seen.get(b) == Some(&2)).then_some(())
        })
        .await;
        wait_caught_up(&admin, "the consumer's offsets back at the end").await;
        let seen = counts(&[&log]);
        let again: BTreeSet<&String> = first.iter().filter(|b| seen.get(*b) != Some(&1)).collect();
        assert!(again.is_empty(), "first batch redelivered: {again:?}");
        consumer.shutdown().await;
        wait_until("the consumer to leave the brokers", WAIT, || async {
            let gone = admin
                .consumer_connection(GROUP)
                .await
                .map_or(true, |c| c.connection_set.is_empty());
            gone.then_some(())
        })
        .await;

        // Offline: the broker says so, as RocketMQ's does.
        let refused = admin
            .invoke_broker_to_reset_offset(&broker.shard_addr(0), GROUP, TOPIC, 0, true, None)
            .await
            .expect_err("no consumer online");
        assert_eq!(
            refused.response_code(),
            Some(ResponseCode::ConsumerNotOnline.as_i32()),
            "{refused}"
        );
    });
    // ... and the command updates the committed offsets instead.
    let out = admin_cli(&[
        "resetOffsetByTime",
        "-n",
        &ns,
        "-g",
        GROUP,
        "-t",
        TOPIC,
        "-s",
        "1970-01-01#00:00:00:000",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(
        report["brokers"]
            .as_object()
            .is_some_and(|b| b.len() == 2 && b.values().all(|p| p == "offline")),
        "{report}"
    );
    main.block_on(async {
        let progress = progress(&admin).await;
        assert_eq!(progress.len(), 4);
        assert!(progress.values().all(|(c, _)| *c == 0), "{progress:?}");
    });
    // The one-queue form.
    let out = admin_cli(&[
        "resetOffsetByTime",
        "-n",
        &ns,
        "-g",
        GROUP,
        "-t",
        TOPIC,
        "-s",
        "now",
        "-b",
        &broker.shard_addr(1),
        "-q",
        "1",
        "-o",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("reset consumer offset to 3"),
        "{}",
        text(&out)
    );
    main.block_on(async {
        let progress = progress(&admin).await;
        assert_eq!(
            progress[&("e2e-reset-s1".to_owned(), 1)].0,
            3,
            "{progress:?}"
        );
        assert_eq!(
            progress[&("e2e-reset-s0".to_owned(), 1)].0,
            0,
            "{progress:?}"
        );
    });
}
