//! The state of one shard: its managers, its store, and what it owes the network (deferred
//! responses and broker-initiated requests).
//!
//! Single-threaded: owned by the shard's executor and borrowed mutably by one request at a
//! time. Responses that cannot be given at once (a send waiting for durability, a pull parked
//! in long polling) and requests the broker initiates (`NOTIFY_CONSUMER_IDS_CHANGED`) are put
//! in an outbox that the connection layer drains after each request and each [`tick`].
//!
//! [`tick`]: ShardState::tick

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::NotifyConsumerIdsChangedRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::config::{BrokerConfig, FlushMode};
use crate::features::schedule::{self, ScheduleService};
use crate::features::transaction::{self, TransactionService};
use crate::server::consumer::{ConsumerManager, IdsChanged};
use crate::server::group::{SubscriptionGroupConfig, SubscriptionGroupManager};
use crate::server::lock::RebalanceLockManager;
use crate::server::long_poll::LongPollRegistry;
use crate::server::offset::ConsumerOffsetTable;
use crate::server::producer::ProducerManager;
use crate::server::store::ShardStore;
use crate::server::topic::{TopicConfig, TopicConfigManager, TopicSettings};
use crate::server::{ConnId, handler};

/// How often silent clients and stale locks are looked for (RocketMQ scans every 10 s).
pub const CLIENT_SCAN_INTERVAL_MS: u64 = 10_000;

/// Most entries waiting in the outbox before the oldest broker-initiated notifications are
/// dropped (responses are never dropped; they are bounded by in-flight limits).
pub const OUTBOX_NOTIFICATIONS_MAX: usize = 100_000;

/// Who this shard is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIdentity {
    /// Shard index within the process.
    pub shard: usize,
    /// Cluster name.
    pub cluster_name: String,
    /// The name this shard registers under (`<brokerName>-s<i>`).
    pub broker_name: String,
    /// 0 = master.
    pub broker_id: u64,
    /// The address clients reach this shard at (published to NameServers, written into
    /// records as the store host).
    pub store_host: SocketAddr,
}

impl ShardIdentity {
    /// The identity of shard `shard` of `config`, published at `store_host`.
    pub fn of(config: &BrokerConfig, shard: usize, store_host: SocketAddr) -> Self {
        ShardIdentity {
            shard,
            cluster_name: config.broker.cluster_name.clone(),
            broker_name: config.shard_broker_name(shard),
            broker_id: config.broker.broker_id,
            store_host,
        }
    }
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    /// Its id.
    pub id: ConnId,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// Something to write to a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The connection.
    pub conn: ConnId,
    /// A response, or a broker-initiated request.
    pub command: RemotingCommand,
}

/// A pull parked in long polling, re-run when woken.
#[derive(Debug, Clone)]
pub struct ParkedPull {
    /// Where it came from.
    pub conn: Conn,
    /// The original request.
    pub request: RemotingCommand,
}

/// A send response held until the store reports its record durable.
#[derive(Debug)]
struct AwaitingAck {
    conn: ConnId,
    end_offset: u64,
    deadline_ms: u64,
    response: Option<RemotingCommand>,
}

/// Parked pulls to wake once an appended record becomes visible (the store shows only
/// records it may acknowledge).
#[derive(Debug)]
struct PendingWake {
    topic: String,
    queue_id: i32,
    max_offset: i64,
    end_offset: u64,
}

/// A change made by an admin request on one shard, to be applied on every other shard of
/// the process (the process-wide layer carries it over a channel).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminChange {
    /// A topic was created or updated.
    TopicUpdated(TopicConfig),
    /// A topic was deleted.
    TopicDeleted(String),
    /// A subscription group was created or updated.
    GroupUpdated(SubscriptionGroupConfig),
    /// A subscription group was deleted (with its offsets when `clean_offset`).
    GroupDeleted {
        /// The group.
        group: String,
        /// Also forget its offsets.
        clean_offset: bool,
    },
    /// Runtime broker configuration keys were changed (`UPDATE_BROKER_CONFIG`), as
    /// RocketMQ key/value pairs already validated on the shard that received them.
    BrokerConfigUpdated(Vec<(String, String)>),
}

