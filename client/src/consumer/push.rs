//! [`PushConsumer`]: the broker's messages delivered to a listener, RocketMQ's
//! `DefaultMQPushConsumer`.
//!
//! What runs (all tokio tasks, stopped by [`PushConsumer::shutdown`]):
//!
//! - **heartbeat** every 30 s to every master of the subscribed topics, so brokers list this
//!   client among the group's members;
//! - **rebalance** every 20 s and at once on `NOTIFY_CONSUMER_IDS_CHANGED`: per subscribed
//!   topic (plus the group's retry topic in clustering mode) the readable queues are shared
//!   among the group's members with the configured [`AllocateStrategy`]; broadcasting takes
//!   every queue. Queues gained get a pull loop, queues lost are dropped after their offset
//!   is persisted (and, orderly, their broker lock released);
//! - **one pull loop per owned queue**: long-polling `PULL_MESSAGE` (15 s suspend, 30 s
//!   timeout), with flow control: more than `pull_threshold_for_queue` messages or
//!   `pull_threshold_size_for_queue_bytes` bytes held, or (concurrently) a span over
//!   `consume_concurrently_max_span`, delays the next pull by 50 ms; an error by 3 s;
//! - **consumption**: concurrently, on at most `consume_threads` tasks at a time, batches of
//!   `consume_batch_max_size`; a batch the listener asks to reconsume later is sent back to
//!   the broker (`CONSUMER_SEND_MSG_BACK`; the broker redelivers through the retry topic
//!   with a growing delay, then the DLQ), and retried locally after 5 s if even that fails.
//!   Orderly: one batch at a time per queue, in offset order, only while the broker lock
//!   (`LOCK_BATCH_MQ`, renewed every 20 s, considered lost after 30 s) is held; a suspended
//!   batch is retried after `suspend_current_queue_time`, and past `max_reconsume_times` sent to
//!   the DLQ and skipped;
//! - **offset persistence** every 5 s and on shutdown: the smallest offset not yet consumed
//!   (at-least-once).
//!
//! A panicking listener counts as "reconsume later" (concurrent) or "suspend" (orderly).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_wire::body::heartbeat::{
    ConsumeFromWhere, ConsumeType, MessageModel, SUB_ALL, SubscriptionData,
};
use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag as pull_flag};
use ringmq_wire::header::send::RpcFields;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::admin::retry_topic;
use crate::consumer::api::{self, PullStatus};
use crate::consumer::group::{self, GroupSpec};
use crate::consumer::message_ext::MessageExt;
use crate::consumer::offset_store::{OffsetStorage, OffsetStore, default_offset_file};
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::rebalance::AllocateStrategy;
use crate::consumer::selector::MessageSelector;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::queue::MessageQueue;
use crate::remoting::BoxFuture;

/// What a concurrent listener asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed: the offset may move past these messages.
    Success,
    /// Failed: deliver again later (through the retry topic).
    ReconsumeLater,
}

/// What an orderly listener asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderlyResult {
    /// Consumed.
    Success,
    /// Failed: retry the same messages after a pause, blocking the queue meanwhile.
    SuspendCurrentQueueAMoment,
}

type ConcurrentFn = Arc<dyn Fn(Vec<MessageExt>) -> BoxFuture<ConsumeResult> + Send + Sync>;
type OrderlyFn = Arc<dyn Fn(Vec<MessageExt>) -> BoxFuture<OrderlyResult> + Send + Sync>;

/// The application's message handler.
#[derive(Clone)]
pub enum MessageListener {
    /// Batches consumed in parallel, in no particular order.
    Concurrently(ConcurrentFn),
    /// Batches of each queue consumed one at a time, in offset order.
    Orderly(OrderlyFn),
}

impl std::fmt::Debug for MessageListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MessageListener::Concurrently(_) => "MessageListener::Concurrently",
            MessageListener::Orderly(_) => "MessageListener::Orderly",
        })
    }
}

impl MessageListener {
    /// A concurrent listener from an async closure.
    pub fn concurrently<F, Fut>(f: F) -> Self
    where
        F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeResult> + Send + 'static,
    {
        MessageListener::Concurrently(Arc::new(move |messages| Box::pin(f(messages))))
    }

