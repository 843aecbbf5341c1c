//! The client's single error type.
//!
//! Every variant that concerns a peer names its address; errors answered by a broker or a
//! NameServer carry the response code and the remark it sent, so that a caller (or a log
//! line) can tell "topic does not exist on 10.0.0.1:10911" from "connection refused".

use std::time::Duration;

use ringmq_wire::{RequestCode, ResponseCode, WireError};

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The peer address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A previous connection attempt failed and the client is waiting before trying again.
    #[error(
        "not reconnecting to {addr} for another {retry_in:?} after {failures} failed attempt(s)"
    )]
    ConnectBackoff {
        /// The peer address.
        addr: String,
        /// Time left before the next attempt.
        retry_in: Duration,
        /// Consecutive failed attempts.
        failures: u32,
    },
    /// The connection broke while the request was pending (or before it could be written).
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// The peer address.
        addr: String,
        /// What broke it.
        reason: String,
    },
    /// No response arrived within the request's timeout.
    #[error("no response from {addr} to {} within {timeout:?}", RequestCode::describe(*request_code))]
    Timeout {
        /// The peer address.
        addr: String,
        /// The request code.
        request_code: i32,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The peer answered with an error response code.
    #[error("{addr} answered {} with {} ({code}): {remark}", RequestCode::describe(*request_code), response_name(*code))]
    Broker {
        /// The peer address.
        addr: String,
        /// The request code.
        request_code: i32,
        /// The response code.
        code: i32,
        /// The peer's remark (empty if none).
        remark: String,
    },
    /// A frame, header or body from the peer could not be decoded, or a request could not be
    /// encoded.
    #[error("protocol error with {addr}: {source}")]
    Wire {
        /// The peer address.
        addr: String,
        /// What is wrong.
        #[source]
        source: WireError,
    },
    /// No NameServer address is configured, or none of them answered.
    #[error("no NameServer reachable (tried {tried}): {last_error}")]
    NameServerUnavailable {
        /// The addresses tried.
        tried: String,
        /// The last error seen.
        last_error: String,
    },
    /// The topic has no route (unknown to the NameServers, or no writable/readable queue).
    #[error("no route for topic {topic}: {reason}")]
    NoRoute {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A broker name from a route has no master address.
    #[error("broker {broker_name} has no master address in the route")]
    NoBrokerAddress {
        /// The broker name.
        broker_name: String,
    },
    /// The message body exceeds the size limit.
    #[error("message body of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The body size (after compression, if compressed).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An argument given by the caller is not valid (empty topic, bad expression…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Every attempt of a send failed; `last` is the error of the final attempt.
    #[error("send to topic {topic} failed after {attempts} attempt(s): {last}")]
    SendFailed {
        /// The topic.
        topic: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<ClientError>,
    },
    /// The client (or the producer/consumer) has been shut down.
    #[error("client is shut down")]
    Shutdown,
    /// A local I/O error (offset file, …).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn response_name(code: i32) -> String {
    match ResponseCode::from_i32(code) {
        Some(known) => known.name().to_owned(),
        None => format!("UNKNOWN_RESPONSE({code})"),
    }
}

impl ClientError {
    /// The response code, when the peer answered with an error.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            ClientError::SendFailed { last, .. } => last.response_code(),
            _ => None,
        }
    }

    /// Whether the error concerns the peer or the network rather than the request itself,
    /// i.e. whether retrying on another broker may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectBackoff { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBrokerAddress { .. } => true,
            ClientError::Broker { code, .. } => matches!(
                ResponseCode::from_i32(*code),
                Some(
                    ResponseCode::SystemError
                        | ResponseCode::SystemBusy
                        | ResponseCode::ServiceNotAvailable
                        | ResponseCode::TopicNotExist
                        | ResponseCode::NoPermission
                        | ResponseCode::FlushDiskTimeout
                        | ResponseCode::SlaveNotAvailable
                        | ResponseCode::FlushSlaveTimeout
                        | ResponseCode::NotLeaderForQueue
                        | ResponseCode::GoAway
                )
            ),
            _ => false,
        }
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