/// Counters for `GET_BROKER_RUNTIME_INFO` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Messages appended.
    pub put_messages: u64,
    /// Body bytes appended.
    pub put_bytes: u64,
    /// Messages returned by pulls.
    pub get_messages: u64,
    /// Bytes returned by pulls.
    pub get_bytes: u64,
    /// Sends refused (any error).
    pub put_failures: u64,
    /// Handed-back messages stored for retry (`CONSUMER_SEND_MSG_BACK`).
    pub send_back_retry: u64,
    /// Handed-back messages stored in a dead-letter topic.
    pub send_back_dlq: u64,
    /// Wall-clock ms the shard started.
    pub boot_timestamp_ms: u64,
}

/// One shard's broker state.
#[derive(Debug)]
pub struct ShardState<S> {
    /// Who this shard is.
    pub identity: ShardIdentity,
    /// The broker configuration (shared read-only by all shards).
    pub config: Arc<BrokerConfig>,
    /// The store.
    pub store: S,
    /// Topics.
    pub topics: TopicConfigManager,
    /// Subscription groups.
    pub groups: SubscriptionGroupManager,
    /// Live consumers.
    pub consumers: ConsumerManager,
    /// Live producers.
    pub producers: ProducerManager,
    /// Orderly-consumption queue locks.
    pub locks: RebalanceLockManager,
    /// Committed consumer offsets.
    pub offsets: ConsumerOffsetTable,
    /// Pulls waiting for messages.
    pub pulls: LongPollRegistry<ParkedPull>,
    /// Counters.
    pub stats: ShardStats,
    /// Delay levels and delivery progress of delayed messages.
    pub schedule: ScheduleService,
    /// Transactional messages: decided half messages and the check-back schedule.
    pub transactions: TransactionService,
    /// Compiled SQL92 subscriptions.
    pub filters: crate::features::filter::FilterCache,
    /// Pull response bodies to splice from the CommitLog files.
    pub bodies: crate::server::body::PendingBodies,
    /// Query reads running as tasks on the shard's ring.
    pub deferred: crate::server::deferred::Deferred<S>,
    /// Admin requests relayed to consumer clients, waiting for their answer.
    pub relays: handler::relay::RelayTable,
    awaiting: VecDeque<AwaitingAck>,
    pending_wakes: VecDeque<PendingWake>,
    outbox: Vec<Outgoing>,
    admin_out: Vec<AdminChange>,
    register_soon: RegisterSignal,
    last_scan_ms: u64,
    saved_versions: (i64, i64, u64),
}

impl<S: ShardStore> ShardState<S> {
    /// A fresh shard state over `store`.
    pub fn new(identity: ShardIdentity, config: Arc<BrokerConfig>, store: S, now_ms: u64) -> Self {
        let topics = TopicConfigManager::new(
            TopicSettings {
                auto_create_topic: config.topics.auto_create_topic,
                default_topic_queue_nums: config.topics.default_topic_queue_nums as i32,
                cluster_name: identity.cluster_name.clone(),
                broker_name: identity.broker_name.clone(),
            },
            now_ms,
        );
        let groups = SubscriptionGroupManager::new(config.topics.auto_create_subscription_group);
        let pulls = LongPollRegistry::new(config.limits.max_pending_pulls);
        ShardState {
            identity,
            topics,
            groups,
            consumers: ConsumerManager::new(),
            producers: ProducerManager::new(),
            locks: RebalanceLockManager::new(),
            offsets: ConsumerOffsetTable::new(),
            pulls,
            stats: ShardStats {
                boot_timestamp_ms: now_ms,
                ..ShardStats::default()
            },
            schedule: ScheduleService::new(config.schedule.delay_levels_ms()),
            transactions: TransactionService::new(config.transaction.check_interval_ms, now_ms),
            store,
            config,
            filters: crate::features::filter::FilterCache::new(),
            bodies: Default::default(),
            deferred: Default::default(),
            relays: Default::default(),
            awaiting: VecDeque::new(),
            pending_wakes: VecDeque::new(),
            outbox: Vec::new(),
            admin_out: Vec::new(),
            register_soon: RegisterSignal::default(),
            last_scan_ms: now_ms,
            saved_versions: (0, 0, 0),
        }
        .restored(now_ms)
    }