    /// An orderly listener from an async closure.
    pub fn orderly<F, Fut>(f: F) -> Self
    where
        F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = OrderlyResult> + Send + 'static,
    {
        MessageListener::Orderly(Arc::new(move |messages| Box::pin(f(messages))))
    }

    fn is_orderly(&self) -> bool {
        matches!(self, MessageListener::Orderly(_))
    }
}

/// Push consumer settings (RocketMQ's defaults).
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    /// The consumer group.
    pub group: String,
    /// Clustering (share the queues) or broadcasting (every member gets everything).
    pub message_model: MessageModel,
    /// Where a queue with no stored offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For [`ConsumeFromWhere::ConsumeFromTimestamp`]: ms since the epoch (default: 30 min ago).
    pub consume_timestamp_ms: Option<i64>,
    /// Queue allocation strategy.
    pub strategy: AllocateStrategy,
    /// Consumption tasks running at once (`consumeThreadMax`, 20).
    pub consume_threads: usize,
    /// Messages per listener call (`consumeMessageBatchMaxSize`, 1).
    pub consume_batch_max_size: usize,
    /// Messages per pull (`pullBatchSize`, 32).
    pub pull_batch_size: i32,
    /// Messages held per queue before pulls pause (`pullThresholdForQueue`, 1000).
    pub pull_threshold_for_queue: usize,
    /// Body bytes held per queue before pulls pause (`pullThresholdSizeForQueue`, 100 MiB).
    pub pull_threshold_size_for_queue_bytes: usize,
    /// Largest offset span held before pulls pause, concurrent mode (`consumeConcurrentlyMaxSpan`, 2000).
    pub consume_concurrently_max_span: i64,
    /// Deliveries before a message goes to the DLQ (`maxReconsumeTimes`: 16 concurrent;
    /// orderly: unlimited unless set).
    pub max_reconsume_times: Option<i32>,
    /// Pause of an orderly queue after a suspended batch (`suspendCurrentQueueTimeMillis`, 1 s).
    pub suspend_current_queue_time: Duration,
    /// Rebalance interval (20 s).
    pub rebalance_interval: Duration,
    /// Offset persistence interval (`persistConsumerOffsetInterval`, 5 s).
    pub persist_interval: Duration,
    /// Heartbeat interval (`heartbeatBrokerInterval`, 30 s).
    pub heartbeat_interval: Duration,
    /// How long the broker holds a pull with nothing to return (15 s).
    pub pull_suspend_time: Duration,
    /// Timeout of a long-polling pull (30 s).
    pub pull_timeout: Duration,
    /// Local offset file (broadcasting); default `~/.rocketmq_offsets/<clientId>/<group>/offsets.json`.
    pub offset_file: Option<std::path::PathBuf>,
}

impl PushConsumerConfig {
    /// Defaults for a consumer group.
    pub fn new(group: impl Into<String>) -> Self {
        PushConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp_ms: None,
            strategy: AllocateStrategy::Averagely,
            consume_threads: 20,
            consume_batch_max_size: 1,
            pull_batch_size: 32,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_bytes: 100 * 1024 * 1024,
            consume_concurrently_max_span: 2000,
            max_reconsume_times: None,
            suspend_current_queue_time: Duration::from_secs(1),
            rebalance_interval: Duration::from_secs(20),
            persist_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(30),
            pull_suspend_time: Duration::from_secs(15),
            pull_timeout: Duration::from_secs(30),
            offset_file: None,
        }
    }
}

/// Delay of the next pull after local flow control (RocketMQ's 50 ms).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// Delay of the next pull after an error (`pullTimeDelayMillsWhenException`, 3 s).
const PULL_ERROR_DELAY: Duration = Duration::from_secs(3);
/// Delay before a batch whose send-back failed is consumed again locally (5 s).
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long a rebalance waits for an orderly batch in progress on a queue it gives up
/// (RocketMQ's `tryLock(1000, MILLISECONDS)` in `removeUnnecessaryMessageQueue`).
const ORDERLY_RELEASE_WAIT: Duration = Duration::from_secs(1);
/// Delay of the next rebalance after an orderly one failed to lock a queue it was given
/// (RocketMQ 5's `rebalanceLater(500)`).
const LOCK_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Lock renewal interval (`rocketmq.client.rebalance.lockInterval`, 20 s).
const LOCK_INTERVAL: Duration = Duration::from_secs(20);
/// A lock not renewed for this long is considered lost (30 s).
const LOCK_MAX_AGE: Duration = Duration::from_secs(30);
/// How long shutdown waits for listener calls in progress.
const SHUTDOWN_CONSUME_WAIT: Duration = Duration::from_secs(10);
/// Queues one consumer owns at most (bounds the tasks it runs).
pub const OWNED_QUEUES_MAX: usize = 4096;

