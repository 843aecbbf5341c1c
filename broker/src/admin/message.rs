//! Message commands: `queryMsgById`, `queryMsgByKey`, `queryMsgByOffset`, `sendMessage`,
//! `consumeMessage`.

use ringmq_client::MessageQueue;
use ringmq_client::admin::Admin;
use ringmq_client::message::Message;
use ringmq_client::producer::{Producer, ProducerConfig, SendStatus};
use serde_json::json;

use super::common::{AdminError, Common, Report};
use super::{AdminCommand, format};

/// The producer group `sendMessage` sends as.
pub const SEND_MESSAGE_PRODUCER_GROUP: &str = "TOOLS_SEND_MESSAGE_GROUP";

/// `queryMsgById`: a message by its broker-generated id (store host + CommitLog offset).
#[derive(Debug, clap::Parser)]
#[command(about = "Query Message by Id.")]
pub struct QueryMsgById {
    #[command(flatten)]
    common: Common,
    /// Message id(s) (offset message id, as printed by sendMessage's OffsetID), comma
    /// separated.
    #[arg(short = 'i', long = "msgId")]
    msg_id: String,
    /// Topic (accepted for 5.x compatibility; the id names the broker).
    #[arg(short = 't', long = "topic")]
    topic: Option<String>,
    /// With `-d`: the consumer group of the client that consumes the message now.
    #[arg(short = 'g', long = "consumerGroup", requires = "client_id")]
    group: Option<String>,
    /// With `-g`: the client (its client id) asked to consume the message now
    /// (`CONSUME_MESSAGE_DIRECTLY`, relayed by the broker that stores it).
    #[arg(short = 'd', long = "clientId", requires = "group")]
    client_id: Option<String>,
}

impl AdminCommand for QueryMsgById {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let (mut text, mut found) = (String::new(), Vec::new());
        for id in self
            .msg_id
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let m = admin.view_message_by_id(id).await?;
            text.push_str(&format::message_detail(&m));
            let mut detail = format::message_json(&m);
            if let (Some(group), Some(client)) = (&self.group, &self.client_id) {
                let result = admin
                    .consume_message_directly(
                        group.trim(),
                        client.trim(),
                        id,
                        self.topic.as_deref().map(str::trim),
                    )
                    .await?;
                text.push_str(&format!("{}\n", consume_directly_line(&result)));
                detail["consumeMessageDirectlyResult"] = result;
            }
            found.push(detail);
        }
        Ok(Report::new(text, json!({ "messages": found })))
    }
}

/// mqadmin prints the client's `ConsumeMessageDirectlyResult` with its `toString`.
fn consume_directly_line(result: &serde_json::Value) -> String {
    let field = |name: &str| {
        result.get(name).map_or("null".to_owned(), |v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    format!(
        "ConsumeMessageDirectlyResult [order={}, autoCommit={}, consumeResult={}, remark={}, spentTimeMills={}]",
        field("order"),
        field("autoCommit"),
        field("consumeResult"),
        field("remark"),
        field("spentTimeMills")
    )
}

/// `queryMsgByKey`: messages by business key, through the brokers' index.
#[derive(Debug, clap::Parser)]
#[command(about = "Query Message by Key.")]
pub struct QueryMsgByKey {
    #[command(flatten)]
    common: Common,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Message key.
    #[arg(short = 'k', long = "msgKey")]
    key: String,
    /// Stored at or after this time (ms since the epoch).
    #[arg(short = 'b', long = "beginTimestamp", default_value_t = 0)]
    begin: i64,
    /// Stored before this time (ms since the epoch).
    #[arg(short = 'e', long = "endTimestamp", default_value_t = i64::MAX)]
    end: i64,
    /// At most this many messages per broker.
    #[arg(short = 'm', long = "maxNum", default_value_t = 64)]
    max: i32,
    /// Cluster (accepted for compatibility; the topic's route decides the brokers).
    #[arg(short = 'c', long = "cluster")]
    cluster: Option<String>,
}

impl AdminCommand for QueryMsgByKey {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let found = admin
            .query_messages_by_key(
                self.topic.trim(),
                self.key.trim(),
                self.max,
                self.begin,
                self.end,
            )
            .await?;
        let messages: Vec<_> = found.iter().map(format::message_json).collect();
        Ok(Report::new(
            format::query_by_key(&found),
            json!({ "messages": messages }),
        ))
    }
}

/// `queryMsgByUniqueKey`: a message by the client-generated id (`UNIQ_KEY`, the `#MsgId` of
/// `sendMessage`).
#[derive(Debug, clap::Parser)]
#[command(about = "Query Message by Unique key.")]
pub struct QueryMsgByUniqueKey {
    #[command(flatten)]
    common: Common,
    /// Message id (client-generated unique key).
    #[arg(short = 'i', long = "msgId")]
    msg_id: String,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// With `-d`: the consumer group of the client that consumes the message now.
    #[arg(short = 'g', long = "consumerGroup", requires = "client_id")]
    group: Option<String>,
    /// With `-g`: the client (its client id) asked to consume the message now
    /// (`CONSUME_MESSAGE_DIRECTLY`, relayed by the broker that stores it).
    #[arg(short = 'd', long = "clientId", requires = "group")]
    client_id: Option<String>,
}

impl AdminCommand for QueryMsgByUniqueKey {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let (topic, id) = (self.topic.trim(), self.msg_id.trim());
        let Some(m) = admin.query_message_by_unique_key(topic, id).await? else {
            return Err(AdminError::failed(format!(
                "no message with unique key {id} in topic {topic}"
            )));
        };
        let mut text = format::message_detail(&m);
        let mut detail = format::message_json(&m);
        if let (Some(group), Some(client)) = (&self.group, &self.client_id) {
            let result = admin
                .consume_message_directly(
                    group.trim(),
                    client.trim(),
                    &m.offset_msg_id,
                    Some(topic),
                )
                .await?;
            text.push_str(&format!("{}\n", consume_directly_line(&result)));
            detail["consumeMessageDirectlyResult"] = result;
        }
        Ok(Report::new(text, detail))
    }
}

