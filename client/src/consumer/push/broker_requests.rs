//! The push consumer's side of the broker-initiated requests (see
//! [`crate::consumer::broker_requests`]): its running info, the offset reset and consuming
//! one message directly.
//!
//! The handle holds the consumer's core weakly: the client instance keeps handles, and the
//! core keeps the instance, so a strong reference would keep a stopped consumer alive.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use ringmq_wire::body::client::{
    ConsumerRunningInfo, PROP_CONSUME_ORDERLY, PROP_CONSUME_TYPE, PROP_CONSUMER_START_TIMESTAMP,
    PROP_THREADPOOL_CORE_SIZE,
};
use tracing::{info, warn};

use super::{Core, ORDERLY_RELEASE_WAIT};
use crate::consumer::broker_requests::{CmResult, ConsumeMessageDirectlyResult, ConsumerHandle};
use crate::consumer::message_ext::MessageExt;
use crate::consumer::process_queue::ProcessQueue;
use crate::consumer::push::{ConsumeResult, MessageListener, OrderlyResult};
use crate::queue::MessageQueue;
use crate::remoting::BoxFuture;

/// A running push consumer, as the client instance's request handlers see it.
pub(super) struct PushHandle(Weak<Core>);

impl PushHandle {
    pub(super) fn new(core: &Arc<Core>) -> Self {
        PushHandle(Arc::downgrade(core))
    }
}

impl ConsumerHandle for PushHandle {
    fn running_info(&self) -> ConsumerRunningInfo {
        self.0
            .upgrade()
            .map_or_else(ConsumerRunningInfo::default, |core| core.running_info())
    }

    fn reset_offset(
        &self,
        topic: String,
        offsets: BTreeMap<MessageQueue, i64>,
    ) -> BoxFuture<usize> {
        let core = self.0.upgrade();
        Box::pin(async move {
            match core {
                Some(core) => core.reset_offsets(&topic, &offsets).await,
                None => 0,
            }
        })
    }

    fn consume_directly(&self, message: MessageExt) -> BoxFuture<ConsumeMessageDirectlyResult> {
        let core = self.0.upgrade();
        Box::pin(async move {
            match core {
                Some(core) => core.consume_directly(message).await,
                // Stopped meanwhile: nothing ran.
                None => ConsumeMessageDirectlyResult {
                    auto_commit: true,
                    consume_result: None,
                    order: false,
                    remark: Some("the consumer has stopped".to_owned()),
                    spent_time_mills: 0,
                },
            }
        })
    }
}

