//! [`LitePullConsumer`]: the application polls, RocketMQ's `DefaultLitePullConsumer`.
//!
//! Queues come either from a subscription (shared among the group by client-side rebalance,
//! as for the push consumer, every 20 s and on `NOTIFY_CONSUMER_IDS_CHANGED`) or from an
//! explicit [`LitePullConsumer::assign`]. One task per queue long-polls the broker and puts
//! what it gets into a bounded buffer ([`LitePullConsumerConfig::buffered_batches_max`]
//! batches, then the pull tasks wait: backpressure, nothing dropped). [`LitePullConsumer::poll`]
//! takes the next batch; the queue's consumed offset moves past it. Offsets are committed
//! every `auto_commit_interval` when `auto_commit` is on (the default), or by
//! [`LitePullConsumer::commit`], and on shutdown. [`LitePullConsumer::seek`] moves a queue's
//! next pull; batches already buffered from before the seek are discarded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_wire::body::heartbeat::{
    ConsumeFromWhere, ConsumeType, MessageModel, SUB_ALL, SubscriptionData,
};
use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag};
use ringmq_wire::header::send::RpcFields;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::consumer::api::{self, PullStatus};
use crate::consumer::group::{self, GroupSpec};
use crate::consumer::message_ext::MessageExt;
use crate::consumer::offset_store::{OffsetStorage, OffsetStore, default_offset_file};
use crate::consumer::rebalance::AllocateStrategy;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::queue::MessageQueue;

/// Lite pull consumer settings (RocketMQ's defaults).
#[derive(Debug, Clone)]
pub struct LitePullConsumerConfig {
    /// The consumer group.
    pub group: String,
    /// Clustering (share the queues) or broadcasting.
    pub message_model: MessageModel,
    /// Where a queue with no stored offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For [`ConsumeFromWhere::ConsumeFromTimestamp`]: ms since the epoch.
    pub consume_timestamp_ms: Option<i64>,
    /// Queue allocation strategy (subscriptions only).
    pub strategy: AllocateStrategy,
    /// Messages per pull (`pullBatchSize`, 10).
    pub pull_batch_size: i32,
    /// Batches buffered between the pull tasks and `poll` before pulls wait.
    pub buffered_batches_max: usize,
    /// Commit offsets periodically (`autoCommit`, true).
    pub auto_commit: bool,
    /// Commit interval (`autoCommitIntervalMillis`, 5 s).
    pub auto_commit_interval: Duration,
    /// Rebalance interval (20 s).
    pub rebalance_interval: Duration,
    /// Heartbeat interval (30 s).
    pub heartbeat_interval: Duration,
    /// How long the broker holds a pull with nothing to return (`brokerSuspendMaxTimeMillis`, 20 s).
    pub pull_suspend_time: Duration,
    /// Timeout of a long-polling pull (`consumerTimeoutMillisWhenSuspend`, 30 s).
    pub pull_timeout: Duration,
    /// Local offset file (broadcasting).
    pub offset_file: Option<std::path::PathBuf>,
}

impl LitePullConsumerConfig {
    /// Defaults for a consumer group.
    pub fn new(group: impl Into<String>) -> Self {
        LitePullConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp_ms: None,
            strategy: AllocateStrategy::Averagely,
            pull_batch_size: 10,
            buffered_batches_max: 256,
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            rebalance_interval: Duration::from_secs(20),
            heartbeat_interval: Duration::from_secs(30),
            pull_suspend_time: Duration::from_secs(20),
            pull_timeout: Duration::from_secs(30),
            offset_file: None,
        }
    }
}

/// Delay of the next pull after an error (3 s).
const PULL_ERROR_DELAY: Duration = Duration::from_secs(3);

