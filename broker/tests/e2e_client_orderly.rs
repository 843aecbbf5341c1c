//! Orderly end to end: the Rust client sends messages with 8 keys through `send_ordered`
//! into a real 2-shard `ringmq-broker`; an orderly push consumer consumes them and a second
//! one joins the group mid-stream. Every message is consumed at least once, each consumer
//! sees the messages of every key in the order they were sent, and no queue is ever
//! consumed by both consumers at once (its hand-over from the first to the second happens
//! once, after the first stopped consuming it).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ringmq_client::{
    ConsumeFromWhere, Message, MessageExt, MessageListener, MessageQueue, OrderlyResult, Producer,
    ProducerConfig, PushConsumer, PushConsumerConfig,
};
use support::client::{
    Log, WAIT, create_topic, runtime, wait_all_delivered, wait_settled, wait_until,
};
use support::{Broker, BrokerOptions, Namesrv};

const KEYS: usize = 8;
const PER_KEY: usize = 150;
const TOPIC: &str = "E2eOrderlyTopic";
const GROUP: &str = "e2e_orderly_group";

fn body(key: usize, seq: usize) -> String {
    format!("key{key}-{seq:05}")
}

fn parse(body: &str) -> (usize, usize) {
    let (key, seq) = body
        .strip_prefix("key")
        .and_then(|rest| rest.split_once('-'))
        .unwrap_or_else(|| panic!("unexpected body {body}"));
    (
        key.parse().expect("key number"),
        seq.parse().expect("sequence number"),
    )
}

/// Which consumer is inside the listener for each queue right now, and every time a
/// consumer entered the listener for a queue the other one was still consuming.
#[derive(Clone, Default)]
struct Exclusivity {
    active: Arc<Mutex<HashMap<(String, i32), &'static str>>>,
    overlaps: Arc<Mutex<Vec<String>>>,
}

impl Exclusivity {
    fn enter(&self, name: &'static str, messages: &[MessageExt]) {
        let mut active = self.active.lock().expect("active");
        for m in messages {
            let queue = (m.broker_name.clone(), m.queue_id);
            if let Some(other) = active.insert(queue.clone(), name)
                && other != name
            {
                self.overlaps.lock().expect("overlaps").push(format!(
                    "{name} consumed {queue:?} offset {} while {other} was consuming it",
                    m.queue_offset
                ));
            }
        }
    }

    fn exit(&self, name: &'static str, messages: &[MessageExt]) {
        let mut active = self.active.lock().expect("active");
        for m in messages {
            let queue = (m.broker_name.clone(), m.queue_id);
            if active.get(&queue) == Some(&name) {
                active.remove(&queue);
            }
        }
    }
}

async fn consumer(namesrv: &str, name: &'static str, log: Log, ex: Exclusivity) -> PushConsumer {
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
        .start(MessageListener::orderly(move |messages| {
            let (log, ex) = (log.clone(), ex.clone());
            async move {
                ex.enter(name, &messages);
                log.record(&messages);
                // A little work per batch, so that the second consumer joins mid-stream.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                ex.exit(name, &messages);
                OrderlyResult::Success
            }
        }))
        .await
        .expect("start consumer");
    consumer
}

/// Sends `seqs` of every key, each key's messages one after the other (in order), keys in
/// parallel; checks each key stays on one queue with increasing offsets, and returns the
/// queues the keys went to.
async fn send_keys(producer: &Producer, seqs: std::ops::Range<usize>) -> BTreeSet<MessageQueue> {
    let mut used = BTreeSet::new();
    let mut tasks = Vec::new();
    for key in 0..KEYS {
        let producer = producer.clone();
        let seqs = seqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut placed = Vec::new();
            for seq in seqs {
                let result = producer
                    .send_ordered(Message::new(TOPIC, body(key, seq)), &format!("order-{key}"))
                    .await
                    .unwrap_or_else(|e| panic!("send_ordered key {key} seq {seq}: {e}"));
                placed.push(result);
            }
            placed
        }));
    }
    for (key, task) in tasks.into_iter().enumerate() {
        let placed = task.await.expect("send task");
        let queues: BTreeSet<_> = placed.iter().map(|r| r.queue.clone()).collect();
        assert_eq!(queues.len(), 1, "key {key} went to one queue: {queues:?}");
        assert!(
            placed
                .windows(2)
                .all(|w| w[0].queue_offset < w[1].queue_offset),
            "key {key}'s messages are stored in send order"
        );
        used.extend(queues);
    }
    used
}