    /// Loads the persisted topics, groups and offsets from the store.
    fn restored(mut self, now_ms: u64) -> Self {
        let meta = self.store.load_meta();
        let (topics, groups, offsets) = (meta.topics.len(), meta.groups.len(), meta.offsets.len());
        for topic in meta.topics {
            if let Err(error) = self.topics.create_or_update(topic, now_ms) {
                tracing::warn!(target: "ringmq::server::state", %error, "persisted topic skipped");
            }
        }
        for group in meta.groups {
            if let Err(error) = self.groups.update(group, now_ms) {
                tracing::warn!(target: "ringmq::server::state", %error, "persisted group skipped");
            }
        }
        self.offsets.restore(
            meta.offsets
                .into_iter()
                .map(|((topic, group), queues)| {
                    (crate::server::offset::offset_key(&topic, &group), queues)
                })
                .collect(),
        );
        self.schedule.restore(&self.offsets);
        if topics + groups + offsets > 0 {
            tracing::info!(target: "ringmq::server::state", shard = self.identity.shard, topics,
                groups, offsets, "metadata restored");
        }
        self.saved_versions = self.meta_versions();
        self
    }

    fn meta_versions(&self) -> (i64, i64, u64) {
        (
            self.topics.data_version().counter,
            self.groups.data_version().counter,
            self.offsets.version(),
        )
    }

    /// Saves topics, groups and offsets through the store when any changed since the last
    /// save. Call every `flush_consumer_offset_interval_ms` and on shutdown.
    pub fn persist_meta(&mut self) -> Result<(), crate::server::store::StoreError> {
        let versions = self.meta_versions();
        if versions == self.saved_versions {
            return Ok(());
        }
        let snapshot = crate::server::store::MetaSnapshot {
            topics: self.topics.all().cloned().collect(),
            groups: self.groups.all().cloned().collect(),
            offsets: self
                .offsets
                .snapshot()
                .into_iter()
                .filter_map(|(key, queues)| {
                    let (topic, group) = key.split_once('@')?;
                    Some(((topic.to_owned(), group.to_owned()), queues))
                })
                .collect(),
        };
        self.store.save_meta(&snapshot)?;
        self.saved_versions = versions;
        Ok(())
    }

    /// Processes one request. Returns the response to send now, if any; a deferred
    /// response (durable send, parked pull) appears in the outbox later. The caller must not
    /// send anything back for a oneway request (the result is `None` for those).
    pub fn handle(
        &mut self,
        conn: Conn,
        request: RemotingCommand,
        now_ms: u64,
    ) -> Option<RemotingCommand> {
        let oneway = request.is_oneway();
        let response = handler::dispatch(self, conn, &request, now_ms);
        if oneway { None } else { response }
    }

    /// A response arrived from a client (to a request the broker sent it): answers the
    /// relay waiting for it, if any.
    pub fn handle_response(&mut self, conn: ConnId, response: RemotingCommand) {
        if !handler::relay::on_client_response(self, conn, response) {
            tracing::trace!(target: "ringmq::server::state", conn = conn.0,
                "response to a notification ignored");
        }
    }

    /// Runs the continuations of deferred tasks that finished.
    fn run_deferred(&mut self, now_ms: u64) {
        while self.deferred.has_done() {
            for continuation in self.deferred.take_done() {
                continuation(self, now_ms);
            }
        }
    }