/// One assigned queue.
struct Assigned {
    next_pull: Arc<AtomicI64>,
    /// Bumped by every seek; buffered batches of an older version are discarded.
    version: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

struct Batch {
    queue: MessageQueue,
    version: u64,
    messages: Vec<MessageExt>,
}

struct Core {
    instance: ClientInstance,
    config: LitePullConsumerConfig,
    subscriptions: BTreeMap<String, SubscriptionData>,
    offsets: OffsetStore,
    assigned: Mutex<HashMap<MessageQueue, Assigned>>,
    buffer_tx: mpsc::Sender<Batch>,
    rebalancing: tokio::sync::Mutex<()>,
    shutdown: watch::Receiver<bool>,
}

/// A lite pull consumer; see the module docs.
pub struct LitePullConsumer {
    instance: ClientInstance,
    config: LitePullConsumerConfig,
    subscriptions: BTreeMap<String, SubscriptionData>,
    manual: Option<Vec<MessageQueue>>,
    running: Option<Running>,
}

struct Running {
    core: Arc<Core>,
    buffer_rx: tokio::sync::Mutex<mpsc::Receiver<Batch>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LitePullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePullConsumer")
            .field("group", &self.config.group)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl LitePullConsumer {
    /// A consumer on a shared client instance; subscribe or assign, then start.
    pub fn new(instance: ClientInstance, config: LitePullConsumerConfig) -> Result<Self> {
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "consumer group must not be empty".into(),
            ));
        }
        if config.buffered_batches_max == 0 || config.pull_batch_size <= 0 {
            return Err(ClientError::InvalidArgument(
                "buffered_batches_max and pull_batch_size must be positive".into(),
            ));
        }
        Ok(LitePullConsumer {
            instance,
            config,
            subscriptions: BTreeMap::new(),
            manual: None,
            running: None,
        })
    }

    /// Subscribes to `topic` with a tag expression (`*` or `TagA || TagB`); queues are
    /// shared among the group. Exclusive with [`Self::assign`].
    pub fn subscribe(&mut self, topic: &str, expression: &str) -> Result<()> {
        self.subscribe_with(topic, crate::consumer::MessageSelector::tag(expression))
    }

    /// Subscribes to `topic` with a selector: by tag or by SQL92 expression over message
    /// properties, which the broker evaluates; `start` checks SQL92 selectors with the
    /// topic's brokers first. Exclusive with [`Self::assign`].
    pub fn subscribe_with(
        &mut self,
        topic: &str,
        selector: crate::consumer::MessageSelector,
    ) -> Result<()> {
        crate::message::validate_topic(topic)?;
        if self.running.is_some() || self.manual.is_some() {
            return Err(ClientError::InvalidArgument(
                "subscribe before starting, and not together with assign".into(),
            ));
        }
        self.subscriptions.insert(
            topic.to_owned(),
            selector.subscription(topic, crate::producer::now_ms()),
        );
        Ok(())
    }

    /// Consumes exactly these queues (no rebalance). Exclusive with [`Self::subscribe`].
    pub fn assign(&mut self, queues: Vec<MessageQueue>) -> Result<()> {
        if self.running.is_some() || !self.subscriptions.is_empty() {
            return Err(ClientError::InvalidArgument(
                "assign before starting, and not together with subscribe".into(),
            ));
        }
        for queue in &queues {
            crate::message::validate_topic(&queue.topic)?;
        }
        self.manual = Some(queues);
        Ok(())
    }

    /// Starts pulling.
    pub async fn start(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Err(ClientError::InvalidArgument(
                "consumer already started".into(),
            ));
        }
        let mut subscriptions = self.subscriptions.clone();
        if let Some(queues) = &self.manual {
            for queue in queues {
                subscriptions.entry(queue.topic.clone()).or_insert_with(|| {
                    SubscriptionData::tags(&queue.topic, SUB_ALL, crate::producer::now_ms())
                });
            }
        }
        if subscriptions.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe or assign before starting".into(),
            ));
        }
        let storage = match self.config.message_model {
            MessageModel::Clustering => OffsetStorage::Broker,
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
        let (buffer_tx, buffer_rx) = mpsc::channel(self.config.buffered_batches_max);
        let core = Arc::new(Core {
            instance: self.instance.clone(),
            config: self.config.clone(),
            subscriptions,
            offsets,
            assigned: Mutex::default(),
            buffer_tx,
            rebalancing: tokio::sync::Mutex::new(()),
            shutdown,
        });
        group::heartbeat(&core.instance, &core.spec(), &core.subscriptions).await;
        let mut tasks = vec![tokio::spawn(heartbeat_loop(core.clone()))];
        match &self.manual {
            Some(queues) => core.set_assignment(queues.clone()).await,
            None => tasks.push(tokio::spawn(rebalance_loop(core.clone(), rebalance_now))),
        }
        if core.config.auto_commit {
            tasks.push(tokio::spawn(commit_loop(core.clone())));
        }
        info!(group = %core.config.group, client = %core.instance.client_id(), "lite pull consumer started");
        self.running = Some(Running {
            core,
            buffer_rx: tokio::sync::Mutex::new(buffer_rx),
            stop,
            tasks,
        });
        Ok(())
    }

    fn running(&self) -> Result<&Running> {
        self.running
            .as_ref()
            .ok_or_else(|| ClientError::InvalidArgument("consumer not started".into()))
    }

    /// The next batch of messages, waiting up to `timeout`; empty if none arrived.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<MessageExt>> {
        let running = self.running()?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = running.buffer_rx.lock().await;
        loop {
            let batch = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(batch)) => batch,
                Ok(None) => return Err(ClientError::Shutdown),
                Err(_) => return Ok(Vec::new()),
            };
            let current = running
                .core
                .assigned()
                .get(&batch.queue)
                .map(|a| a.version.load(Ordering::Acquire));
            if current != Some(batch.version) {
                continue; // from before a seek, or the queue is no longer ours
            }
            if let Some(last) = batch.messages.last() {
                running
                    .core
                    .offsets
                    .update(&batch.queue, last.queue_offset + 1, false);
            }
            return Ok(batch.messages);
        }
    }

    /// Moves a queue's next pull (and its consumed offset) to `offset`.
    pub fn seek(&self, queue: &MessageQueue, offset: i64) -> Result<()> {
        let running = self.running()?;
        let assigned = running.core.assigned();
        let Some(entry) = assigned.get(queue) else {
            return Err(ClientError::InvalidArgument(format!(
                "queue {queue} is not assigned to this consumer"
            )));
        };
        if offset < 0 {
            return Err(ClientError::InvalidArgument(format!(
                "offset {offset} is negative"
            )));
        }
        entry.version.fetch_add(1, Ordering::AcqRel);
        entry.next_pull.store(offset, Ordering::Release);
        running.core.offsets.update(queue, offset, false);
        Ok(())
    }

    /// Moves a queue to its first stored offset.
    pub async fn seek_to_begin(&self, queue: &MessageQueue) -> Result<()> {
        let core = &self.running()?.core;
        let addr = group::master_addr(&core.instance, queue).await?;
        let offset = api::min_offset(&core.instance, &addr, queue).await?;
        self.seek(queue, offset)
    }

    /// Moves a queue past its last stored message.
    pub async fn seek_to_end(&self, queue: &MessageQueue) -> Result<()> {
        let core = &self.running()?.core;
        let addr = group::master_addr(&core.instance, queue).await?;
        let offset = api::max_offset(&core.instance, &addr, queue).await?;
        self.seek(queue, offset)
    }

    /// Commits the consumed offsets of every assigned queue now, waiting for the brokers.
    pub async fn commit(&self) -> Result<()> {
        let core = &self.running()?.core;
        let queues: Vec<MessageQueue> = core.assigned().keys().cloned().collect();
        core.offsets
            .persist(&core.instance, Some(&queues), true)
            .await
    }

    /// The broker's committed offset of a queue (`None` if the group has none).
    pub async fn committed(&self, queue: &MessageQueue) -> Result<Option<i64>> {
        let core = &self.running()?.core;
        let addr = group::master_addr(&core.instance, queue).await?;
        api::query_consumer_offset(&core.instance, &addr, &core.config.group, queue).await
    }

    /// The queues currently assigned.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let Some(running) = &self.running else {
            return Vec::new();
        };
        let mut queues: Vec<_> = running.core.assigned().keys().cloned().collect();
        queues.sort();
        queues
    }

    /// Stops pulling, commits offsets (waiting for the brokers) and unregisters.
    pub async fn shutdown(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let _ = running.stop.send(true);
        for task in &running.tasks {
            task.abort();
        }
        let core = running.core;
        let assigned: Vec<(MessageQueue, Assigned)> = core.assigned().drain().collect();
        for (_, entry) in &assigned {
            entry.task.abort();
        }
        let queues: Vec<MessageQueue> = assigned.into_iter().map(|(q, _)| q).collect();
        if let Err(error) = core
            .offsets
            .persist(&core.instance, Some(&queues), true)
            .await
        {
            warn!(%error, "committing offsets at shutdown failed");
        }
        for addr in group::master_addrs(&core.instance, core.subscriptions.keys()).await {
            let _ = api::unregister_consumer(&core.instance, &addr, &core.config.group).await;
        }
        core.instance.unregister_consumer(&core.config.group);
        info!(group = %core.config.group, "lite pull consumer stopped");
    }
}

