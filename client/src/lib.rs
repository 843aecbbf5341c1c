//! The ringmq Rust client: producers, consumers and admin over RocketMQ's remoting protocol,
//! for ringmq and Apache RocketMQ alike.

pub mod error;
pub mod limits;
pub mod remoting;

pub use error::{ClientError, Result};
pub use remoting::{RemotingClient, RemotingConfig, RequestHandler};
