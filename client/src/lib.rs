//! The ringmq Rust client: producers, consumers and admin over RocketMQ's remoting protocol,
//! for ringmq and Apache RocketMQ alike.

pub mod admin;
pub mod consumer;
pub mod error;
pub mod limits;
pub mod producer;
pub mod queue;
pub mod remoting;

pub use error::{ClientError, Result};
pub use queue::MessageQueue;
pub use remoting::{RemotingClient, RemotingConfig, RequestHandler};
pub mod instance;
pub mod message;
pub mod namesrv;
pub mod route;

#[cfg(test)]
mod testutil;
