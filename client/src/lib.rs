//! The ringmq Rust client: producers, consumers and admin over RocketMQ's remoting protocol,
//! for ringmq and Apache RocketMQ alike.