struct Core {
    instance: ClientInstance,
    config: PushConsumerConfig,
    listener: MessageListener,
    subscriptions: BTreeMap<String, SubscriptionData>,
    queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    offsets: OffsetStore,
    consume_permits: Arc<Semaphore>,
    /// Serializes rebalances: a stale allocation must never be applied after a newer one.
    rebalancing: tokio::sync::Mutex<()>,
    /// Set when an orderly rebalance could not lock every queue it was given: the next
    /// rebalance comes after [`LOCK_RETRY_DELAY`] instead of the full interval.
    lock_retry: std::sync::atomic::AtomicBool,
    shutdown: watch::Receiver<bool>,
    /// When `start` ran, ms since the epoch (`PROP_CONSUMER_START_TIMESTAMP`).
    started_ms: i64,
}

/// A push consumer; see the module docs.
pub struct PushConsumer {
    instance: ClientInstance,
    config: PushConsumerConfig,
    subscriptions: BTreeMap<String, SubscriptionData>,
    running: Option<Running>,
}

struct Running {
    core: Arc<Core>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.config.group)
            .field("subscriptions", &self.subscriptions.keys())
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl PushConsumer {
    /// A consumer on a shared client instance; subscribe, then start.
    pub fn new(instance: ClientInstance, config: PushConsumerConfig) -> Result<Self> {
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "consumer group must not be empty".into(),
            ));
        }
        if config.consume_threads == 0 || config.consume_batch_max_size == 0 {
            return Err(ClientError::InvalidArgument(
                "consume_threads and consume_batch_max_size must be at least 1".into(),
            ));
        }
        Ok(PushConsumer {
            instance,
            config,
            subscriptions: BTreeMap::new(),
            running: None,
        })
    }

    /// Subscribes to `topic` with a tag expression: `*` (everything) or `TagA || TagB`.
    /// For SQL92, use [`Self::subscribe_with`] and [`MessageSelector::sql`].
    pub fn subscribe(&mut self, topic: &str, expression: &str) -> Result<()> {
        self.subscribe_with(topic, MessageSelector::tag(expression))
    }

    /// Subscribes to `topic` with a selector: by tag or by SQL92 expression over message
    /// properties (`MessageSelector::sql("a > 5 AND TAGS IN ('x')")`), which the broker
    /// evaluates. `start` checks SQL92 selectors with the topic's brokers and fails with the
    /// broker's remark (line and column of a syntax error) if one refuses it.
    pub fn subscribe_with(&mut self, topic: &str, selector: MessageSelector) -> Result<()> {
        crate::message::validate_topic(topic)?;
        if self.running.is_some() {
            return Err(ClientError::InvalidArgument(
                "subscribe before starting the consumer".into(),
            ));
        }
        let version = crate::producer::now_ms();
        self.subscriptions
            .insert(topic.to_owned(), selector.subscription(topic, version));
        Ok(())
    }

    /// Starts consuming with `listener`.
    pub async fn start(&mut self, listener: MessageListener) -> Result<()> {
        if self.running.is_some() {
            return Err(ClientError::InvalidArgument(
                "consumer already started".into(),
            ));
        }
        if self.subscriptions.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe to at least one topic before starting".into(),
            ));
        }
        let mut subscriptions = self.subscriptions.clone();
        let storage = match self.config.message_model {
            MessageModel::Clustering => {
                let retry = retry_topic(&self.config.group);
                subscriptions.entry(retry.clone()).or_insert_with(|| {
                    SubscriptionData::tags(&retry, SUB_ALL, crate::producer::now_ms())
                });
                OffsetStorage::Broker
            }
            MessageModel::Broadcasting => {
                OffsetStorage::File(self.config.offset_file.clone().unwrap_or_else(|| {
                    default_offset_file(self.instance.client_id(), &self.config.group)
                }))
            }
        };
        crate::consumer::selector::check_in_brokers(
            &self.instance,
            &self.config.group,
            subscriptions.values(),
        )
        .await?;
        let offsets = OffsetStore::new(&self.config.group, storage)?;
        let rebalance_now = self.instance.register_consumer(&self.config.group)?;
        let (stop, shutdown) = watch::channel(false);
        let core = Arc::new(Core {
            instance: self.instance.clone(),
            config: self.config.clone(),
            listener,
            subscriptions,
            queues: Mutex::default(),
            offsets,
            consume_permits: Arc::new(Semaphore::new(self.config.consume_threads)),
            rebalancing: tokio::sync::Mutex::new(()),
            lock_retry: std::sync::atomic::AtomicBool::new(false),
            shutdown,
            started_ms: crate::producer::now_ms(),
        });
        self.instance.register_consumer_handle(
            &self.config.group,
            Arc::new(broker_requests::PushHandle::new(&core)),
        );
        info!(group = %core.config.group, client = %core.instance.client_id(), topics = ?core.subscriptions.keys(), "push consumer starting");
        core.heartbeat_all().await;
        let mut tasks = vec![
            tokio::spawn(heartbeat_loop(core.clone())),
            tokio::spawn(rebalance_loop(core.clone(), rebalance_now)),
            tokio::spawn(persist_loop(core.clone())),
        ];
        if core.listener.is_orderly() && core.config.message_model == MessageModel::Clustering {
            tasks.push(tokio::spawn(lock_loop(core.clone())));
        }
        self.running = Some(Running { core, stop, tasks });
        Ok(())
    }

    /// The queues this consumer currently owns.
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        let Some(running) = &self.running else {
            return Vec::new();
        };
        let mut queues: Vec<_> = running.core.queues().keys().cloned().collect();
        queues.sort();
        queues
    }

    /// Runs a rebalance now (as a `NOTIFY_CONSUMER_IDS_CHANGED` would).
    pub async fn rebalance(&self) -> Result<()> {
        match &self.running {
            Some(running) => {
                running.core.rebalance().await;
                Ok(())
            }
            None => Err(ClientError::InvalidArgument("consumer not started".into())),
        }
    }

    /// Stops pulling and consuming, persists offsets (waiting for the broker), releases
    /// orderly locks and unregisters from the brokers.
    pub async fn shutdown(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let _ = running.stop.send(true);
        for task in &running.tasks {
            task.abort();
        }
        let core = running.core;
        // Let listener calls in progress finish (bounded), so their offsets are committed.
        let permits = u32::try_from(core.config.consume_threads).unwrap_or(u32::MAX);
        match tokio::time::timeout(
            SHUTDOWN_CONSUME_WAIT,
            core.consume_permits.acquire_many(permits),
        )
        .await
        {
            Ok(_) => {}
            Err(_) => warn!(
                wait = ?SHUTDOWN_CONSUME_WAIT,
                "listener calls still running at shutdown; their messages will be redelivered"
            ),
        }
        let owned: Vec<(MessageQueue, Arc<ProcessQueue>)> = core.queues().drain().collect();
        for (_, queue) in &owned {
            queue.drop_queue();
        }
        let queues: Vec<MessageQueue> = owned.iter().map(|(q, _)| q.clone()).collect();
        if let Err(error) = core
            .offsets
            .persist(&core.instance, Some(&queues), true)
            .await
        {
            warn!(%error, "persisting offsets at shutdown failed");
        }
        if core.listener.is_orderly() && core.config.message_model == MessageModel::Clustering {
            core.unlock(&queues).await;
        }
        for addr in core.master_addrs().await {
            if let Err(error) =
                api::unregister_consumer(&core.instance, &addr, &core.config.group).await
            {
                debug!(%addr, %error, "unregister failed");
            }
        }
        core.instance.unregister_consumer(&core.config.group);
        info!(group = %core.config.group, "push consumer stopped");
    }
}