    /// Housekeeping: releases durable send acknowledgements (and times out those that
    /// waited too long), answers expired long polls, expires silent clients. Call after
    /// store progress and at [`Self::next_deadline_ms`].
    pub fn tick(&mut self, now_ms: u64) {
        self.run_deferred(now_ms);
        handler::relay::expire(self, now_ms);
        schedule::deliver_due(self, now_ms);
        if let Err(error) = self.store.commit() {
            tracing::error!(target: "ringmq::server::store", shard = self.identity.shard, %error,
                "group commit failed");
        }
        self.release_durable(now_ms);
        for parked in self.pulls.expire(now_ms) {
            self.rerun_pull(parked, now_ms);
        }
        if now_ms.saturating_sub(self.last_scan_ms) >= CLIENT_SCAN_INTERVAL_MS {
            self.last_scan_ms = now_ms;
            let events = self.consumers.scan_expired(now_ms);
            self.notify_ids_changed(events);
            self.producers.scan_expired(now_ms);
            self.locks.purge_expired(now_ms);
        }
        transaction::check::run_if_due(self, now_ms);
    }

    /// After a batch of requests: group-commits the store and releases what became durable
    /// (the cheap part of [`Self::tick`]).
    pub fn after_requests(&mut self, now_ms: u64) {
        if let Err(error) = self.store.commit() {
            tracing::error!(target: "ringmq::server::store", shard = self.identity.shard, %error,
                "group commit failed");
        }
        self.release_durable(now_ms);
        transaction::release_checks(self);
        self.run_deferred(now_ms);
    }

    /// The next time [`Self::tick`] has work (a long-poll or acknowledgement deadline).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let ack = self.awaiting.front().map(|a| a.deadline_ms);
        let scan = Some(self.last_scan_ms + CLIENT_SCAN_INTERVAL_MS);
        let due = self.schedule.next_due_ms();
        let check = Some(self.transactions.next_check_ms());
        let relay = self.relays.next_deadline_ms();
        [self.pulls.next_deadline_ms(), ack, scan, due, check, relay]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes everything to be written: deferred responses and broker-initiated requests.
    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// Takes admin changes to apply on the other shards of this process.
    pub fn take_admin_changes(&mut self) -> Vec<AdminChange> {
        std::mem::take(&mut self.admin_out)
    }

    /// Whether the topic table changed so that the NameServers should be told now rather
    /// than at the next periodic registration; clears the flag.
    pub fn take_register_request(&mut self) -> bool {
        std::mem::take(&mut self.register_soon.raised)
    }

