//! Push consumer tests against the in-memory mini broker.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::*;
use crate::instance::ClientConfig;
use crate::message::Message;
use crate::producer::{Producer, ProducerConfig};
use crate::testutil::mini_broker::MiniBroker;
use crate::testutil::{fake_namesrv, route_of};

pub(super) const WAIT: Duration = Duration::from_secs(10);

pub(super) async fn setup(group: &str) -> (MiniBroker, String) {
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

pub(super) fn instance(namesrv: &str, name: &str) -> ClientInstance {
    let mut config = ClientConfig::new(namesrv);
    config.instance_name = Some(name.to_owned());
    ClientInstance::new(config).expect("instance")
}

pub(super) async fn produce(
    namesrv: &str,
    bodies: impl IntoIterator<Item = String>,
    key: Option<&str>,
) {
    let producer =
        Producer::new(instance(namesrv, "producer"), ProducerConfig::new("PG")).expect("producer");
    for body in bodies {
        let message = Message::new("T", body);
        match key {
            Some(key) => producer.send_ordered(message, key).await,
            None => producer.send(message).await,
        }
        .expect("sent");
    }
}

pub(super) fn config(group: &str) -> PushConsumerConfig {
    PushConsumerConfig {
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        ..PushConsumerConfig::new(group)
    }
}

pub(super) async fn collect(rx: &mut mpsc::Receiver<MessageExt>, n: usize) -> Vec<MessageExt> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(message)) => out.push(message),
            _ => panic!("received {} of {n} messages", out.len()),
        }
    }
    out
}

#[tokio::test]
async fn concurrent_consumer_receives_every_message_and_commits() {
    let (broker, namesrv) = setup("G1").await;
    produce(&namesrv, (0..20).map(|i| format!("m{i}")), None).await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut consumer = PushConsumer::new(instance(&namesrv, "c1"), config("G1")).expect("consumer");
    consumer.subscribe("T", "*").expect("subscribe");
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
    let received = collect(&mut rx, 20).await;
    let bodies: BTreeSet<_> = received.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), 20);
    assert_eq!(
        consumer
            .owned_queues()
            .iter()
            .filter(|q| q.topic == "T")
            .count(),
        4
    );
    consumer.shutdown().await;
    let committed: i64 = (0..4)
        .map(|q| broker.committed("G1", "T", q).unwrap_or(0))
        .sum();
    assert_eq!(committed, 20);
    assert!(broker.state.lock().expect("state").members["G1"].is_empty());
}

#[tokio::test]
async fn reconsume_later_redelivers_through_the_retry_topic() {
    let (broker, namesrv) = setup("G2").await;
    produce(&namesrv, ["good".to_owned(), "bad".to_owned()], None).await;
    let (tx, mut rx) = mpsc::channel(100);
    let mut consumer = PushConsumer::new(instance(&namesrv, "c2"), config("G2")).expect("consumer");
    consumer.subscribe("T", "*").expect("subscribe");
    consumer
        .start(MessageListener::concurrently(move |messages| {
            let tx = tx.clone();
            async move {
                let mut result = ConsumeResult::Success;
                for message in messages {
                    if &message.body[..] == b"bad" && message.reconsume_times == 0 {
                        result = ConsumeResult::ReconsumeLater;
                    }
                    let _ = tx.send(message).await;
                }
                result
            }
        }))
        .await
        .expect("started");
    let received = collect(&mut rx, 3).await;
    let redelivered = received
        .iter()
        .find(|m| m.reconsume_times == 1)
        .expect("redelivery");
    assert_eq!(&redelivered.body[..], b"bad");
    assert_eq!(redelivered.topic, "%RETRY%G2");
    assert_eq!(redelivered.original_topic(), "T");
    consumer.shutdown().await;
    let sent_back = broker.state.lock().expect("state").sent_back.clone();
    assert_eq!(sent_back.len(), 1);
    assert_eq!(
        (sent_back[0].group.as_str(), sent_back[0].delay_level),
        ("G2", 0)
    );
    assert_eq!(&sent_back[0].body[..], b"bad");
}