impl Core {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<MessageQueue, Arc<ProcessQueue>>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn clustering(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
    }

    fn max_reconsume_times(&self) -> i32 {
        self.config
            .max_reconsume_times
            .unwrap_or(if self.listener.is_orderly() {
                i32::MAX
            } else {
                16
            })
    }

    fn spec(&self) -> GroupSpec {
        GroupSpec {
            group: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            consume_timestamp_ms: self.config.consume_timestamp_ms,
            strategy: self.config.strategy,
        }
    }

    /// Masters of every subscribed topic's route.
    async fn master_addrs(&self) -> Vec<String> {
        group::master_addrs(&self.instance, self.subscriptions.keys()).await
    }

    async fn heartbeat_all(&self) {
        group::heartbeat(&self.instance, &self.spec(), &self.subscriptions).await;
    }

    /// One rebalance over every subscribed topic.
    async fn rebalance(self: &Arc<Self>) {
        let _one_at_a_time = self.rebalancing.lock().await;
        for topic in self.subscriptions.keys() {
            if self.stopped() {
                return;
            }
            match self.allocate(topic).await {
                Ok(owned) => self.update_queues(topic, owned).await,
                Err(error) => debug!(topic, %error, "rebalance of topic skipped"),
            }
        }
    }

    /// The queues of `topic` this client should own.
    async fn allocate(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        group::allocate(&self.instance, &self.spec(), topic).await
    }