impl Core {
    fn assigned(&self) -> std::sync::MutexGuard<'_, HashMap<MessageQueue, Assigned>> {
        self.assigned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spec(&self) -> GroupSpec {
        GroupSpec {
            group: self.config.group.clone(),
            consume_type: ConsumeType::ConsumeActively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            consume_timestamp_ms: self.config.consume_timestamp_ms,
            strategy: self.config.strategy,
        }
    }

    fn stopped(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Makes `queues` the assignment: stops pulling the others (committing their offsets),
    /// starts pulling the new ones.
    async fn set_assignment(self: &Arc<Self>, queues: Vec<MessageQueue>) {
        self.set_assignment_of(None, queues).await;
    }

    async fn set_assignment_of(self: &Arc<Self>, topic: Option<&str>, queues: Vec<MessageQueue>) {
        let removed: Vec<MessageQueue> = {
            let mut assigned = self.assigned();
            let gone: Vec<MessageQueue> = assigned
                .keys()
                .filter(|q| topic.is_none_or(|t| q.topic == t) && !queues.contains(q))
                .cloned()
                .collect();
            for queue in &gone {
                if let Some(entry) = assigned.remove(queue) {
                    entry.task.abort();
                }
            }
            gone
        };
        if !removed.is_empty() {
            let _ = self
                .offsets
                .persist(&self.instance, Some(&removed), false)
                .await;
            for queue in &removed {
                self.offsets.forget(queue);
            }
            info!(group = %self.config.group, ?removed, "queues released");
        }
        for queue in queues {
            if self.assigned().contains_key(&queue) {
                continue;
            }
            let start = match group::start_offset(
                &self.instance,
                &self.spec(),
                &self.offsets,
                &queue,
            )
            .await
            {
                Ok(offset) => offset,
                Err(error) => {
                    warn!(%queue, %error, "cannot compute the start offset; retrying later");
                    continue;
                }
            };
            self.offsets.update(&queue, start, false);
            let next_pull = Arc::new(AtomicI64::new(start));
            let version = Arc::new(AtomicU64::new(0));
            let task = tokio::spawn(pull_loop(
                self.clone(),
                queue.clone(),
                next_pull.clone(),
                version.clone(),
            ));
            info!(group = %self.config.group, %queue, start, "queue assigned");
            self.assigned().insert(
                queue,
                Assigned {
                    next_pull,
                    version,
                    task,
                },
            );
        }
    }

    async fn rebalance(self: &Arc<Self>) {
        let _one_at_a_time = self.rebalancing.lock().await;
        for topic in self.subscriptions.keys() {
            match group::allocate(&self.instance, &self.spec(), topic).await {
                Ok(owned) => self.set_assignment_of(Some(topic), owned).await,
                Err(error) => debug!(topic, %error, "rebalance of topic skipped"),
            }
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
        group::heartbeat(&core.instance, &core.spec(), &core.subscriptions).await;
    }
}

async fn rebalance_loop(core: Arc<Core>, now: Arc<Notify>) {
    loop {
        core.rebalance().await;
        let mut shutdown = core.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(core.config.rebalance_interval) => {}
            () = now.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn commit_loop(core: Arc<Core>) {
    while !sleep_or_stop(&core, core.config.auto_commit_interval).await {
        let queues: Vec<MessageQueue> = core.assigned().keys().cloned().collect();
        let _ = core
            .offsets
            .persist(&core.instance, Some(&queues), false)
            .await;
    }
}

async fn pull_loop(
    core: Arc<Core>,
    queue: MessageQueue,
    next_pull: Arc<AtomicI64>,
    version: Arc<AtomicU64>,
) {
    let Some(subscription) = core.subscriptions.get(&queue.topic).cloned() else {
        return;
    };
    while !core.stopped() {
        let seen_version = version.load(Ordering::Acquire);
        let offset = next_pull.load(Ordering::Acquire);
        let outcome = async {
            let addr = group::master_addr(&core.instance, &queue).await?;
            let header = PullMessageRequestHeader {
                consumer_group: core.config.group.clone(),
                topic: queue.topic.clone(),
                queue_id: queue.queue_id,
                queue_offset: offset,
                max_msg_nums: core.config.pull_batch_size,
                sys_flag: pull_sys_flag::SUSPEND
                    | pull_sys_flag::SUBSCRIPTION
                    | pull_sys_flag::LITE_PULL,
                commit_offset: 0,
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
                &queue,
                &header,
                core.config.pull_timeout,
            )
            .await
        }
        .await;
        let result = match outcome {
            Ok(result) => result,
            Err(error) => {
                debug!(%queue, %error, "pull failed");
                if sleep_or_stop(&core, PULL_ERROR_DELAY).await {
                    return;
                }
                continue;
            }
        };
        // A seek while the pull was out makes its result stale.
        if version.load(Ordering::Acquire) != seen_version {
            continue;
        }
        let _ = next_pull.compare_exchange(
            offset,
            result.next_begin_offset,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if result.status == PullStatus::OffsetIllegal {
            warn!(%queue, offset, next = result.next_begin_offset, "pull offset illegal, moving");
            continue;
        }
        let messages: Vec<MessageExt> = result
            .messages
            .into_iter()
            .filter(|m| group::matches(&subscription, m))
            .collect();
        if messages.is_empty() {
            continue;
        }
        let batch = Batch {
            queue: queue.clone(),
            version: seen_version,
            messages,
        };
        if core.buffer_tx.send(batch).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