#[tokio::test]
async fn orderly_consumer_keeps_the_order_of_a_key() {
    let (broker, namesrv) = setup("G3").await;
    produce(&namesrv, (0..10).map(|i| format!("{i}")), Some("order-1")).await;
    let (tx, mut rx) = mpsc::channel(100);
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut consumer = PushConsumer::new(
        instance(&namesrv, "c3"),
        PushConsumerConfig {
            suspend_current_queue_time: Duration::from_millis(50),
            ..config("G3")
        },
    )
    .expect("consumer");
    consumer.subscribe("T", "*").expect("subscribe");
    let seen = attempts.clone();
    consumer
        .start(MessageListener::orderly(move |messages| {
            let tx = tx.clone();
            let seen = seen.clone();
            async move {
                // The fourth message fails once: the queue must pause, not skip it.
                if &messages[0].body[..] == b"3" && seen.fetch_add(1, Ordering::Relaxed) == 0 {
                    return OrderlyResult::SuspendCurrentQueueAMoment;
                }
                for message in messages {
                    let _ = tx.send(message).await;
                }
                OrderlyResult::Success
            }
        }))
        .await
        .expect("started");
    let received = collect(&mut rx, 10).await;
    let order: Vec<String> = received
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(order, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(received[3].reconsume_times, 1);
    assert!(!broker.state.lock().expect("state").locks.is_empty());
    consumer.shutdown().await;
    assert!(broker.state.lock().expect("state").locks.is_empty());
}

#[tokio::test]
async fn group_members_split_the_queues() {
    let (_broker, namesrv) = setup("G4").await;
    let listener = MessageListener::concurrently(|_| async { ConsumeResult::Success });
    let mut a = PushConsumer::new(instance(&namesrv, "a"), config("G4")).expect("a");
    a.subscribe("T", "*").expect("subscribe");
    a.start(listener.clone()).await.expect("a started");
    let mut b = PushConsumer::new(instance(&namesrv, "b"), config("G4")).expect("b");
    b.subscribe("T", "*").expect("subscribe");
    b.start(listener).await.expect("b started");
    // The mini broker sends no NOTIFY_CONSUMER_IDS_CHANGED: rebalance both explicitly.
    a.rebalance().await.expect("rebalance");
    b.rebalance().await.expect("rebalance");
    let of_t = |c: &PushConsumer| -> BTreeSet<MessageQueue> {
        c.owned_queues()
            .into_iter()
            .filter(|q| q.topic == "T")
            .collect()
    };
    let (qa, qb) = (of_t(&a), of_t(&b));
    assert_eq!(qa.len(), 2, "{qa:?}");
    assert_eq!(qb.len(), 2, "{qb:?}");
    assert!(qa.is_disjoint(&qb));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn broadcasting_consumers_each_get_everything() {
    let (_broker, namesrv) = setup("G5").await;
    produce(&namesrv, (0..8).map(|i| format!("b{i}")), None).await;
    let dir = std::env::temp_dir().join(format!(
        "ringmq-bcast-{}-{}",
        std::process::id(),
        crate::producer::now_ms()
    ));
    let mut consumers = Vec::new();
    let mut receivers = Vec::new();
    for name in ["x", "y"] {
        let (tx, rx) = mpsc::channel(100);
        let mut consumer = PushConsumer::new(
            instance(&namesrv, name),
            PushConsumerConfig {
                message_model: MessageModel::Broadcasting,
                offset_file: Some(dir.join(name).join("offsets.json")),
                ..config("G5")
            },
        )
        .expect("consumer");
        consumer.subscribe("T", "*").expect("subscribe");
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
        consumers.push(consumer);
        receivers.push(rx);
    }
    for rx in &mut receivers {
        assert_eq!(collect(rx, 8).await.len(), 8);
    }
    for consumer in &mut consumers {
        consumer.shutdown().await;
    }
    let saved = std::fs::read_to_string(dir.join("x").join("offsets.json")).expect("offset file");
    assert!(saved.contains("\"offset\""), "{saved}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tag_subscriptions_filter_client_side() {
    let (_broker, namesrv) = setup("G6").await;
    let producer =
        Producer::new(instance(&namesrv, "p6"), ProducerConfig::new("PG")).expect("producer");
    for (body, tag) in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("c1", "C")] {
        producer
            .send(Message::new("T", body).with_tags(tag))
            .await
            .expect("sent");
    }
    let (tx, mut rx) = mpsc::channel(100);
    let mut consumer = PushConsumer::new(instance(&namesrv, "c6"), config("G6")).expect("consumer");
    consumer.subscribe("T", "A || C").expect("subscribe");
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
    let received = collect(&mut rx, 3).await;
    let tags: BTreeSet<_> = received
        .iter()
        .map(|m| m.tags().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tags, BTreeSet::from(["A".to_owned(), "C".to_owned()]));
    consumer.shutdown().await;
}

/// Regression: a rebalance that gave up an orderly queue unlocked it on the broker while a
/// batch of it was still being consumed, and the new owner read its start offset before
/// locking, so the queue was consumed by two members at once and its in-flight message was
/// redelivered. Now the old owner waits for the batch, commits, then unlocks; the new one
/// takes the queue only once locked.
#[tokio::test]
async fn orderly_queue_hand_over_is_exclusive_and_loses_no_offset() {
    let (_broker, namesrv) = setup("G9").await;
    for key in ["k0", "k1", "k2", "k3", "k4", "k5"] {
        produce(&namesrv, (0..4).map(|i| format!("{key}-{i}")), Some(key)).await;
    }
    type Active = Arc<std::sync::Mutex<HashMap<i32, &'static str>>>;
    let active: Active = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(100);
    let listener = |name: &'static str| {
        let (active, overlaps, tx) = (active.clone(), overlaps.clone(), tx.clone());
        MessageListener::orderly(move |messages| {
            let (active, overlaps, tx) = (active.clone(), overlaps.clone(), tx.clone());
            async move {
                let queue = messages[0].queue_id;
                if let Some(other) = active.lock().expect("active").insert(queue, name)
                    && other != name
                {
                    overlaps.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                active.lock().expect("active").remove(&queue);
                for message in messages {
                    let _ = tx.send(message).await;
                }
                OrderlyResult::Success
            }
        })
    };
    let mut a = PushConsumer::new(instance(&namesrv, "a9"), config("G9")).expect("a");
    a.subscribe("T", "*").expect("subscribe");
    a.start(listener("a")).await.expect("a started");
    let mut b = PushConsumer::new(instance(&namesrv, "b9"), config("G9")).expect("b");
    b.subscribe("T", "*").expect("subscribe");
    b.start(listener("b")).await.expect("b started");
    // A is in the middle of batches of every queue it owns when the group splits.
    let first = collect(&mut rx, 1).await;
    // The mini broker sends no NOTIFY_CONSUMER_IDS_CHANGED: rebalance both explicitly.
    a.rebalance().await.expect("rebalance a");
    b.rebalance().await.expect("rebalance b");
    let rest = collect(&mut rx, 23).await;
    assert_eq!(
        overlaps.load(Ordering::Relaxed),
        0,
        "a queue consumed by both at once"
    );
    let bodies: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    let distinct: BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(
        distinct.len(),
        24,
        "every message once, none redelivered: {bodies:?}"
    );
    assert!(!b.owned_queues().is_empty(), "b took its share");
    a.shutdown().await;
    b.shutdown().await;
}
