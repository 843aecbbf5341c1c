//! Consumers: [`push::PushConsumer`], queue allocation ([`rebalance`]), received messages
//! ([`message_ext`]), offsets ([`offset_store`]), the per-queue cache ([`process_queue`]) and
//! the broker requests consumers make ([`api`]) and answer ([`broker_requests`]).

pub mod api;
pub mod broker_requests;
mod group;
pub mod lite_pull;
pub mod message_ext;
pub mod offset_store;
pub mod process_queue;
pub mod push;
pub mod rebalance;
pub mod selector;

pub use lite_pull::{LitePullConsumer, LitePullConsumerConfig};
pub use message_ext::MessageExt;
pub use push::{ConsumeResult, MessageListener, OrderlyResult, PushConsumer, PushConsumerConfig};
pub use rebalance::AllocateStrategy;
pub use selector::MessageSelector;