impl Core {
    /// RocketMQ's `DefaultMQPushConsumerImpl.consumerRunningInfo`: settings under Java's
    /// property names, the `PROP_*` entries, subscriptions and every held queue's state.
    fn running_info(&self) -> ConsumerRunningInfo {
        let config = &self.config;
        let orderly = self.listener.is_orderly();
        let properties: BTreeMap<String, String> = [
            (PROP_CONSUME_ORDERLY, orderly.to_string()),
            (PROP_CONSUME_TYPE, "CONSUME_PASSIVELY".to_owned()),
            (
                PROP_THREADPOOL_CORE_SIZE,
                config.consume_threads.to_string(),
            ),
            (PROP_CONSUMER_START_TIMESTAMP, self.started_ms.to_string()),
            ("consumerGroup", config.group.clone()),
            ("messageModel", config.message_model.name().to_owned()),
            (
                "consumeFromWhere",
                config.consume_from_where.name().to_owned(),
            ),
            ("consumeThreadMin", config.consume_threads.to_string()),
            ("consumeThreadMax", config.consume_threads.to_string()),
            (
                "consumeMessageBatchMaxSize",
                config.consume_batch_max_size.to_string(),
            ),
            ("pullBatchSize", config.pull_batch_size.to_string()),
            (
                "pullThresholdForQueue",
                config.pull_threshold_for_queue.to_string(),
            ),
            (
                "pullThresholdSizeForQueue",
                (config.pull_threshold_size_for_queue_bytes / (1024 * 1024)).to_string(),
            ),
            (
                "consumeConcurrentlyMaxSpan",
                config.consume_concurrently_max_span.to_string(),
            ),
            ("maxReconsumeTimes", self.max_reconsume_times().to_string()),
            (
                "allocateMessageQueueStrategy",
                config.strategy.name().to_owned(),
            ),
            (
                "persistConsumerOffsetInterval",
                config.persist_interval.as_millis().to_string(),
            ),
            (
                "heartbeatBrokerInterval",
                config.heartbeat_interval.as_millis().to_string(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let held: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .queues()
            .iter()
            .map(|(queue, pq)| (queue.clone(), pq.clone()))
            .collect();
        let mq_table = held
            .into_iter()
            .map(|(queue, pq)| {
                let commit_offset = self.offsets.cached(&queue).unwrap_or(-1);
                let info = pq.info(commit_offset);
                (queue, info)
            })
            .collect();
        ConsumerRunningInfo {
            jstack: None,
            mq_table,
            properties,
            // Per-topic pull/consume rates are not measured yet: the table stays empty
            // rather than report made-up zeros.
            status_table: BTreeMap::new(),
            subscription_set: self.subscriptions.values().cloned().collect(),
            user_consumer_info: BTreeMap::new(),
        }
    }

    /// RocketMQ's `ConsumeMessage{Concurrently,Orderly}Service.consumeMessageDirectly`: the
    /// listener runs on `message` alone, outside the queues (no offset moves, a failure is
    /// not sent back); a panic is reported as `CR_THROW_EXCEPTION` with its message.
    async fn consume_directly(&self, message: MessageExt) -> ConsumeMessageDirectlyResult {
        let started = std::time::Instant::now();
        let offset_msg_id = message.offset_msg_id.clone();
        let (order, outcome) = match &self.listener {
            MessageListener::Concurrently(listener) => (
                false,
                tokio::spawn(listener(vec![message]))
                    .await
                    .map(|result| match result {
                        ConsumeResult::Success => CmResult::Success,
                        ConsumeResult::ReconsumeLater => CmResult::Later,
                    }),
            ),
            MessageListener::Orderly(listener) => (
                true,
                tokio::spawn(listener(vec![message]))
                    .await
                    .map(|result| match result {
                        OrderlyResult::Success => CmResult::Success,
                        OrderlyResult::SuspendCurrentQueueAMoment => CmResult::Later,
                    }),
            ),
        };
        let (consume_result, remark) = match outcome {
            Ok(result) => (result, None),
            Err(error) => {
                warn!(group = %self.config.group, msg = %offset_msg_id, %error,
                    "listener failed on a directly consumed message");
                (CmResult::ThrowException, Some(error.to_string()))
            }
        };
        ConsumeMessageDirectlyResult {
            auto_commit: true,
            consume_result: Some(consume_result),
            order,
            remark,
            spent_time_mills: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// RocketMQ's `MQClientInstance.resetOffset` for a push consumer: with rebalancing paused,
    /// drop every held queue of `topic` listed in `offsets` (cached and in-flight messages are
    /// discarded; results of listener calls still running are ignored), set and persist the
    /// new offsets, release the queues, then rebalance so they are taken again from those
    /// offsets. Returns how many queues were reset.
    pub(super) async fn reset_offsets(
        self: &Arc<Self>,
        topic: &str,
        offsets: &BTreeMap<MessageQueue, i64>,
    ) -> usize {
        let reset = {
            let _paused = self.rebalancing.lock().await;
            let removed: Vec<(MessageQueue, Arc<ProcessQueue>, i64)> = {
                let mut queues = self.queues();
                offsets
                    .iter()
                    .filter(|(queue, _)| queue.topic == topic)
                    .filter_map(|(queue, offset)| {
                        queues.remove(queue).map(|pq| (queue.clone(), pq, *offset))
                    })
                    .collect()
            };
            if removed.is_empty() {
                return 0;
            }
            let orderly = self.listener.is_orderly() && self.clustering();
            // Orderly: wait (bounded) for the batch in progress, as a rebalance does, so
            // that its commit does not land after the reset.
            let mut serials = Vec::new();
            if orderly {
                for (queue, pq, _) in &removed {
                    match tokio::time::timeout(ORDERLY_RELEASE_WAIT, pq.consume_lock.lock()).await {
                        Ok(guard) => serials.push(guard),
                        Err(_) => warn!(%queue, "queue still consuming during offset reset"),
                    }
                }
            }
            for (_, pq, _) in &removed {
                pq.drop_queue();
            }
            for (queue, _, offset) in &removed {
                self.offsets.update(queue, *offset, false);
            }
            let queues: Vec<MessageQueue> = removed.iter().map(|(q, _, _)| q.clone()).collect();
            if let Err(error) = self
                .offsets
                .persist(&self.instance, Some(&queues), true)
                .await
            {
                warn!(%error, "persisting reset offsets failed");
            }
            if orderly {
                self.unlock(&queues).await;
            }
            drop(serials);
            for queue in &queues {
                self.offsets.forget(queue);
            }
            info!(group = %self.config.group, topic, queues = ?queues, "offsets reset; queues released");
            removed.len()
        };
        self.rebalance().await;
        reset
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use bytes::Bytes;
    use ringmq_wire::body::client::{
        PROP_CLIENT_VERSION, PROP_NAMESERVER_ADDR, ProcessQueueInfo, ResetOffsetBody,
    };
    use ringmq_wire::header::CommandHeader;
    use ringmq_wire::header::consumer::{
        GetConsumerRunningInfoRequestHeader, ResetOffsetRequestHeader,
    };
    use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
    use tokio::sync::mpsc;

    use super::*;
    use crate::consumer::push::tests::{WAIT, collect, config, instance, produce, setup};
    use crate::consumer::push::{ConsumeResult, MessageListener, PushConsumer};
    use crate::testutil::mini_broker::MiniBroker;

    async fn running_info(broker: &MiniBroker, group: &str, client_id: &str) -> RemotingCommand {
        let mut request = RemotingCommand::request(RequestCode::GetConsumerRunningInfo);
        GetConsumerRunningInfoRequestHeader {
            consumer_group: group.into(),
            client_id: client_id.into(),
            jstack_enable: Some(false),
            rpc: Default::default(),
        }
        .encode_into(&mut request);
        broker.invoke_client(client_id, request).await
    }

    /// Asks for the running info until every queue of `T` reports `expected` as its commit
    /// offset (listener calls finish a little after their messages arrive).
    async fn settled_info(
        broker: &MiniBroker,
        client_id: &str,
        expected: &BTreeMap<i32, i64>,
    ) -> ConsumerRunningInfo {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let response = running_info(broker, "GR", client_id).await;
            assert_eq!(
                response.code,
                ResponseCode::Success.as_i32(),
                "{response:?}"
            );
            let info = ConsumerRunningInfo::decode(&response.body).expect("running info body");
            let offsets: BTreeMap<i32, i64> = info
                .mq_table
                .iter()
                .filter(|(queue, _)| queue.topic == "T")
                .map(|(queue, pq)| (queue.queue_id, pq.commit_offset))
                .collect();
            if &offsets == expected {
                return info;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "offsets {offsets:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn running_info_and_offset_reset_from_the_broker() {
        let (broker, namesrv) = setup("GR").await;
        produce(&namesrv, (0..20).map(|i| format!("m{i}")), None).await;
        let per_queue: BTreeMap<i32, i64> = (0..4)
            .map(|q| {
                let state = broker.state.lock().expect("state");
                (
                    q,
                    state.queues.get(&("T".to_owned(), q)).map_or(0, Vec::len) as i64,
                )
            })
            .collect();
        assert_eq!(per_queue.values().sum::<i64>(), 20);

        let client = instance(&namesrv, "cr");
        let client_id = client.client_id().to_owned();
        let (tx, mut rx) = mpsc::channel(100);
        let mut consumer = PushConsumer::new(client, config("GR")).expect("consumer");
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
        assert_eq!(collect(&mut rx, 20).await.len(), 20);

        // GET_CONSUMER_RUNNING_INFO: properties, subscriptions, per-queue state.
        let info = settled_info(&broker, &client_id, &per_queue).await;
        assert_eq!(info.property(PROP_CONSUME_TYPE), Some("CONSUME_PASSIVELY"));
        assert_eq!(info.property(PROP_CONSUME_ORDERLY), Some("false"));
        assert_eq!(info.property(PROP_NAMESERVER_ADDR), Some(namesrv.as_str()));
        assert_eq!(info.property(PROP_CLIENT_VERSION), Some("V5_3_1_SNAPSHOT"));
        assert_eq!(info.property("consumerGroup"), Some("GR"));
        let started: i64 = info
            .property(PROP_CONSUMER_START_TIMESTAMP)
            .expect("start timestamp")
            .parse()
            .expect("a number, as Java's analyzeSubscription parses it");
        assert!(started > 0);
        let topics: BTreeSet<&str> = info
            .subscription_set
            .iter()
            .map(|s| s.topic.as_str())
            .collect();
        assert_eq!(topics, BTreeSet::from(["%RETRY%GR", "T"]));
        let queue0 = &info.mq_table[&MessageQueue::new("T", "broker-a", 0)];
        assert_eq!(
            ProcessQueueInfo {
                last_consume_timestamp: 0,
                last_pull_timestamp: 0,
                ..*queue0
            },
            ProcessQueueInfo {
                commit_offset: per_queue[&0],
                ..ProcessQueueInfo::default()
            }
        );
        assert!(queue0.last_pull_timestamp > 0 && queue0.last_consume_timestamp > 0);
        assert!(info.mq_table.keys().any(|q| q.topic == "%RETRY%GR"));

        // An unknown group is an error naming it, as Java's client answers.
        let unknown = running_info(&broker, "nope", &client_id).await;
        assert_eq!(unknown.code, ResponseCode::SystemError.as_i32());
        assert!(unknown.remark.as_deref().unwrap_or("").contains("<nope>"));

        // RESET_CONSUMER_CLIENT_OFFSET: queue 0 back to 0, queue 1 back to 2; queue 2 and a
        // queue of another topic are listed with offsets this consumer must ignore.
        let mut request = RemotingCommand::request(RequestCode::ResetConsumerClientOffset);
        ResetOffsetRequestHeader {
            topic: "T".into(),
            group: "GR".into(),
            timestamp: 0,
            is_force: true,
            queue_id: None,
            offset: None,
            rpc: Default::default(),
        }
        .encode_into(&mut request);
        let table = BTreeMap::from([
            (MessageQueue::new("T", "broker-a", 0), 0),
            (MessageQueue::new("T", "broker-a", 1), 2),
            (MessageQueue::new("T", "broker-a", 2), per_queue[&2]),
            (MessageQueue::new("Other", "broker-a", 0), 0),
        ]);
        request.body = ResetOffsetBody {
            offset_table: table,
        }
        .encode()
        .into();
        let response = broker.invoke_client(&client_id, request).await;
        assert_eq!(
            response.code,
            ResponseCode::Success.as_i32(),
            "{response:?}"
        );

        // Exactly the messages after the new offsets come again, and the offsets end where
        // they were.
        let again: BTreeSet<(i32, i64)> =
            collect(&mut rx, (per_queue[&0] + per_queue[&1] - 2) as usize)
                .await
                .iter()
                .map(|m| (m.queue_id, m.queue_offset))
                .collect();
        let expected: BTreeSet<(i32, i64)> = (0..per_queue[&0])
            .map(|o| (0, o))
            .chain((2..per_queue[&1]).map(|o| (1, o)))
            .collect();
        assert_eq!(again, expected);
        let info = settled_info(&broker, &client_id, &per_queue).await;
        assert!(info.mq_table.values().all(|pq| !pq.dropped));
        consumer.shutdown().await;
        for (queue, offset) in &per_queue {
            assert_eq!(broker.committed("GR", "T", *queue), Some(*offset));
        }
    }

    /// A `CONSUME_MESSAGE_DIRECTLY` request as a broker relays it: the stored record, the
    /// group and the broker name.
    fn consume_directly_request(group: &str, client_id: &str, record: Bytes) -> RemotingCommand {
        let mut request = RemotingCommand::request(RequestCode::ConsumeMessageDirectly);
        for (key, value) in [
            ("consumerGroup", group),
            ("clientId", client_id),
            ("msgId", "unused"),
            ("brokerName", "broker-a"),
        ] {
            request.ext_fields.insert(key.into(), value.into());
        }
        request.body = record;
        request
    }

    #[tokio::test]
    async fn consume_message_directly_runs_the_listener_and_reports_the_outcome() {
        let (broker, namesrv) = setup("GD").await;
        produce(&namesrv, ["ok", "later", "boom"].map(str::to_owned), None).await;
        let records: Vec<Bytes> = {
            let state = broker.state.lock().expect("state");
            state.queues.values().flatten().cloned().collect()
        };
        let record_of = |body: &str| {
            records
                .iter()
                .find(|r| {
                    ringmq_wire::record::StoredMessage::decode(r, false)
                        .is_ok_and(|m| &m.body()[..] == body.as_bytes())
                })
                .cloned()
                .expect("stored")
        };
        let client = instance(&namesrv, "cd");
        let client_id = client.client_id().to_owned();
        let (tx, mut rx) = mpsc::channel(100);
        let mut consumer = PushConsumer::new(client, config("GD")).expect("consumer");
        consumer.subscribe("T", "*").expect("subscribe");
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let tx = tx.clone();
                async move {
                    let mut result = ConsumeResult::Success;
                    for message in messages {
                        match &message.body[..] {
                            b"later" => result = ConsumeResult::ReconsumeLater,
                            b"boom" if message.broker_name == "direct" => {
                                panic!("listener refused the message")
                            }
                            _ => {}
                        }
                        let _ = tx.send(message).await;
                    }
                    result
                }
            }))
            .await
            .expect("started");
        // The consumer is running (its queues consumed), then asked directly.
        collect(&mut rx, 3).await;

        // "direct" as the broker name tells the listener's normal and direct calls apart.
        let ask = |body: &str, group: &str| {
            let mut request = consume_directly_request(group, &client_id, record_of(body));
            request
                .ext_fields
                .insert("brokerName".into(), "direct".into());
            request
        };
        let response = broker.invoke_client(&client_id, ask("ok", "GD")).await;
        assert_eq!(
            response.code,
            ResponseCode::Success.as_i32(),
            "{response:?}"
        );
        let result = ConsumeMessageDirectlyResult::decode(&response.body).expect("result");
        assert_eq!(result.consume_result, Some(CmResult::Success));
        assert!(!result.order && result.auto_commit && result.remark.is_none());
        let json: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(json["consumeResult"], "CR_SUCCESS");
        assert!(json.get("spentTimeMills").is_some() && json.get("remark").is_none());
        let direct = loop {
            let message = collect(&mut rx, 1).await.remove(0);
            if message.broker_name == "direct" {
                break message;
            }
        };
        assert_eq!(&direct.body[..], b"ok");

        let response = broker.invoke_client(&client_id, ask("later", "GD")).await;
        let result = ConsumeMessageDirectlyResult::decode(&response.body).expect("result");
        assert_eq!(result.consume_result, Some(CmResult::Later));

        let response = broker.invoke_client(&client_id, ask("boom", "GD")).await;
        let result = ConsumeMessageDirectlyResult::decode(&response.body).expect("result");
        assert_eq!(result.consume_result, Some(CmResult::ThrowException));
        assert!(
            result.remark.as_deref().unwrap_or("").contains("panic"),
            "{result:?}"
        );

        // Another group, a body that is not a record, no group: Java's errors.
        let response = broker.invoke_client(&client_id, ask("ok", "nope")).await;
        assert_eq!(response.code, ResponseCode::SystemError.as_i32());
        assert_eq!(
            response.remark.as_deref(),
            Some("The Consumer Group <nope> not exist in this consumer")
        );
        let mut garbage = consume_directly_request("GD", &client_id, Bytes::from_static(b"junk"));
        let response = broker.invoke_client(&client_id, garbage.clone()).await;
        assert_eq!(response.code, ResponseCode::SystemError.as_i32());
        garbage.ext_fields.remove("consumerGroup");
        garbage.body = record_of("ok");
        let response = broker.invoke_client(&client_id, garbage).await;
        assert!(
            response
                .remark
                .unwrap_or_default()
                .contains("consumerGroup")
        );
        consumer.shutdown().await;
    }
}
