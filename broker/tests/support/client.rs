//! Helpers for the end-to-end tests of the Rust client (`e2e_client_*.rs`) against the
//! real binaries: a tokio runtime, topic creation, client instances with distinct ids,
//! a consumed-messages log, and waiting for a group's rebalance to settle.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::{Admin, ClientConfig, ClientInstance, MessageExt, PushConsumer};
use ringmq_wire::body::topic::TopicConfig;

/// The cluster name the harness's brokers register under.
pub const CLUSTER: &str = "E2eCluster";

/// Generous wait for anything that crosses the network (shared, oversubscribed box).
pub const WAIT: Duration = Duration::from_secs(60);

/// A multi-threaded tokio runtime for one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A client instance with its own instance name, so that several consumers of one group
/// in this process have distinct client ids.
pub fn client(namesrv: &str, instance: &str) -> ClientInstance {
    ClientInstance::new(ClientConfig {
        instance_name: Some(format!("{instance}-{}", std::process::id())),
        ..ClientConfig::new(namesrv)
    })
    .expect("client instance")
}

/// Polls the async `check` every 200 ms until it returns `Some`, or panics naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `shards` shards are registered, creates `topic` with `queues_per_shard`
/// queues on each, and waits until the NameServer routes it on every shard.
pub async fn create_topic(namesrv: &str, topic: &str, queues_per_shard: i32, shards: usize) {
    let admin = Admin::new(client(namesrv, &format!("admin-{topic}")));
    wait_until("every shard registered", WAIT, || async {
        let info = admin.cluster_info().await.ok()?;
        (info.cluster_addr_table.get(CLUSTER)?.len() == shards).then_some(())
    })
    .await;
    let written = admin
        .create_topic_in_cluster(CLUSTER, &TopicConfig::new(topic, queues_per_shard))
        .await
        .expect("updateTopic");
    assert_eq!(written.len(), shards, "the topic is written on every shard");
    wait_routed(namesrv, topic, shards).await;
}

/// Waits until the NameServer routes `topic` on `shards` shards.
pub async fn wait_routed(namesrv: &str, topic: &str, shards: usize) {
    let admin = Admin::new(client(namesrv, &format!("route-{topic}")));
    wait_until("the topic's route on every shard", WAIT, || async {
        let route = admin.topic_route(topic).await.ok()?;
        (route.queue_datas.len() == shards).then_some(())
    })
    .await;
}

/// Waits until `consumers` own disjoint sets of `topic`'s queues that together cover all
/// `total` of them, each owning at least one (the group's rebalance has settled).
pub async fn wait_settled(consumers: &[&PushConsumer], topic: &str, total: usize) {
    wait_until("the group's rebalance to settle", WAIT, || async {
        let mut all = BTreeSet::new();
        let mut sum = 0;
        for consumer in consumers {
            let mine: Vec<_> = consumer
                .owned_queues()
                .into_iter()
                .filter(|q| q.topic == topic)
                .collect();
            if mine.is_empty() {
                return None;
            }
            sum += mine.len();
            all.extend(mine.into_iter().map(|q| (q.broker_name, q.queue_id)));
        }
        (sum == total && all.len() == total).then_some(())
    })
    .await;
}

/// One delivery as a listener saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The body, as text.
    pub body: String,
    /// `brokerName`.
    pub broker: String,
    /// Queue id.
    pub queue_id: i32,
    /// Queue offset.
    pub offset: i64,
    /// When it was recorded, as a process-wide sequence number (comparable across logs).
    pub order: u64,
}

/// Orders deliveries across every log of the process.
static DELIVERY_ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The deliveries one listener saw, in order; cheap to clone into a listener closure.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Delivery>>>);

impl Log {
    /// Records the messages of one listener call, in order.
    pub fn record(&self, messages: &[MessageExt]) {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in messages {
            log.push(Delivery {
                body: String::from_utf8_lossy(&m.body).into_owned(),
                broker: m.broker_name.clone(),
                queue_id: m.queue_id,
                offset: m.queue_offset,
                order: DELIVERY_ORDER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            });
        }
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether nothing was delivered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many deliveries so far.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// How many times each body was delivered, over several logs.
pub fn counts(logs: &[&Log]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for log in logs {
        for d in log.snapshot() {
            *counts.entry(d.body).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until every body of `expected` was delivered at least once over `logs`; on
/// timeout, panics with how many are missing and a few of them.
pub async fn wait_all_delivered(what: &str, logs: &[&Log], expected: &BTreeSet<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = counts(logs);
        let missing: Vec<_> = expected.iter().filter(|b| !seen.contains_key(*b)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {} messages never delivered, e.g. {:?}",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `bodies` to `topic` with at most `in_flight` sends outstanding; every send must
/// succeed with `SEND_OK`. Returns where each was stored, in the order of `bodies`.
pub async fn send_all(
    producer: &ringmq_client::Producer,
    topic: &str,
    bodies: &[String],
    in_flight: usize,
) -> Vec<ringmq_client::SendResult> {
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = Vec::with_capacity(bodies.len());
    for body in bodies {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let producer = producer.clone();
        let message = ringmq_client::Message::new(topic, body.clone());
        tasks.push(tokio::spawn(async move {
            let result = producer.send(message).await;
            drop(permit);
            result
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for (task, body) in tasks.into_iter().zip(bodies) {
        let result = task
            .await
            .expect("send task")
            .unwrap_or_else(|e| panic!("send of {body} failed: {e}"));
        assert_eq!(result.status, ringmq_client::SendStatus::Ok, "{body}");
        results.push(result);
    }
    results
}
