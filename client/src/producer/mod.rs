//! The producer.
//!
//! [`Producer::send`] is an `async fn`: await it for a synchronous send, or spawn it (the
//! producer is a cheap `Clone`) for an asynchronous one — there is no callback API. A send
//! picks a queue round robin over the topic's writable queues, skipping brokers that
//! recently failed or were slow ([`fault`]), and sends `SEND_MESSAGE_V2` to the master of
//! that queue's broker. When an attempt fails in a way another broker might not (connection,
//! timeout, "system busy", "topic not exist" on that broker…) it is retried up to
//! `retries` more times, avoiding the broker that just failed, all within one
//! `send_timeout`. Errors that concern the message itself are returned at once.
//!
//! Bodies over `compress_over_bytes` are zlib-compressed (sysflag bit 0); bodies over
//! `max_body_bytes` (after compression) are refused with [`ClientError::MessageTooLarge`].
//! At most `max_in_flight` sends are outstanding per producer: further sends wait for a
//! slot (backpressure) until their timeout, and are never dropped silently.
//!
//! Producer heartbeats go to every master of the cached routes every 30 s, and to a broker
//! on the first transactional send there (so its check-backs find the producer at once);
//! transactional sends are in [`transaction`]. Not done yet: request/reply.

pub mod fault;
pub mod selector;
pub mod stats;
pub mod transaction;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use ringmq_wire::body::heartbeat::{HeartbeatData, ProducerData};
use ringmq_wire::command::ExtFields;
use ringmq_wire::header::send::{
    RpcFields, SendMessageRequestHeader, SendMessageResponseHeader, sys_flag,
};
use ringmq_wire::header::{CommandHeader, FieldValue};
use ringmq_wire::msgid::UniqKeyGenerator;
use ringmq_wire::record::{BatchMessage, encode_batch};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, instrument, warn};

use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::limits::{
    BATCH_MESSAGES_MAX, COMPRESS_BODY_OVER_BYTES, MESSAGE_BODY_BYTES_MAX, PRODUCER_IN_FLIGHT_MAX,
    SEND_RETRIES, SEND_TIMEOUT,
};
use crate::message::{Message, property};
use crate::queue::MessageQueue;
use crate::route::TopicRoute;
use fault::FaultAvoidance;
use selector::QueueSelector;
use stats::{SendStats, SendStatsSnapshot};

/// The template topic brokers auto-create topics from (`TBW102`).
pub const DEFAULT_TOPIC: &str = "TBW102";

/// Producer settings (RocketMQ's defaults).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// The producer group.
    pub group: String,
    /// Time allowed for one send, all attempts included (`sendMsgTimeout`, 3 s).
    pub send_timeout: Duration,
    /// Extra attempts on another broker after a failure (`retryTimesWhenSendFailed`, 2).
    pub retries: u32,
    /// Bodies larger than this are compressed (`compressMsgBodyOverHowmuch`, 4 KiB).
    pub compress_over_bytes: usize,
    /// zlib level (RocketMQ's default 5).
    pub compress_level: u32,
    /// Largest body accepted (`maxMessageSize`, 4 MiB).
    pub max_body_bytes: usize,
    /// Skip brokers that recently failed or were slow (`sendLatencyFaultEnable`).
    pub latency_fault_avoidance: bool,
    /// Sends outstanding before `send` waits.
    pub max_in_flight: usize,
    /// Queues of a topic auto-created by a send (`defaultTopicQueueNums`, 4).
    pub default_topic_queue_nums: i32,
    /// Send with `SEND_MESSAGE_V2` (one-letter header keys, the default) instead of
    /// `SEND_MESSAGE`.
    pub use_v2_header: bool,
}

impl ProducerConfig {
    /// Defaults for a producer group.
    pub fn new(group: impl Into<String>) -> Self {
        ProducerConfig {
            group: group.into(),
            send_timeout: SEND_TIMEOUT,
            retries: SEND_RETRIES,
            compress_over_bytes: COMPRESS_BODY_OVER_BYTES,
            compress_level: 5,
            max_body_bytes: MESSAGE_BODY_BYTES_MAX,
            latency_fault_avoidance: true,
            max_in_flight: PRODUCER_IN_FLIGHT_MAX,
            default_topic_queue_nums: 4,
            use_v2_header: true,
        }
    }
}