    /// Ready once an early registration was asked for (the flag stays set for
    /// [`take_register_request`](Self::take_register_request)); otherwise remembers the
    /// waker so the registration loop wakes at once instead of at its next tick.
    pub fn poll_register_request(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.register_soon.raised {
            Poll::Ready(())
        } else {
            self.register_soon.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Applies a change made on another shard of this process.
    pub fn apply_admin_change(&mut self, change: AdminChange, now_ms: u64) {
        let result = match change {
            AdminChange::TopicUpdated(config) => self
                .topics
                .create_or_update(config, now_ms)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            AdminChange::TopicDeleted(topic) => {
                self.offsets.remove_topic(&topic);
                self.store.delete_topic(&topic);
                self.topics
                    .delete(&topic, now_ms)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            AdminChange::GroupUpdated(config) => self
                .groups
                .update(config, now_ms)
                .map_err(|e| e.to_string()),
            AdminChange::GroupDeleted {
                group,
                clean_offset,
            } => {
                self.groups.delete(&group, now_ms);
                if clean_offset {
                    self.offsets.remove_group(&group);
                }
                Ok(())
            }
            AdminChange::BrokerConfigUpdated(entries) => {
                handler::broker_config::apply_from_other_shard(self, &entries, now_ms)
            }
        };
        match result {
            Ok(()) => {
                self.register_soon.raise();
                self.persist_meta_now();
            }
            Err(error) => {
                tracing::warn!(target: "ringmq::server::admin", shard = self.identity.shard,
                %error, "admin change from another shard not applied")
            }
        }
    }

    /// Forgets a closed connection: its clients, its parked pulls, its pending acks.
    pub fn connection_closed(&mut self, conn: ConnId) {
        let events = self.consumers.connection_closed(conn);
        self.notify_ids_changed(events);
        self.producers.connection_closed(conn);
        self.pulls.connection_closed(conn);
        handler::relay::connection_closed(self, conn);
        for ack in &mut self.awaiting {
            if ack.conn == conn {
                ack.response = None;
            }
        }
        self.outbox.retain(|o| o.conn != conn);
    }

    // ---- used by handlers ------------------------------------------------------------

    /// Records an admin change made here, for the other shards, and asks for a registration.
    /// Persists the metadata at once, as RocketMQ's `TopicConfigManager` and
    /// `SubscriptionGroupManager` do on every change.
    pub(crate) fn record_admin_change(&mut self, change: AdminChange) {
        self.admin_out.push(change);
        self.register_soon.raise();
        self.persist_meta_now();
    }

    /// Asks for an early registration (a topic was auto-created) and persists the metadata
    /// at once, as RocketMQ does for topics created on a send.
    pub(crate) fn request_register(&mut self) {
        self.register_soon.raise();
        self.persist_meta_now();
    }

    /// Saves topics, groups and offsets now: a topic or group change must survive a crash
    /// right after it was acknowledged (the periodic save alone left a window of
    /// `flush_consumer_offset_interval_ms` in which a SIGKILL lost a created topic, and with
    /// it every message sent to it). Failures are logged; the periodic save retries.
    fn persist_meta_now(&mut self) {
        if let Err(error) = self.persist_meta() {
            tracing::error!(target: "ringmq::server::admin", shard = self.identity.shard,
                %error, "persisting topics, groups and offsets after a change failed");
        }
    }

    /// Answers a send now if its record is durable and nothing older waits, else holds the
    /// response until it is (acknowledgements go out in append order).
    pub(crate) fn reply_when_durable(
        &mut self,
        conn: ConnId,
        end_offset: u64,
        response: RemotingCommand,
        now_ms: u64,
    ) -> Option<RemotingCommand> {
        let durable = self.config.store.flush_mode == FlushMode::Memory
            || self.store.durable_offset() >= end_offset;
        if durable && self.awaiting.is_empty() {
            return Some(response);
        }
        self.awaiting.push_back(AwaitingAck {
            conn,
            end_offset,
            deadline_ms: now_ms + self.config.store.sync_flush_timeout_ms,
            response: Some(response),
        });
        self.release_durable(now_ms);
        None
    }

    fn release_durable(&mut self, now_ms: u64) {
        schedule::record_durable(self);
        let durable = self.store.durable_offset();
        while self
            .pending_wakes
            .front()
            .is_some_and(|w| w.end_offset <= durable)
        {
            if let Some(wake) = self.pending_wakes.pop_front() {
                self.wake_pulls(&wake.topic, wake.queue_id, wake.max_offset, now_ms);
            }
        }
        while let Some(front) = self.awaiting.front() {
            let ready = front.end_offset <= durable;
            let late = front.deadline_ms <= now_ms;
            if !ready && !late {
                break;
            }
            let Some(ack) = self.awaiting.pop_front() else {
                break;
            };
            let Some(mut response) = ack.response else {
                continue;
            };
            if !ready {
                // RocketMQ answers FLUSH_DISK_TIMEOUT: the message is stored but not yet
                // known durable; the producer decides whether to resend.
                response.code = ResponseCode::FlushDiskTimeout.as_i32();
                response.remark = Some(format!(
                    "not durable after {} ms (flush mode {:?})",
                    self.config.store.sync_flush_timeout_ms, self.config.store.flush_mode
                ));
            }
            self.outbox.push(Outgoing {
                conn: ack.conn,
                command: response,
            });
        }
    }

    /// Wakes pulls waiting on a queue that now ends at `max_offset`, once the record ending
    /// at CommitLog offset `end_offset` is visible to reads (durable under the flush mode).
    pub(crate) fn wake_pulls_when_visible(
        &mut self,
        topic: &str,
        queue_id: i32,
        max_offset: i64,
        end_offset: u64,
        now_ms: u64,
    ) {
        if self.pending_wakes.is_empty() && self.store.durable_offset() >= end_offset {
            self.wake_pulls(topic, queue_id, max_offset, now_ms);
            return;
        }
        self.pending_wakes.push_back(PendingWake {
            topic: topic.to_owned(),
            queue_id,
            max_offset,
            end_offset,
        });
    }

    /// Wakes pulls waiting on a queue that now ends at `max_offset`.
    fn wake_pulls(&mut self, topic: &str, queue_id: i32, max_offset: i64, now_ms: u64) {
        for parked in self.pulls.notify_arrival(topic, queue_id, max_offset) {
            self.rerun_pull(parked, now_ms);
        }
    }

    fn rerun_pull(&mut self, parked: ParkedPull, now_ms: u64) {
        let conn = parked.conn.id;
        let oneway = parked.request.is_oneway();
        if let Some(response) = handler::pull::rerun(self, parked, now_ms)
            && !oneway
        {
            self.outbox.push(Outgoing {
                conn,
                command: response,
            });
        }
    }

    /// Queues the response to a request that was deferred (its handler returned `None`).
    pub(crate) fn respond_later(&mut self, conn: ConnId, response: RemotingCommand) {
        self.outbox.push(Outgoing {
            conn,
            command: response,
        });
    }

    /// Queues a broker-initiated request (`CHECK_TRANSACTION_STATE`) for `conn`. Returns
    /// false (and drops it) when the outbox holds [`OUTBOX_NOTIFICATIONS_MAX`] entries.
    pub(crate) fn push_broker_request(&mut self, conn: ConnId, command: RemotingCommand) -> bool {
        if self.outbox.len() >= OUTBOX_NOTIFICATIONS_MAX {
            return false;
        }
        self.outbox.push(Outgoing { conn, command });
        true
    }

    /// Sends `NOTIFY_CONSUMER_IDS_CHANGED` (oneway) to the remaining clients of each group,
    /// when the group allows it.
    pub(crate) fn notify_ids_changed(&mut self, events: Vec<IdsChanged>) {
        for event in events {
            let enabled = self
                .groups
                .get(&event.group)
                .is_none_or(|g| g.notify_consumer_ids_changed_enable);
            if !enabled {
                continue;
            }
            for conn in event.notify {
                if self.outbox.len() >= OUTBOX_NOTIFICATIONS_MAX {
                    tracing::warn!(target: "ringmq::server::consumer", group = %event.group,
                        "outbox full; consumer-ids-changed notification dropped");
                    return;
                }
                let mut request = RemotingCommand::request(RequestCode::NotifyConsumerIdsChanged);
                request.set_oneway();
                NotifyConsumerIdsChangedRequestHeader {
                    consumer_group: event.group.clone(),
                    rpc: Default::default(),
                }
                .encode_into(&mut request);
                self.outbox.push(Outgoing {
                    conn,
                    command: request,
                });
            }
        }
    }
}

/// "Tell the NameServers now": set when the topic table changed, taken by the shard's
/// registration loop, which it wakes.
#[derive(Debug, Default)]
struct RegisterSignal {
    raised: bool,
    waker: Option<Waker>,
}

impl RegisterSignal {
    fn raise(&mut self) {
        self.raised = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}