    async fn update_queues(self: &Arc<Self>, topic: &str, owned: Vec<MessageQueue>) {
        let removed: Vec<(MessageQueue, Arc<ProcessQueue>)> = {
            let mut queues = self.queues();
            let gone: Vec<MessageQueue> = queues
                .keys()
                .filter(|q| q.topic == topic && !owned.contains(q))
                .cloned()
                .collect();
            gone.into_iter()
                .filter_map(|q| queues.remove(&q).map(|pq| (q, pq)))
                .collect()
        };
        if !removed.is_empty() {
            let orderly = self.listener.is_orderly() && self.clustering();
            // Orderly: wait (bounded, as RocketMQ's `removeUnnecessaryMessageQueue`) for the
            // batch in progress on each queue, so that its offset is committed and the
            // broker lock is released only once nobody consumes the queue here; otherwise the
            // queue's next owner would consume it while this one still does.
            let mut serials = Vec::new();
            let mut still_consuming = Vec::new();
            if orderly {
                for (queue, pq) in &removed {
                    match tokio::time::timeout(ORDERLY_RELEASE_WAIT, pq.consume_lock.lock()).await {
                        Ok(guard) => serials.push(guard),
                        Err(_) => {
                            warn!(%queue, "queue still consuming; its lock is kept until it expires");
                            still_consuming.push(queue.clone());
                        }
                    }
                }
            }
            let queues: Vec<MessageQueue> = removed.iter().map(|(q, _)| q.clone()).collect();
            for (_, pq) in &removed {
                pq.drop_queue();
            }
            let _ = self
                .offsets
                .persist(&self.instance, Some(&queues), false)
                .await;
            if orderly {
                let idle: Vec<MessageQueue> = queues
                    .iter()
                    .filter(|q| !still_consuming.contains(q))
                    .cloned()
                    .collect();
                self.unlock(&idle).await;
            }
            drop(serials);
            for queue in &queues {
                self.offsets.forget(queue);
            }
            info!(group = %self.config.group, removed = ?queues, "queues released");
        }
        let added: Vec<MessageQueue> = {
            let queues = self.queues();
            owned
                .into_iter()
                .filter(|q| !queues.contains_key(q))
                .collect()
        };
        if added.is_empty() {
            return;
        }
        let orderly = self.listener.is_orderly() && self.clustering();
        let mut added = added;
        if orderly {
            // As RocketMQ: an orderly queue is taken (and its start offset read) only once
            // locked, i.e. after its previous owner committed its offset and unlocked it;
            // the others are retried shortly.
            let locked = self.lock(&added).await;
            if locked.len() < added.len() {
                self.lock_retry
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            added.retain(|q| locked.contains(q));
        }
        for queue in added {
            if self.queues().len() >= OWNED_QUEUES_MAX {
                warn!(max = OWNED_QUEUES_MAX, "owned queue limit reached");
                break;
            }
            let start = match self.start_offset(&queue).await {
                Ok(offset) => offset,
                Err(error) => {
                    warn!(%queue, %error, "cannot compute the start offset; retrying next rebalance");
                    continue;
                }
            };
            let pq = Arc::new(ProcessQueue::default());
            if orderly {
                pq.set_locked(true);
            }
            self.offsets.update(&queue, start, false);
            self.queues().insert(queue.clone(), pq.clone());
            info!(group = %self.config.group, %queue, start, "queue acquired");
            tokio::spawn(pull_loop(self.clone(), queue.clone(), pq.clone(), start));
            if let MessageListener::Orderly(listener) = &self.listener {
                tokio::spawn(orderly_loop(self.clone(), queue, pq, listener.clone()));
            }
        }
    }

    /// Where a newly owned queue starts.
    async fn start_offset(&self, queue: &MessageQueue) -> Result<i64> {
        group::start_offset(&self.instance, &self.spec(), &self.offsets, queue).await
    }

    async fn master_addr(&self, queue: &MessageQueue) -> Result<String> {
        group::master_addr(&self.instance, queue).await
    }

    /// Locks queues on their brokers; returns those locked.
    async fn lock(&self, queues: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut by_broker: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
        for queue in queues {
            match self.master_addr(queue).await {
                Ok(addr) => by_broker.entry(addr).or_default().push(queue.clone()),
                Err(error) => debug!(%queue, %error, "no broker to lock on"),
            }
        }
        let mut locked = Vec::new();
        for (addr, queues) in by_broker {
            match api::lock_batch(&self.instance, &addr, &self.config.group, &queues).await {
                Ok(ok) => locked.extend(ok),
                Err(error) => warn!(%addr, %error, "lock failed"),
            }
        }
        locked
    }

    async fn unlock(&self, queues: &[MessageQueue]) {
        let mut by_broker: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
        for queue in queues {
            if let Ok(addr) = self.master_addr(queue).await {
                by_broker.entry(addr).or_default().push(queue.clone());
            }
        }
        for (addr, queues) in by_broker {
            if let Err(error) =
                api::unlock_batch(&self.instance, &addr, &self.config.group, &queues).await
            {
                debug!(%addr, %error, "unlock failed");
            }
        }
    }

    /// Records consumption of `offsets` of a queue and moves its committed offset.
    fn consumed(&self, queue: &MessageQueue, pq: &ProcessQueue, offsets: &[i64]) {
        if let Some(offset) = pq.remove(offsets)
            && !pq.is_dropped()
        {
            self.offsets.update(queue, offset, true);
        }
    }
}

async fn sleep_or_stop(core: &Core, delay: Duration) -> bool {
    let mut shutdown = core.shutdown.clone();
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

async fn heartbeat_loop(core: Arc<Core>) {
    while !sleep_or_stop(&core, core.config.heartbeat_interval).await {
        core.heartbeat_all().await;
    }
}

async fn rebalance_loop(core: Arc<Core>, now: Arc<Notify>) {
    loop {
        core.rebalance().await;
        let mut shutdown = core.shutdown.clone();
        let wait = if core
            .lock_retry
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            LOCK_RETRY_DELAY
        } else {
            core.config.rebalance_interval
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = now.notified() => debug!(group = %core.config.group, "rebalance on notification"),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn persist_loop(core: Arc<Core>) {
    while !sleep_or_stop(&core, core.config.persist_interval).await {
        let queues: Vec<MessageQueue> = core.queues().keys().cloned().collect();
        let _ = core
            .offsets
            .persist(&core.instance, Some(&queues), false)
            .await;
    }
}

async fn lock_loop(core: Arc<Core>) {
    while !sleep_or_stop(&core, LOCK_INTERVAL).await {
        let owned: Vec<(MessageQueue, Arc<ProcessQueue>)> = core
            .queues()
            .iter()
            .map(|(q, pq)| (q.clone(), pq.clone()))
            .collect();
        let queues: Vec<MessageQueue> = owned.iter().map(|(q, _)| q.clone()).collect();
        let locked = core.lock(&queues).await;
        for (queue, pq) in owned {
            pq.set_locked(locked.contains(&queue));
        }
    }
}

async fn pull_loop(core: Arc<Core>, queue: MessageQueue, pq: Arc<ProcessQueue>, start: i64) {
    let Some(subscription) = core.subscriptions.get(&queue.topic).cloned() else {
        return;
    };
    let mut next_offset = start;
    let orderly = core.listener.is_orderly();
    while !pq.is_dropped() && !core.stopped() {
        let delay = if pq.count() > core.config.pull_threshold_for_queue
            || pq.bytes() > core.config.pull_threshold_size_for_queue_bytes
            || (!orderly && pq.span() > core.config.consume_concurrently_max_span)
        {
            Some(FLOW_CONTROL_DELAY)
        } else if orderly && core.clustering() && !pq.is_locked(LOCK_MAX_AGE) {
            Some(PULL_ERROR_DELAY)
        } else {
            None
        };
        if let Some(delay) = delay {
            if sleep_or_stop(&core, delay).await {
                return;
            }
            continue;
        }
        match pull_once(&core, &queue, &subscription, next_offset).await {
            Ok(result) => {
                pq.mark_pulled();
                next_offset = result.next_begin_offset;
                match result.status {
                    PullStatus::Found => {
                        let messages: Vec<MessageExt> = result
                            .messages
                            .into_iter()
                            .filter(|m| group::matches(&subscription, m))
                            .collect();
                        if messages.is_empty() {
                            if pq.count() == 0 {
                                core.offsets.update(&queue, next_offset, true);
                            }
                            continue;
                        }
                        pq.put(&messages);
                        if let MessageListener::Concurrently(listener) = &core.listener {
                            dispatch_concurrently(&core, &queue, &pq, listener, messages);
                        }
                    }
                    PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                        if pq.count() == 0 {
                            core.offsets.update(&queue, next_offset, true);
                        }
                    }
                    PullStatus::OffsetIllegal => {
                        warn!(%queue, next_offset, "pull offset illegal, moving to the broker's offset");
                        core.offsets.update(&queue, next_offset, false);
                        let _ = core
                            .offsets
                            .persist(&core.instance, Some(std::slice::from_ref(&queue)), false)
                            .await;
                    }
                }
            }
            Err(error) => {
                debug!(%queue, %error, "pull failed");
                if sleep_or_stop(&core, PULL_ERROR_DELAY).await {
                    return;
                }
            }
        }
    }
}

async fn pull_once(
    core: &Core,
    queue: &MessageQueue,
    subscription: &SubscriptionData,
    offset: i64,
) -> Result<api::PullResult> {
    let addr = core.master_addr(queue).await?;
    let commit_offset = if core.clustering() {
        core.offsets.cached(queue).unwrap_or(0)
    } else {
        0
    };
    let mut flags = pull_flag::SUSPEND | pull_flag::SUBSCRIPTION;
    if commit_offset > 0 {
        flags |= pull_flag::COMMIT_OFFSET;
    }
    let header = PullMessageRequestHeader {
        consumer_group: core.config.group.clone(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        queue_offset: offset,
        max_msg_nums: core.config.pull_batch_size,
        sys_flag: flags,
        commit_offset,
        suspend_timeout_millis: core.config.pull_suspend_time.as_millis() as i64,
        subscription: Some(subscription.sub_string.clone()),
        sub_version: subscription.sub_version,
        expression_type: Some(subscription.expression_type.clone()),
        max_msg_bytes: None,
        request_source: None,
        proxy_forward_client_id: None,
        rpc: RpcFields {
            broker_name: Some(queue.broker_name.clone()),
            ..RpcFields::default()
        },
    };
    api::pull(
        &core.instance,
        &addr,
        queue,
        &header,
        core.config.pull_timeout,
    )
    .await
}

fn dispatch_concurrently(
    core: &Arc<Core>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    listener: &ConcurrentFn,
    messages: Vec<MessageExt>,
) {
    for batch in messages.chunks(core.config.consume_batch_max_size) {
        tokio::spawn(consume_batch(
            core.clone(),
            queue.clone(),
            pq.clone(),
            listener.clone(),
            batch.to_vec(),
        ));
    }
}

async fn consume_batch(
    core: Arc<Core>,
    queue: MessageQueue,
    pq: Arc<ProcessQueue>,
    listener: ConcurrentFn,
    batch: Vec<MessageExt>,
) {
    let Ok(_permit) = core.consume_permits.clone().acquire_owned().await else {
        return;
    };
    if pq.is_dropped() || core.stopped() {
        return;
    }
    let outcome = tokio::spawn(listener(batch.clone()))
        .await
        .unwrap_or_else(|error| {
            warn!(%queue, %error, "listener panicked; reconsuming later");
            ConsumeResult::ReconsumeLater
        });
    let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
    if outcome == ConsumeResult::Success || !core.clustering() {
        if outcome == ConsumeResult::ReconsumeLater {
            warn!(%queue, count = batch.len(), "broadcast consumption failed; not retried");
        }
        core.consumed(&queue, &pq, &offsets);
        return;
    }
    let mut failed = Vec::new();
    for message in batch {
        let sent = async {
            let addr = core.master_addr(&queue).await?;
            api::send_back(
                &core.instance,
                &addr,
                &core.config.group,
                &message,
                0,
                core.max_reconsume_times(),
            )
            .await
        }
        .await;
        match sent {
            Ok(()) => core.consumed(&queue, &pq, &[message.queue_offset]),
            Err(error) => {
                warn!(%queue, offset = message.queue_offset, %error, "send back failed; retrying locally");
                failed.push(message);
            }
        }
    }
    if !failed.is_empty() {
        if sleep_or_stop(&core, LOCAL_RETRY_DELAY).await || pq.is_dropped() {
            return;
        }
        for message in &mut failed {
            message.reconsume_times += 1;
        }
        dispatch_concurrently(&core, &queue, &pq, &listener, failed);
    }
}

async fn orderly_loop(
    core: Arc<Core>,
    queue: MessageQueue,
    pq: Arc<ProcessQueue>,
    listener: OrderlyFn,
) {
    let batch_size = core.config.consume_batch_max_size;
    while !pq.is_dropped() && !core.stopped() {
        if core.clustering() && !pq.is_locked(LOCK_MAX_AGE) {
            if sleep_or_stop(&core, Duration::from_millis(100)).await {
                return;
            }
            continue;
        }
        let _serial = pq.consume_lock.lock().await;
        if pq.is_dropped() {
            // Given up by a rebalance while this loop waited for the lock.
            return;
        }
        let batch = pq.take(batch_size);
        if batch.is_empty() {
            drop(_serial);
            let mut shutdown = core.shutdown.clone();
            tokio::select! {
                () = pq.arrived.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            continue;
        }
        let Ok(_permit) = core.consume_permits.clone().acquire_owned().await else {
            return;
        };
        let outcome = tokio::spawn(listener(batch.clone()))
            .await
            .unwrap_or(OrderlyResult::SuspendCurrentQueueAMoment);
        match outcome {
            OrderlyResult::Success => {
                if let Some(offset) = pq.commit_taken()
                    && !pq.is_dropped()
                {
                    core.offsets.update(&queue, offset, true);
                }
            }
            OrderlyResult::SuspendCurrentQueueAMoment => {
                let exhausted = batch
                    .iter()
                    .all(|m| m.reconsume_times + 1 >= core.max_reconsume_times());
                if exhausted && core.clustering() {
                    // Past the limit: to the DLQ (delay level −1) and move on.
                    for message in &batch {
                        let sent = async {
                            let addr = core.master_addr(&queue).await?;
                            api::send_back(
                                &core.instance,
                                &addr,
                                &core.config.group,
                                message,
                                -1,
                                core.max_reconsume_times(),
                            )
                            .await
                        }
                        .await;
                        if let Err(error) = sent {
                            warn!(%queue, offset = message.queue_offset, %error, "sending to the DLQ failed");
                        }
                    }
                    if let Some(offset) = pq.commit_taken() {
                        core.offsets.update(&queue, offset, true);
                    }
                } else {
                    pq.rollback_taken();
                    drop(_permit);
                    drop(_serial);
                    if sleep_or_stop(&core, core.config.suspend_current_queue_time).await {
                        return;
                    }
                }
            }
        }
    }
}

mod broker_requests;

#[cfg(test)]
mod tests;