/// How the broker stored a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Stored (and flushed/replicated as the broker's mode requires).
    Ok,
    /// Stored, but the synchronous flush timed out.
    FlushDiskTimeout,
    /// Stored, but replication to the slave timed out.
    FlushSlaveTimeout,
    /// Stored, but no slave is available for synchronous replication.
    SlaveNotAvailable,
}

/// The outcome of a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// How the broker stored it.
    pub status: SendStatus,
    /// The client-generated unique id (`UNIQ_KEY`); for a batch, the ids joined by commas.
    pub msg_id: String,
    /// The broker-generated id (store host + commit log offset).
    pub offset_msg_id: String,
    /// The queue the message went to.
    pub queue: MessageQueue,
    /// Its offset in that queue.
    pub queue_offset: i64,
    /// The transaction id, for transactional messages.
    pub transaction_id: Option<String>,
}

struct Inner {
    instance: ClientInstance,
    config: ProducerConfig,
    faults: FaultAvoidance,
    next_queue: AtomicUsize,
    uniq_keys: std::sync::Mutex<UniqKeyGenerator>,
    in_flight: Arc<Semaphore>,
    shut_down: AtomicBool,
    stats: SendStats,
    heartbeat: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Brokers already sent a heartbeat outside the periodic loop (after a first
    /// transactional send to them), so they know the group before any check-back.
    introduced: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// A producer; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("group", &self.inner.config.group)
            .finish_non_exhaustive()
    }
}

/// Where a send goes.
enum Target<'a> {
    /// Round robin with fault avoidance.
    Any,
    /// A fixed queue.
    Queue(&'a MessageQueue),
    /// The queue a selector picks among the writable queues.
    Selector(&'a QueueSelector),
}

/// A message prepared for the wire: body possibly compressed, properties encoded.
struct Prepared {
    topic: String,
    body: Bytes,
    properties: String,
    sys_flag: i32,
    flag: i32,
    unique_id: String,
    batch: bool,
}

/// The header fields of one send attempt, borrowed from the prepared message, the queue
/// and the config: written straight into the request's `ExtFields` (no intermediate header
/// structs, no string clones beyond the field values themselves).
struct SendFields<'a> {
    producer_group: &'a str,
    topic: &'a str,
    default_topic_queue_nums: i32,
    queue_id: i32,
    sys_flag: i32,
    born_timestamp: i64,
    flag: i32,
    properties: &'a str,
    batch: bool,
    broker_name: &'a str,
}

impl SendFields<'_> {
    /// Fields of a V2 header with these values, in key order (each insert is a push).
    const V2_FIELDS: usize = 13;

    /// Writes the `SEND_MESSAGE_V2` / `SEND_BATCH_MESSAGE` header: exactly what
    /// `SendMessageRequestHeaderV2::from(self.to_header()).encode_into(..)` writes.
    fn write_v2(&self, fields: &mut ExtFields) {
        if fields.is_empty() {
            *fields = ExtFields::with_capacity(Self::V2_FIELDS);
        }
        fields.insert_str("a", self.producer_group);
        fields.insert_str("b", self.topic);
        fields.insert_str("c", DEFAULT_TOPIC);
        self.default_topic_queue_nums.write(fields, "d");
        self.queue_id.write(fields, "e");
        self.sys_flag.write(fields, "f");
        self.born_timestamp.write(fields, "g");
        self.flag.write(fields, "h");
        fields.insert_str("i", self.properties);
        0i32.write(fields, "j");
        false.write(fields, "k");
        self.batch.write(fields, "m");
        fields.insert_str("n", self.broker_name);
    }

    /// The V1 header (`SEND_MESSAGE`) with these values.
    fn to_header(&self) -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: self.producer_group.to_owned(),
            topic: self.topic.to_owned(),
            default_topic: DEFAULT_TOPIC.into(),
            default_topic_queue_nums: self.default_topic_queue_nums,
            queue_id: self.queue_id,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            flag: self.flag,
            properties: Some(self.properties.to_owned()),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            batch: Some(self.batch),
            max_reconsume_times: None,
            rpc: RpcFields {
                broker_name: Some(self.broker_name.to_owned()),
                ..RpcFields::default()
            },
        }
    }
}

