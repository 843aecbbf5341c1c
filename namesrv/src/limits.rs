//! Every limit of the NameServer, with what it guards against.

use std::time::Duration;

/// Default listen address (RocketMQ's NameServer port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9876";

/// A broker silent this long is dropped (RocketMQ's `BROKER_CHANNEL_EXPIRED_TIME`).
pub const DEFAULT_BROKER_EXPIRY: Duration = Duration::from_secs(120);

/// How often silent brokers are looked for (5.x `scanNotActiveBrokerInterval`).
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(5);

/// Shortest scan interval accepted: a misconfigured 0 must not spin a core.
pub const SCAN_INTERVAL_MIN: Duration = Duration::from_millis(10);

/// A silent connection is closed after this long (RocketMQ's `serverChannelMaxIdleTimeSeconds`):
/// half-open connections of vanished peers must not hold connection slots forever. Brokers
/// (every 30 s) and clients (route polls every 30 s) talk far more often.
pub const DEFAULT_CONNECTION_IDLE: Duration = Duration::from_secs(120);

/// Concurrent client connections. Each costs two tasks and up to one frame of buffer; the
/// cap keeps a connection flood from exhausting memory or file descriptors.
pub const DEFAULT_CONNECTIONS_MAX: usize = 4096;

/// Requests of one connection being processed or waiting to be written at once. A client
/// that pipelines without reading its answers stalls itself here, not the server.
pub const DEFAULT_IN_FLIGHT_PER_CONNECTION_MAX: usize = 256;

/// Live broker addresses. Far above any real cluster (RocketMQ deployments run tens to a
/// few hundred brokers); guards the tables against a registration flood.
pub const BROKER_ADDRS_MAX: usize = 16_384;

/// Topics in the route table, from registrations and `REGISTER_TOPIC_IN_NAMESRV`.
pub const TOPICS_MAX: usize = 1_000_000;

/// Entries of the KV store across all namespaces; it is rewritten whole on every change.
pub const KV_ENTRIES_MAX: usize = 100_000;

/// Longest KV namespace, key or value, in bytes.
pub const KV_ITEM_BYTES_MAX: usize = 64 * 1024;

/// Topics whose encoded route is cached; past it the cache starts over. Bounds the cache at
/// roughly this many route bodies (a few KiB each) whatever clients ask for.
pub const ROUTE_CACHE_ENTRIES_MAX: usize = 65_536;

/// Responses encoded into one socket write when several are ready.
pub const WRITE_BATCH_MAX: usize = 64;

const _: () = assert!(DEFAULT_IN_FLIGHT_PER_CONNECTION_MAX >= WRITE_BATCH_MAX);
const _: () = assert!(SCAN_INTERVAL_MIN.as_millis() > 0);
