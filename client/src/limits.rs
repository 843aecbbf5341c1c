//! Every limit and default interval of the client, with the reason beside it.

use std::time::Duration;

/// Requests outstanding on one connection before callers wait for a permit. Bounds the
/// pending map and the memory a stalled broker can make us hold.
pub const IN_FLIGHT_PER_CONNECTION_MAX: usize = 4096;

/// Broker-initiated requests (notifications, transaction checks) handled at once per
/// connection; more are answered `SYSTEM_BUSY`, so a flooding peer cannot spawn unbounded
/// tasks.
pub const INBOUND_REQUESTS_MAX: usize = 256;

/// Encoded bytes queued for one connection's writer task before callers wait for it (one
/// frame over this is still accepted into an empty queue). Everything queued goes out in
/// one write, so this is also the most bytes coalesced into one write, give or take a frame.
pub const WRITE_BUFFER_BYTES_MAX: usize = 256 * 1024;

/// Bytes reserved in the read buffer before each read.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Peer addresses one client keeps connections to; a runaway route table must not open
/// thousands of sockets.
pub const CONNECTIONS_MAX: usize = 1024;

/// First wait after a failed connection attempt.
pub const CONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Longest wait between connection attempts.
pub const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// RocketMQ's `mqClientApiTimeout`: timeout of NameServer and admin requests.
pub const API_TIMEOUT: Duration = Duration::from_secs(3);

/// RocketMQ's `pollNameServerInterval`: how often cached routes are refreshed.
pub const ROUTE_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// RocketMQ's `sendMsgTimeout`.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// RocketMQ's `retryTimesWhenSendFailed`: extra attempts after the first.
pub const SEND_RETRIES: u32 = 2;

/// RocketMQ's `compressMsgBodyOverHowmuch`: bodies larger than this are zlib-compressed.
pub const COMPRESS_BODY_OVER_BYTES: usize = 4 * 1024;

/// RocketMQ's `maxMessageSize`.
pub const MESSAGE_BODY_BYTES_MAX: usize = ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX;

/// Sends one producer may have outstanding before `send` waits (backpressure).
pub const PRODUCER_IN_FLIGHT_MAX: usize = 10_000;

/// Messages in one batch send.
pub const BATCH_MESSAGES_MAX: usize = 1024;

/// Largest delay level (RocketMQ's 18 levels, 1 s … 2 h).
pub const DELAY_LEVEL_MAX: u32 = 18;

const _: () = assert!(CONNECT_BACKOFF_MIN.as_millis() < CONNECT_BACKOFF_MAX.as_millis());
const _: () = assert!(COMPRESS_BODY_OVER_BYTES < MESSAGE_BODY_BYTES_MAX);
const _: () = assert!(WRITE_BUFFER_BYTES_MAX >= READ_CHUNK_BYTES);