/// Asserts that each queue's deliveries, in the order they happened, switch consumer at
/// most once (the single hand-over from a to b): the queue lock is exclusive.
fn assert_exclusive_queues(log_a: &Log, log_b: &Log) {
    let mut by_queue: BTreeMap<(String, i32), Vec<(u64, &str)>> = BTreeMap::new();
    for (name, log) in [("a", log_a), ("b", log_b)] {
        for d in log.snapshot() {
            by_queue
                .entry((d.broker, d.queue_id))
                .or_default()
                .push((d.order, name));
        }
    }
    for (queue, mut deliveries) in by_queue {
        deliveries.sort();
        let switches = deliveries.windows(2).filter(|w| w[0].1 != w[1].1).count();
        assert!(
            switches <= 1,
            "queue {queue:?} was consumed by both consumers interleaved ({switches} switches)"
        );
    }
}

/// Asserts that, per key, `log` holds strictly increasing sequence numbers.
fn assert_key_order(name: &str, log: &Log) {
    let mut last: BTreeMap<usize, usize> = BTreeMap::new();
    for delivery in log.snapshot() {
        let (key, seq) = parse(&delivery.body);
        if let Some(previous) = last.insert(key, seq) {
            assert!(
                seq > previous,
                "consumer {name} saw key {key} out of order: {previous} then {seq}"
            );
        }
    }
}

#[test]
fn orderly_consumers_keep_per_key_order_when_one_joins_mid_stream() {
    let namesrv = Namesrv::start();
    let _broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-ord".into(),
            ..BrokerOptions::default()
        },
    );
    runtime().block_on(async {
        create_topic(&namesrv.addr, TOPIC, 4, 2).await;
        let producer = Producer::new(
            support::client::client(&namesrv.addr, "ord-producer"),
            ProducerConfig::new("e2e_orderly_producer"),
        )
        .expect("producer");
        let (log_a, log_b) = (Log::default(), Log::default());
        let ex = Exclusivity::default();
        let mut a = consumer(&namesrv.addr, "ord-a", log_a.clone(), ex.clone()).await;

        send_keys(&producer, 0..PER_KEY / 2).await;
        wait_until("consumer a to consume", WAIT, || async {
            (log_a.len() >= KEYS).then_some(())
        })
        .await;
        let mut b = consumer(&namesrv.addr, "ord-b", log_b.clone(), ex.clone()).await;
        wait_settled(&[&a, &b], TOPIC, 8).await;
        let b_queues: BTreeSet<MessageQueue> = b
            .owned_queues()
            .into_iter()
            .filter(|q| q.topic == TOPIC)
            .collect();
        let used = send_keys(&producer, PER_KEY / 2..PER_KEY).await;

        let expected: BTreeSet<String> = (0..KEYS)
            .flat_map(|k| (0..PER_KEY).map(move |s| body(k, s)))
            .collect();
        wait_all_delivered("orderly", &[&log_a, &log_b], &expected).await;
        a.shutdown().await;
        b.shutdown().await;

        let redelivered = support::client::counts(&[&log_a, &log_b])
            .values()
            .filter(|n| **n > 1)
            .count();
        eprintln!(
            "consumer a saw {}, b saw {}, {redelivered} messages seen twice (queue hand-over)",
            log_a.len(),
            log_b.len()
        );
        let overlaps = ex.overlaps.lock().expect("overlaps").clone();
        assert!(
            overlaps.is_empty(),
            "a queue was consumed by both consumers at once ({} times), e.g. {:?}",
            overlaps.len(),
            &overlaps[..overlaps.len().min(3)]
        );
        assert_exclusive_queues(&log_a, &log_b);
        assert_key_order("a", &log_a);
        assert_key_order("b", &log_b);
        // Once the group has settled, messages sent to b's queues can only be consumed by b.
        if !used.is_disjoint(&b_queues) {
            assert!(!log_b.is_empty(), "the consumer that joined got a share");
        }
    });
}
