//! [`MessageQueue`]: one queue of a topic on one broker, the unit of routing and rebalance.

use std::fmt;

/// One queue of a topic on one broker (broker name, not address: a broker name stands for a
/// master and its slaves). Ordered like RocketMQ orders queues before rebalancing: by
/// topic, then broker name, then queue id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    /// The topic.
    pub topic: String,
    /// The broker name (`brokerName` in routes).
    pub broker_name: String,
    /// The queue id within the topic on that broker.
    pub queue_id: i32,
}

impl MessageQueue {
    /// A queue.
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue {
            topic: topic.into(),
            broker_name: broker_name.into(),
            queue_id,
        }
    }
}

/// RocketMQ's `MessageQueue.toString()`, which the consistent-hash strategy hashes; keeping
/// it identical lets our consumers share a group with Java consumers using that strategy.
impl fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MessageQueue [topic={}, brokerName={}, queueId={}]",
            self.topic, self.broker_name, self.queue_id
        )
    }
}