impl Producer {
    /// A producer on a shared client instance.
    pub fn new(instance: ClientInstance, config: ProducerConfig) -> Result<Self> {
        if config.group.is_empty() {
            return Err(ClientError::InvalidArgument(
                "producer group must not be empty".into(),
            ));
        }
        if config.max_in_flight == 0 {
            return Err(ClientError::InvalidArgument(
                "max_in_flight must be at least 1".into(),
            ));
        }
        let producer = Producer {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                faults: FaultAvoidance::default(),
                next_queue: AtomicUsize::new(0),
                uniq_keys: std::sync::Mutex::new(uniq_key_generator(instance.client_ip())),
                shut_down: AtomicBool::new(false),
                stats: SendStats::default(),
                heartbeat: std::sync::Mutex::new(None),
                introduced: std::sync::Mutex::new(std::collections::HashSet::new()),
                instance,
            }),
        };
        // The loop holds a weak reference: it ends when the last clone is dropped.
        let task = tokio::spawn(heartbeat_loop(Arc::downgrade(&producer.inner)));
        *producer
            .inner
            .heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(producer)
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The client instance.
    pub fn instance(&self) -> &ClientInstance {
        &self.inner.instance
    }

    /// Send counts and latencies so far (all clones of this producer together).
    pub fn stats(&self) -> SendStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Sends a message and waits for the broker's answer.
    pub async fn send(&self, message: Message) -> Result<SendResult> {
        let prepared = self.prepare(message)?;
        self.send_prepared(prepared, Target::Any).await
    }

    /// Sends a message to one queue (no retry on another broker: the queue is fixed).
    pub async fn send_to_queue(
        &self,
        message: Message,
        queue: &MessageQueue,
    ) -> Result<SendResult> {
        if queue.topic != message.topic {
            return Err(ClientError::InvalidArgument(format!(
                "queue {queue} is not a queue of topic {}",
                message.topic
            )));
        }
        let prepared = self.prepare(message)?;
        self.send_prepared(prepared, Target::Queue(queue)).await
    }

    /// Sends a message to the queue `selector` picks (see [`selector::by_key_hash`] for
    /// ordered sends by key).
    pub async fn send_with_selector(
        &self,
        message: Message,
        selector: &QueueSelector,
    ) -> Result<SendResult> {
        let prepared = self.prepare(message)?;
        self.send_prepared(prepared, Target::Selector(selector))
            .await
    }

    /// Sends messages with the same `key` to the same queue, in order (RocketMQ's
    /// `SelectMessageQueueByHash`).
    pub async fn send_ordered(&self, message: Message, key: &str) -> Result<SendResult> {
        self.send_with_selector(message, &selector::by_key_hash(key))
            .await
    }

    /// Sends messages of one topic as one `SEND_BATCH_MESSAGE` request: they are stored
    /// together in one queue, in order. Batches take no delay level and are not compressed;
    /// the encoded batch must fit `max_body_bytes`. The result's `msg_id` holds the
    /// messages' unique ids joined by commas (as RocketMQ's does), `queue_offset` the first
    /// message's offset.
    pub async fn send_batch(&self, messages: Vec<Message>) -> Result<SendResult> {
        let prepared = self.prepare_batch(messages)?;
        self.send_prepared(prepared, Target::Any).await
    }

    fn prepare_batch(&self, messages: Vec<Message>) -> Result<Prepared> {
        if self.inner.shut_down.load(Ordering::Relaxed) {
            return Err(ClientError::Shutdown);
        }
        let Some(first) = messages.first() else {
            return Err(ClientError::InvalidArgument(
                "a batch needs at least one message".into(),
            ));
        };
        if messages.len() > BATCH_MESSAGES_MAX {
            return Err(ClientError::InvalidArgument(format!(
                "a batch holds at most {BATCH_MESSAGES_MAX} messages, not {}",
                messages.len()
            )));
        }
        let topic = first.topic.clone();
        let config = &self.inner.config;
        let mut entries = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        for mut message in messages {
            if message.topic != topic {
                return Err(ClientError::InvalidArgument(format!(
                    "a batch goes to one topic: {} and {topic} mixed",
                    message.topic
                )));
            }
            if message.delay_level().is_some_and(|level| level > 0) {
                return Err(ClientError::InvalidArgument(
                    "batched messages cannot be delayed".into(),
                ));
            }
            if topic.starts_with(crate::admin::RETRY_GROUP_TOPIC_PREFIX) {
                return Err(ClientError::InvalidArgument(
                    "batches cannot be sent to a retry topic".into(),
                ));
            }
            message.validate(config.max_body_bytes)?;
            let id = match message.unique_id() {
                Some(id) => id.to_owned(),
                None => {
                    let id = self.next_unique_id();
                    message
                        .properties
                        .insert(property::UNIQ_KEY.into(), id.clone());
                    id
                }
            };
            ids.push(id);
            entries.push(BatchMessage {
                flag: message.flag,
                properties: Bytes::from(message.encoded_properties()?),
                body: message.body,
            });
        }
        let mut body = bytes::BytesMut::new();
        encode_batch(&entries, &mut body)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        if body.len() > config.max_body_bytes {
            return Err(ClientError::MessageTooLarge {
                size: body.len(),
                max: config.max_body_bytes,
            });
        }
        Ok(Prepared {
            topic,
            body: body.freeze(),
            properties: String::new(),
            sys_flag: 0,
            flag: 0,
            unique_id: ids.join(","),
            batch: true,
        })
    }

    fn next_unique_id(&self) -> String {
        self.inner
            .uniq_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_key()
    }

    /// Sends a message without waiting for the broker: returns once the request is queued
    /// on the connection. Failures after that are not reported.
    pub async fn send_oneway(&self, message: Message) -> Result<()> {
        let prepared = self.prepare(message)?;
        let _permit = self
            .acquire(Instant::now() + self.inner.config.send_timeout)
            .await?;
        let route = self.route(&prepared.topic).await?;
        let start = self.inner.next_queue.fetch_add(1, Ordering::Relaxed);
        let queue = self
            .choose(&route, start, None, Instant::now())
            .ok_or_else(|| no_writable_queue(&prepared.topic))?;
        let addr = route.master_addr(&queue.broker_name)?.to_owned();
        let request = self.request(&prepared, &queue);
        self.inner
            .instance
            .remoting()
            .invoke_oneway(&addr, request, self.inner.config.send_timeout)
            .await
    }

    /// Stops accepting sends (sends in progress complete) and stops heartbeats.
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Relaxed);
        if let Some(task) = self
            .inner
            .heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// Sends `HEART_BEAT` with this producer's group to every master of every cached route,
    /// so brokers can reach it (transaction check-backs, `producerConnection`).
    pub async fn heartbeat(&self) {
        send_heartbeat(&self.inner).await;
    }

    fn prepare(&self, mut message: Message) -> Result<Prepared> {
        if self.inner.shut_down.load(Ordering::Relaxed) {
            return Err(ClientError::Shutdown);
        }
        let config = &self.inner.config;
        message.validate(config.max_body_bytes)?;
        let unique_id = match message.unique_id() {
            Some(id) => id.to_owned(),
            None => {
                let id = self.next_unique_id();
                message
                    .properties
                    .insert(property::UNIQ_KEY.into(), id.clone());
                id
            }
        };
        message
            .properties
            .entry(property::WAIT.into())
            .or_insert_with(|| "true".into());
        let properties = message.encoded_properties()?;
        let mut sys_flag = 0;
        if message.property(property::TRAN_MSG) == Some("true") {
            sys_flag |= sys_flag::TRANSACTION_PREPARED;
        }
        let mut body = message.body;
        if body.len() > config.compress_over_bytes {
            let compressed = compress(&body, config.compress_level)?;
            if compressed.len() < body.len() {
                body = compressed;
                sys_flag |= sys_flag::COMPRESSED;
            }
        }
        if body.len() > config.max_body_bytes {
            return Err(ClientError::MessageTooLarge {
                size: body.len(),
                max: config.max_body_bytes,
            });
        }

        Ok(Prepared {
            topic: message.topic,
            body,
            properties,
            sys_flag,
            flag: message.flag,
            unique_id,
            batch: false,
        })
    }

    async fn acquire(&self, deadline: Instant) -> Result<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout_at(deadline, self.inner.in_flight.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ClientError::Shutdown),
            Err(_) => Err(ClientError::Timeout {
                addr: "(producer in-flight window)".into(),
                request_code: RequestCode::SendMessageV2.as_i32(),
                timeout: self.inner.config.send_timeout,
            }),
        }
    }

    async fn route(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        let routes = self.inner.instance.routes();
        match routes.get(topic).await {
            Ok(route) if !route.write_queues.is_empty() => Ok(route),
            Ok(_) => Err(no_writable_queue(topic)),
            Err(ClientError::NoRoute { .. }) => {
                // RocketMQ's auto-create path: send to the brokers of the template topic,
                // which create the topic on first write if they allow it.
                let template = routes.get(DEFAULT_TOPIC).await.map_err(|_| ClientError::NoRoute {
                    topic: topic.to_owned(),
                    reason: "unknown to the NameServers, and no broker offers auto-creation (TBW102)".into(),
                })?;
                let mut route = TopicRoute::new(topic, template.data.clone());
                let queues = self.inner.config.default_topic_queue_nums.max(1);
                route.write_queues.retain(|q| q.queue_id < queues);
                if route.write_queues.is_empty() {
                    return Err(no_writable_queue(topic));
                }
                Ok(Arc::new(route))
            }
            Err(error) => Err(error),
        }
    }

    fn choose(
        &self,
        route: &TopicRoute,
        start: usize,
        avoid: Option<&str>,
        now: Instant,
    ) -> Option<MessageQueue> {
        let faults = &self.inner.faults;
        let enabled = self.inner.config.latency_fault_avoidance;
        // One clock read for all candidates (each `is_available` read the clock again).
        fault::pick_queue(&route.write_queues, start, avoid, |broker| {
            !enabled || faults.is_available_at(broker, now)
        })
        .cloned()
    }

    #[instrument(level = "debug", skip_all, fields(topic = %prepared.topic))]
    async fn send_prepared(&self, prepared: Prepared, target: Target<'_>) -> Result<SendResult> {
        let called = Instant::now();
        let deadline = called + self.inner.config.send_timeout;
        // Latency is measured from the moment the send holds a window slot: time spent
        // waiting for the window is backpressure, not broker latency. A slot free at once
        // needs neither a timer nor a second clock read.
        let (_permit, started) = match self.inner.in_flight.clone().try_acquire_owned() {
            Ok(permit) => (permit, called),
            Err(_) => match self.acquire(deadline).await {
                Ok(permit) => (permit, Instant::now()),
                Err(error) => {
                    self.inner.stats.record_failure();
                    return Err(error);
                }
            },
        };
        let body_bytes = prepared.body.len();
        let outcome = self.send_attempts(prepared, target, deadline).await;
        match &outcome {
            Ok(_) => self
                .inner
                .stats
                .record_success(started.elapsed(), body_bytes),
            Err(_) => self.inner.stats.record_failure(),
        }
        outcome
    }

    async fn send_attempts(
        &self,
        prepared: Prepared,
        target: Target<'_>,
        deadline: Instant,
    ) -> Result<SendResult> {
        let config = &self.inner.config;
        let attempts_max = match target {
            Target::Any => 1 + config.retries,
            Target::Queue(_) | Target::Selector(_) => 1,
        };
        let start = self.inner.next_queue.fetch_add(1, Ordering::Relaxed);
        let mut last_error = None;
        let mut avoid: Option<String> = None;
        let mut attempts = 0;
        while attempts < attempts_max {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            attempts += 1;
            let route = match self.route(&prepared.topic).await {
                Ok(route) => route,
                Err(error) if error.is_retryable() => {
                    last_error = Some(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let queue = match target {
                Target::Any => self.choose(
                    &route,
                    start.wrapping_add(attempts as usize - 1),
                    avoid.as_deref(),
                    now,
                ),
                Target::Queue(queue) => Some(queue.clone()),
                Target::Selector(selector) => selector(&route.write_queues)
                    .and_then(|i| route.write_queues.get(i))
                    .cloned(),
            };
            let Some(queue) = queue else {
                return Err(no_writable_queue(&prepared.topic));
            };
            match self
                .attempt(&prepared, &route, &queue, now, deadline - now)
                .await
            {
                Ok(result) => return Ok(result),
                Err(error) => {
                    warn!(topic = %prepared.topic, broker = %queue.broker_name, attempt = attempts, %error, "send attempt failed");
                    if !error.is_retryable() {
                        return Err(error);
                    }
                    if matches!(
                        error.response_code().and_then(ResponseCode::from_i32),
                        Some(ResponseCode::TopicNotExist | ResponseCode::NoPermission)
                    ) || matches!(error, ClientError::NoBrokerAddress { .. })
                    {
                        self.inner.instance.routes().invalidate(&prepared.topic);
                    }
                    avoid = Some(queue.broker_name.clone());
                    if let ClientError::ConnectBackoff { retry_in, .. } = &error {
                        // Refused locally, without touching the network (the broker's
                        // address is in reconnect backoff): not an attempt. Another broker
                        // is tried at once; when that one is refused the same way too, the
                        // backoff is waited out, within the send's deadline, so a send
                        // right after a broker restart does not fail while it is back.
                        if matches!(last_error, Some(ClientError::ConnectBackoff { .. })) {
                            let left = deadline.saturating_duration_since(Instant::now());
                            tokio::time::sleep((*retry_in).min(left)).await;
                        }
                        attempts -= 1;
                    }
                    last_error = Some(error);
                    if attempts < attempts_max {
                        self.inner.stats.record_retry();
                    }
                }
            }
        }
        let last = last_error.unwrap_or(ClientError::Timeout {
            addr: "(no attempt made)".into(),
            request_code: RequestCode::SendMessageV2.as_i32(),
            timeout: config.send_timeout,
        });
        Err(ClientError::SendFailed {
            topic: prepared.topic.clone(),
            attempts,
            last: Box::new(last),
        })
    }

    /// One attempt on one queue, `started` (just now) and allowed `timeout`; records
    /// latency or failure for fault avoidance.
    async fn attempt(
        &self,
        prepared: &Prepared,
        route: &TopicRoute,
        queue: &MessageQueue,
        started: Instant,
        timeout: Duration,
    ) -> Result<SendResult> {
        let addr = route.master_addr(&queue.broker_name)?;
        let request = self.request(prepared, queue);
        let code = request.code;
        let outcome = self
            .inner
            .instance
            .remoting()
            .invoke(addr, request, timeout)
            .await;
        let ended = Instant::now();
        let latency = ended.saturating_duration_since(started);
        let result = outcome
            .and_then(|response| self.process_response(addr, code, queue, prepared, &response));
        let failed = matches!(&result, Err(error) if error.is_retryable());
        self.inner
            .faults
            .record_at(&queue.broker_name, latency, failed, ended);
        debug!(broker = %queue.broker_name, queue_id = queue.queue_id, ?latency, ok = result.is_ok(), "send");
        result
    }

    fn request(&self, prepared: &Prepared, queue: &MessageQueue) -> RemotingCommand {
        let config = &self.inner.config;
        let fields = SendFields {
            producer_group: &config.group,
            topic: &prepared.topic,
            default_topic_queue_nums: config.default_topic_queue_nums,
            queue_id: queue.queue_id,
            sys_flag: prepared.sys_flag,
            born_timestamp: now_ms(),
            flag: prepared.flag,
            properties: &prepared.properties,
            batch: prepared.batch,
            broker_name: &queue.broker_name,
        };
        // Java sends batches with the V2 (one-letter) header, whatever `sendSmartMsg` says,
        // and brokers decode SEND_BATCH_MESSAGE headers as V2.
        let mut request = if prepared.batch {
            let mut request = RemotingCommand::request(RequestCode::SendBatchMessage);
            fields.write_v2(&mut request.ext_fields);
            request
        } else if config.use_v2_header {
            let mut request = RemotingCommand::request(RequestCode::SendMessageV2);
            fields.write_v2(&mut request.ext_fields);
            request
        } else {
            let mut request = RemotingCommand::request(RequestCode::SendMessage);
            fields.to_header().encode_into(&mut request);
            request
        };
        request.body = prepared.body.clone();
        request
    }

    fn process_response(
        &self,
        addr: &str,
        request_code: i32,
        queue: &MessageQueue,
        prepared: &Prepared,
        response: &RemotingCommand,
    ) -> Result<SendResult> {
        let status = match ResponseCode::from_i32(response.code) {
            Some(ResponseCode::Success) => SendStatus::Ok,
            Some(ResponseCode::FlushDiskTimeout) => SendStatus::FlushDiskTimeout,
            Some(ResponseCode::FlushSlaveTimeout) => SendStatus::FlushSlaveTimeout,
            Some(ResponseCode::SlaveNotAvailable) => SendStatus::SlaveNotAvailable,
            _ => return Err(crate::remoting::broker_error(addr, request_code, response)),
        };
        let header =
            SendMessageResponseHeader::decode(response).map_err(|source| ClientError::Wire {
                addr: addr.to_owned(),
                source,
            })?;
        Ok(SendResult {
            status,
            msg_id: prepared.unique_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue::new(
                prepared.topic.clone(),
                queue.broker_name.clone(),
                header.queue_id,
            ),
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
        })
    }
}

/// Heartbeat interval (`heartbeatBrokerInterval`, 30 s).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The producer's `HEART_BEAT` body: its client id and group.
fn heartbeat_data(inner: &Inner) -> HeartbeatData {
    HeartbeatData {
        client_id: inner.instance.client_id().to_owned(),
        producer_data_set: vec![ProducerData {
            group_name: inner.config.group.clone(),
        }],
        ..HeartbeatData::default()
    }
}

async fn send_heartbeat(inner: &Inner) {
    let instance = &inner.instance;
    let data = heartbeat_data(inner);
    let mut addrs: Vec<String> = instance
        .routes()
        .topics()
        .iter()
        .filter_map(|topic| instance.routes().cached(topic))
        .flat_map(|route| route.masters.values().cloned().collect::<Vec<_>>())
        .collect();
    addrs.sort();
    addrs.dedup();
    for addr in addrs {
        if let Err(error) = crate::consumer::api::heartbeat(instance, &addr, &data).await {
            debug!(%addr, %error, "producer heartbeat failed");
        }
    }
}

/// Sends the producer's heartbeat to `addr` the first time this producer uses it for a
/// transactional send: the periodic loop (every 30 s) would otherwise leave a broker learned
/// after start without a producer connection for the group, and its check-backs nowhere to go.
async fn introduce(inner: &Inner, addr: &str) {
    let first = inner
        .introduced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(addr.to_owned());
    if !first {
        return;
    }
    let data = heartbeat_data(inner);
    if let Err(error) = crate::consumer::api::heartbeat(&inner.instance, addr, &data).await {
        debug!(%addr, %error, "producer heartbeat failed");
        // Try again on the next transactional send to it.
        inner
            .introduced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
    }
}

async fn heartbeat_loop(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        send_heartbeat(&inner).await;
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A `UNIQ_KEY` generator for this process: the per-process random part mixes the start
/// time with an address, as Java mixes in a class loader's identity hash.
fn uniq_key_generator(ip: std::net::Ipv4Addr) -> UniqKeyGenerator {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let marker = 0u8;
    let address = std::ptr::addr_of!(marker) as usize as u32;
    let instance_hash = (nanos ^ address.rotate_left(16)) as i32;
    UniqKeyGenerator::new(std::net::IpAddr::V4(ip), std::process::id(), instance_hash)
}

fn no_writable_queue(topic: &str) -> ClientError {
    ClientError::NoRoute {
        topic: topic.to_owned(),
        reason: "the route has no writable queue on a broker with a master".into(),
    }
}

/// zlib-compresses a body.
fn compress(body: &[u8], level: u32) -> Result<Bytes> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(body.len() / 2),
        Compression::new(level.min(9)),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .map_err(|source| ClientError::Io {
            what: "compressing a message body".into(),
            source,
        })
}

#[cfg(test)]
mod tests;