/// `queryMsgByOffset`: the message at one queue offset.
#[derive(Debug, clap::Parser)]
#[command(about = "Query Message by offset.")]
pub struct QueryMsgByOffset {
    #[command(flatten)]
    common: Common,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Broker name.
    #[arg(short = 'b', long = "brokerName")]
    broker_name: String,
    /// Queue id.
    #[arg(short = 'i', long = "queueId")]
    queue_id: i32,
    /// Queue offset.
    #[arg(short = 'o', long = "offset")]
    offset: i64,
}

impl AdminCommand for QueryMsgByOffset {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let queue = MessageQueue::new(self.topic.trim(), self.broker_name.trim(), self.queue_id);
        match admin.view_message_at(&queue, self.offset).await? {
            Some(m) => Ok(Report::new(
                format::message_detail(&m),
                format::message_json(&m),
            )),
            None => Err(AdminError::failed(format!(
                "no message at offset {} of {queue}: see `topicStatus -t {}` for the queue's \
                 min and max offsets",
                self.offset,
                self.topic.trim()
            ))),
        }
    }
}

/// `sendMessage`: send one message and print where it went.
#[derive(Debug, clap::Parser)]
#[command(about = "Send a message.")]
pub struct SendMessage {
    #[command(flatten)]
    common: Common,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Message body (UTF-8 text).
    #[arg(short = 'p', long = "body")]
    body: String,
    /// Message key(s), space separated.
    #[arg(short = 'k', long = "key")]
    keys: Option<String>,
    /// Message tag.
    #[arg(short = 'c', long = "tags")]
    tags: Option<String>,
    /// Broker name (with -i: send to that queue).
    #[arg(short = 'b', long = "broker", requires = "queue_id")]
    broker_name: Option<String>,
    /// Queue id (with -b).
    #[arg(short = 'i', long = "qid", requires = "broker_name")]
    queue_id: Option<i32>,
}

fn status_name(status: SendStatus) -> &'static str {
    match status {
        SendStatus::Ok => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

impl AdminCommand for SendMessage {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let topic = self.topic.trim();
        let mut message = Message::new(topic, self.body.clone().into_bytes());
        if let Some(tags) = &self.tags {
            message = message.with_tags(tags.trim());
        }
        if let Some(keys) = &self.keys {
            message = message.with_keys(keys.split_whitespace());
        }
        let producer = Producer::new(
            admin.instance().clone(),
            ProducerConfig::new(SEND_MESSAGE_PRODUCER_GROUP),
        )?;
        let sent = match (&self.broker_name, self.queue_id) {
            (Some(broker), Some(queue_id)) => {
                let queue = MessageQueue::new(topic, broker.trim(), queue_id);
                producer.send_to_queue(message, &queue).await
            }
            _ => producer.send(message).await,
        };
        producer.shutdown();
        let result = sent?;
        let status = status_name(result.status);
        Ok(Report::new(
            format::send_result(
                &result.queue.broker_name,
                result.queue.queue_id,
                status,
                &result.msg_id,
            ),
            json!({
                "brokerName": result.queue.broker_name,
                "queueId": result.queue.queue_id,
                "sendStatus": status,
                "msgId": result.msg_id,
                "offsetMsgId": result.offset_msg_id,
                "queueOffset": result.queue_offset,
            }),
        ))
    }
}

