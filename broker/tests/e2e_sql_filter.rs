//! SQL92 filtering end to end: the Rust client produces messages with properties into a
//! real 2-shard `ringmq-broker`; a push consumer subscribed with a SQL92 selector receives
//! exactly the matching ones (checked by the brokers, not the client), once each; a
//! consumer whose selector does not parse fails to start with the broker's
//! `SUBSCRIPTION_PARSE_FAILED` and the error's position.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ringmq_client::{
    ClientError, ConsumeFromWhere, ConsumeResult, Message, MessageListener, MessageSelector,
    Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};
use support::client::{Log, counts, create_topic, runtime, wait_all_delivered};
use support::{Broker, BrokerOptions, Namesrv};

const MESSAGES: u32 = 300;
const TOPIC: &str = "E2eSqlFilterTopic";
const SELECTOR: &str = "n >= 100 AND n < 250 AND (TAGS IN ('x') OR region = 'eu')";

fn properties(i: u32) -> (Option<String>, &'static str, &'static str) {
    // Every 7th message has no `n` at all: it never matches.
    let n = (!i.is_multiple_of(7)).then(|| i.to_string());
    let tag = if i.is_multiple_of(2) { "x" } else { "y" };
    let region = if i.is_multiple_of(3) { "eu" } else { "us" };
    (n, tag, region)
}

fn matches(i: u32) -> bool {
    let (n, tag, region) = properties(i);
    n.is_some() && (100..250).contains(&i) && (tag == "x" || region == "eu")
}

#[test]
fn push_consumer_with_sql92_selector_receives_exactly_the_matching_messages() {
    let namesrv = Namesrv::start();
    let _broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-sql".into(),
            ..BrokerOptions::default()
        },
    );
    runtime().block_on(async {
        create_topic(&namesrv.addr, TOPIC, 2, 2).await;
        let producer = Producer::new(
            support::client::client(&namesrv.addr, "sql-producer"),
            ProducerConfig::new("e2e_sql_producer"),
        )
        .expect("producer");
        for i in 0..MESSAGES {
            let (n, tag, region) = properties(i);
            let mut message = Message::new(TOPIC, format!("sql-{i}"))
                .with_tags(tag)
                .with_property("region", region);
            if let Some(n) = n {
                message = message.with_property("n", n);
            }
            producer.send(message).await.expect("send");
        }

        // A selector that does not parse: the brokers refuse it and start() says where.
        let mut broken = PushConsumer::new(
            support::client::client(&namesrv.addr, "sql-broken"),
            PushConsumerConfig::new("e2e_sql_broken_group"),
        )
        .expect("push consumer");
        broken
            .subscribe_with(TOPIC, MessageSelector::sql("n >= 100 AND"))
            .expect("subscribe");
        let error = broken
            .start(MessageListener::concurrently(|_| async {
                ConsumeResult::Success
            }))
            .await
            .expect_err("a broken selector must not start");
        match &error {
            ClientError::Broker { code, remark, .. } => {
                assert_eq!(*code, 23, "SUBSCRIPTION_PARSE_FAILED: {remark}");
                assert!(remark.contains("line 1, column 13"), "{remark}");
            }
            other => panic!("expected the broker's refusal, got {other}"),
        }

        let log = Log::default();
        let mut consumer = PushConsumer::new(
            support::client::client(&namesrv.addr, "sql-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                ..PushConsumerConfig::new("e2e_sql_group")
            },
        )
        .expect("push consumer");
        consumer
            .subscribe_with(TOPIC, MessageSelector::sql(SELECTOR))
            .expect("subscribe");
        let recorder = log.clone();
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let log = recorder.clone();
                async move {
                    log.record(&messages);
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");

        let expected: BTreeSet<String> = (0..MESSAGES)
            .filter(|i| matches(*i))
            .map(|i| format!("sql-{i}"))
            .collect();
        assert!(expected.len() > 50 && expected.len() < 150);
        wait_all_delivered("sql92", &[&log], &expected).await;
        // Anything that should not have matched would arrive in the same pulls: give a
        // straggler time to show.
        tokio::time::sleep(Duration::from_secs(2)).await;
        consumer.shutdown().await;

        let counts = counts(&[&log]);
        let delivered: BTreeSet<String> = counts.keys().cloned().collect();
        assert_eq!(delivered, expected, "exactly the matching messages");
        assert!(
            counts.values().all(|n| *n == 1),
            "each delivered once: {counts:?}"
        );
    });
}
