//! The ringmq Rust client: producers, consumers and admin over RocketMQ's remoting protocol,
//! for ringmq and Apache RocketMQ alike.
//!
//! Everything runs on the caller's tokio runtime. One [`ClientInstance`] (RocketMQ's
//! `MQClientInstance`) holds what an application shares: the connection pool
//! ([`RemotingClient`], one multiplexed connection per broker), the NameServer client with
//! failover, the route cache (refreshed every 30 s) and the client id. Producers, consumers
//! and [`Admin`] are built on it.
//!
//! - [`Producer`]: `send` is an `async fn` — await it, or spawn it for an asynchronous send
//!   (the producer is a cheap `Clone`); `send_oneway`, `send_batch`, `send_to_queue`,
//!   `send_ordered` / `send_with_selector`, `send_in_transaction`; retries on another
//!   broker, latency fault avoidance, compression above 4 KiB, a bounded in-flight window.
//! - [`PushConsumer`]: clustering or broadcasting, concurrent or orderly listeners, tag
//!   subscriptions, client-side rebalance, long polling, flow control, retry through the
//!   broker, offsets committed every 5 s.
//! - [`LitePullConsumer`]: subscribe or assign, `poll`, `seek`, `commit`.
//! - [`Admin`]: the operations behind `mqadmin`'s common commands.
//!
//! Errors are one enum, [`ClientError`], whose variants name the peer address and carry the
//! response code and remark the broker sent.
//!
//! # Example
//!
//! Sending and consuming (needs a running NameServer and broker, so it is not run here):
//!
//! ```no_run
//! use ringmq_client::{
//!     ClientConfig, ClientInstance, ConsumeResult, Message, MessageListener, Producer,
//!     ProducerConfig, PushConsumer, PushConsumerConfig,
//! };
//!
//! # async fn demo() -> Result<(), ringmq_client::ClientError> {
//! let client = ClientInstance::new(ClientConfig::new("127.0.0.1:9876"))?;
//!
//! let producer = Producer::new(client.clone(), ProducerConfig::new("demo-producer"))?;
//! let result = producer
//!     .send(Message::new("TopicTest", "hello").with_tags("TagA").with_keys(["order-1"]))
//!     .await?;
//! println!("stored as {} at {}:{}", result.msg_id, result.queue, result.queue_offset);
//!
//! let mut consumer = PushConsumer::new(client, PushConsumerConfig::new("demo-consumer"))?;
//! consumer.subscribe("TopicTest", "TagA || TagB")?;
//! consumer
//!     .start(MessageListener::concurrently(|messages| async move {
//!         for message in messages {
//!             println!("{} {:?}", message.msg_id(), message.body);
//!         }
//!         ConsumeResult::Success
//!     }))
//!     .await?;
//! // … later
//! consumer.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The pure parts run anywhere, e.g. how a group shares queues:
//!
//! ```
//! use ringmq_client::{AllocateStrategy, Message, MessageQueue};
//!
//! let queues: Vec<MessageQueue> = (0..8).map(|id| MessageQueue::new("T", "broker-a", id)).collect();
//! let members = vec!["10.0.0.1@a".to_owned(), "10.0.0.2@b".to_owned(), "10.0.0.3@c".to_owned()];
//! let mine = AllocateStrategy::Averagely.allocate("10.0.0.2@b", &queues, &members);
//! assert_eq!(mine.iter().map(|q| q.queue_id).collect::<Vec<_>>(), [3, 4, 5]);
//!
//! let message = Message::new("T", "body").with_tags("TagA").with_keys(["k1", "k2"]);
//! assert!(message.validate(4 * 1024 * 1024).is_ok());
//! assert_eq!(message.keys(), ["k1", "k2"]);
//! ```
//!
//! # Not done yet
//!
//! Request/reply, SQL92 subscriptions, answering `GET_CONSUMER_RUNNING_INFO` and
//! `RESET_CONSUMER_CLIENT_OFFSET` (they are answered `REQUEST_CODE_NOT_SUPPORTED`), pulls
//! from slaves (`suggestWhichBrokerId`), ACL, TLS, namespaces. See `docs/client.md`.

pub mod admin;
pub mod consumer;
pub mod error;
pub mod instance;
pub mod limits;
pub mod message;
pub mod namesrv;
pub mod producer;
pub mod queue;
pub mod remoting;
pub mod route;

pub use admin::Admin;
pub use consumer::{
    AllocateStrategy, ConsumeResult, LitePullConsumer, LitePullConsumerConfig, MessageExt,
    MessageListener, MessageSelector, OrderlyResult, PushConsumer, PushConsumerConfig,
};
pub use error::{ClientError, Result};
pub use instance::{ClientConfig, ClientInstance};
pub use message::Message;
pub use producer::transaction::{LocalTransactionState, TransactionSendResult};
pub use producer::{Producer, ProducerConfig, SendResult, SendStatus};
pub use queue::MessageQueue;
pub use remoting::{RemotingClient, RemotingConfig, RequestHandler};
pub use ringmq_wire::body::heartbeat::{ConsumeFromWhere, MessageModel};

#[cfg(test)]
mod testutil;