/// `consumeMessage`: read messages by queue and offset or time range, without committing
/// any offset.
#[derive(Debug, clap::Parser)]
#[command(about = "Consume message.")]
pub struct ConsumeMessage {
    #[command(flatten)]
    common: Common,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Broker name (default: every broker of the topic).
    #[arg(short = 'b', long = "brokerName")]
    broker_name: Option<String>,
    /// Queue id (default: every queue; needs -b).
    #[arg(short = 'i', long = "queueId", requires = "broker_name")]
    queue_id: Option<i32>,
    /// Start offset (needs -b and -i; default: the queue's min offset or -s).
    #[arg(short = 'o', long = "offset", requires = "queue_id")]
    offset: Option<i64>,
    /// Consumer group (accepted for compatibility; reads are made as TOOLS_CONSUMER).
    #[arg(short = 'g', long = "consumerGroup")]
    group: Option<String>,
    /// From this store time (ms since the epoch).
    #[arg(short = 's', long = "beginTimestamp")]
    begin: Option<i64>,
    /// Up to this store time (ms since the epoch).
    #[arg(short = 'e', long = "endTimestamp")]
    end: Option<i64>,
    /// At most this many messages in all.
    #[arg(short = 'c', long = "MessageNumber", default_value_t = 128)]
    count: u64,
}

/// Messages asked for per pull by `consumeMessage` (the broker caps a pull at its
/// `max_pull_messages`, 32 by default).
const CONSUME_BATCH_MAX: i64 = 32;

impl ConsumeMessage {
    async fn queues(&self, admin: &Admin) -> Result<Vec<MessageQueue>, AdminError> {
        let topic = self.topic.trim();
        let route = admin.instance().routes().get(topic).await?;
        let queues: Vec<MessageQueue> = route
            .read_queues
            .iter()
            .filter(|q| {
                self.broker_name
                    .as_deref()
                    .is_none_or(|b| q.broker_name == b.trim())
                    && self.queue_id.is_none_or(|id| q.queue_id == id)
            })
            .cloned()
            .collect();
        if queues.is_empty() {
            return Err(AdminError::failed(format!(
                "topic {topic} has no readable queue matching -b/-i (see `topicRoute -t {topic} -l`)"
            )));
        }
        Ok(queues)
    }
}

impl AdminCommand for ConsumeMessage {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let (mut text, mut messages, mut left) = (String::new(), Vec::new(), self.count);
        for queue in self.queues(admin).await? {
            if left == 0 {
                break;
            }
            let start = match (self.offset, self.begin) {
                (Some(offset), _) => offset,
                (None, Some(ts)) => admin.search_offset(&queue, ts).await?,
                (None, None) => admin.min_offset(&queue).await?,
            };
            let end = match self.end {
                Some(ts) => admin.search_offset(&queue, ts).await?,
                None => admin.max_offset(&queue).await?,
            };
            let mut offset = start;
            while offset < end && left > 0 {
                let batch = (end - offset).min(left as i64).min(CONSUME_BATCH_MAX);
                let pulled = admin.pull_messages(&queue, offset, batch as i32).await?;
                for m in pulled.messages.iter().filter(|m| m.queue_offset < end) {
                    if left == 0 {
                        break;
                    }
                    text.push_str(&format::message_line(m));
                    messages.push(format::message_json(m));
                    left -= 1;
                }
                // A pull that does not move forward (nothing found at or after `offset`)
                // ends this queue rather than looping.
                if pulled.next_begin_offset <= offset {
                    break;
                }
                offset = pulled.next_begin_offset;
            }
        }
        if messages.is_empty() {
            text.push_str("No message found.\n");
        }
        Ok(Report::new(text, json!({ "messages": messages })))
    }
}
