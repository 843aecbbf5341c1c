//! The connection layer: one multiplexed connection per peer address, requests matched to
//! responses by `opaque`, timeouts, oneway sends, reconnect with backoff, and dispatch of
//! broker-initiated requests to registered handlers.
//!
//! [`RemotingClient`] is cheap to clone (an `Arc`) and is shared by everything a client
//! instance runs: the NameServer client, producers, consumers and [`crate::Admin`]. It runs on
//! the caller's tokio runtime; each connection owns a reader and a writer task.
//!
//! Reconnection: a connection that breaks is replaced by a new one on the next request to
//! that address. A failed connection attempt starts a backoff (100 ms doubling to 1 s);
//! requests to that address during the backoff fail at once with
//! [`ClientError::ConnectBackoff`], so that a producer moves on to another broker instead of
//! waiting on a dead one.

mod connection;
mod outbox;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::error::{ClientError, Result};
use crate::limits::{
    CONNECT_BACKOFF_MAX, CONNECT_BACKOFF_MIN, CONNECTIONS_MAX, IN_FLIGHT_PER_CONNECTION_MAX,
    WRITE_BUFFER_BYTES_MAX,
};
use connection::Connection;

/// A boxed future, as returned by [`RequestHandler`]s.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A handler for one broker-initiated request code. It receives the peer address and the
/// request, and returns the response to write back (`None` writes nothing; responses to
/// oneway requests are never written). Build responses with
/// [`RemotingCommand::response_to`], which copies the opaque and the header encoding.
pub type RequestHandler =
    Arc<dyn Fn(String, RemotingCommand) -> BoxFuture<Option<RemotingCommand>> + Send + Sync>;

/// Handlers keyed by request code, shared by all connections of a client.
pub(crate) type Handlers = Arc<RwLock<HashMap<i32, RequestHandler>>>;

/// Settings of the connection layer.
#[derive(Debug, Clone)]
pub struct RemotingConfig {
    /// Header encoding of the requests we send (responses follow their request's).
    pub serialize_type: SerializeType,
    /// Time allowed for a TCP connect.
    pub connect_timeout: Duration,
    /// Requests outstanding per connection before callers wait.
    pub max_in_flight: usize,
    /// Encoded bytes queued for the writer task per connection before callers wait (all
    /// of it goes out in one write).
    pub write_buffer_bytes: usize,
    /// Largest frame accepted from a peer.
    pub max_frame_bytes: usize,
}

impl Default for RemotingConfig {
    fn default() -> Self {
        RemotingConfig {
            serialize_type: SerializeType::Json,
            connect_timeout: Duration::from_secs(3),
            max_in_flight: IN_FLIGHT_PER_CONNECTION_MAX,
            write_buffer_bytes: WRITE_BUFFER_BYTES_MAX,
            max_frame_bytes: ringmq_wire::limits::FRAME_BYTES_MAX,
        }
    }
}

/// Connection state of one peer address.
#[derive(Default)]
struct Slot {
    connection: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
    connecting: Arc<tokio::sync::Mutex<()>>,
}

struct Inner {
    config: RemotingConfig,
    handlers: Handlers,
    slots: Mutex<HashMap<String, Slot>>,
}

/// The shared connection pool; see the module docs.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemotingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotingClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    CONNECT_BACKOFF_MIN
        .saturating_mul(1 << shift)
        .min(CONNECT_BACKOFF_MAX)
}

impl RemotingClient {
    /// A client with the given settings and no connections yet.
    pub fn new(config: RemotingConfig) -> Self {
        RemotingClient {
            inner: Arc::new(Inner {
                config,
                handlers: Arc::default(),
                slots: Mutex::default(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RemotingConfig {
        &self.inner.config
    }

    /// Registers the handler of a broker-initiated request code (e.g.
    /// [`RequestCode::CheckTransactionState`], [`RequestCode::NotifyConsumerIdsChanged`],
    /// [`RequestCode::GetConsumerRunningInfo`], [`RequestCode::ResetConsumerClientOffset`]),
    /// replacing any previous one. Requests with no handler are answered
    /// `REQUEST_CODE_NOT_SUPPORTED`.
    pub fn register_handler(&self, code: RequestCode, handler: RequestHandler) {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(code.as_i32(), handler);
    }

    /// Removes the handler of a request code.
    pub fn unregister_handler(&self, code: RequestCode) {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&code.as_i32());
    }

    /// Sends a request to `addr` and returns the peer's response, whatever its code.
    pub async fn invoke(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        request.serialize_type = self.inner.config.serialize_type;
        let connection = self.connection(addr).await?;
        let result = connection.request(request, timeout).await;
        if let Err(ClientError::ConnectionLost { .. }) = &result {
            self.forget_if_closed(addr, &connection);
        }
        result
    }

    /// Sends a request and returns the response if its code is `SUCCESS`, otherwise
    /// [`ClientError::Broker`] with the code and remark.
    pub async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let request_code = request.code;
        let response = self.invoke(addr, request, timeout).await?;
        if response.code == ResponseCode::Success.as_i32() {
            Ok(response)
        } else {
            Err(broker_error(addr, request_code, &response))
        }
    }

    /// Sends a request flagged oneway: returns once it is queued for writing.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<()> {
        request.serialize_type = self.inner.config.serialize_type;
        let connection = self.connection(addr).await?;
        connection.oneway(request, timeout).await
    }

    /// Closes the connection to `addr`, if any; pending requests fail at once.
    pub fn close_connection(&self, addr: &str) {
        let removed = lock(&self.inner.slots).remove(addr);
        if let Some(connection) = removed.and_then(|slot| slot.connection) {
            connection.close("closed by the client");
        }
    }

    /// Closes every connection.
    pub fn shutdown(&self) {
        let slots = std::mem::take(&mut *lock(&self.inner.slots));
        for connection in slots.into_values().filter_map(|slot| slot.connection) {
            connection.close("client shut down");
        }
    }

    /// Addresses with a live connection.
    pub fn connected_addrs(&self) -> Vec<String> {
        lock(&self.inner.slots)
            .iter()
            .filter(|(_, slot)| slot.connection.as_ref().is_some_and(|c| !c.is_closed()))
            .map(|(addr, _)| addr.clone())
            .collect()
    }

    fn forget_if_closed(&self, addr: &str, connection: &Arc<Connection>) {
        let mut slots = lock(&self.inner.slots);
        if let Some(slot) = slots.get_mut(addr)
            && slot
                .connection
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, connection) && c.is_closed())
        {
            slot.connection = None;
        }
    }

    /// The live connection to `addr`, connecting if needed.
    async fn connection(&self, addr: &str) -> Result<Arc<Connection>> {
        let connecting = {
            let mut slots = lock(&self.inner.slots);
            // The hot path: a live connection, found without allocating the key.
            if let Some(connection) = slots.get_mut(addr).and_then(live) {
                return Ok(connection);
            }
            if !slots.contains_key(addr) && slots.len() >= CONNECTIONS_MAX {
                slots.retain(|_, slot| {
                    slot.connection.as_ref().is_some_and(|c| !c.is_closed())
                        || slot.retry_at.is_some()
                });
                if slots.len() >= CONNECTIONS_MAX {
                    return Err(ClientError::InvalidArgument(format!(
                        "cannot connect to {addr}: the client already holds {CONNECTIONS_MAX} connections"
                    )));
                }
            }
            let slot = slots.entry(addr.to_owned()).or_default();
            if let Some(connection) = live(slot) {
                return Ok(connection);
            }
            check_backoff(addr, slot)?;
            slot.connecting.clone()
        };
        // One connect attempt per address at a time; the others wait for its outcome.
        let _connecting = connecting.lock().await;
        {
            let mut slots = lock(&self.inner.slots);
            let slot = slots.entry(addr.to_owned()).or_default();
            if let Some(connection) = live(slot) {
                return Ok(connection);
            }
            check_backoff(addr, slot)?;
        }
        let outcome =
            tokio::time::timeout(self.inner.config.connect_timeout, TcpStream::connect(addr))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "connect timed out after {:?}",
                            self.inner.config.connect_timeout
                        ),
                    ))
                });
        let mut slots = lock(&self.inner.slots);
        let slot = slots.entry(addr.to_owned()).or_default();
        match outcome {
            Ok(stream) => {
                info!(%addr, "connected");
                let connection = Arc::new(Connection::start(
                    addr.to_owned(),
                    stream,
                    &self.inner.config,
                    self.inner.handlers.clone(),
                ));
                debug_assert_eq!(connection.addr(), addr);
                slot.connection = Some(connection.clone());
                slot.failures = 0;
                slot.retry_at = None;
                Ok(connection)
            }
            Err(source) => {
                slot.failures = slot.failures.saturating_add(1);
                let wait = backoff(slot.failures);
                slot.retry_at = Some(Instant::now() + wait);
                debug!(%addr, failures = slot.failures, ?wait, %source, "connect failed");
                Err(ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
            }
        }
    }
}

fn live(slot: &mut Slot) -> Option<Arc<Connection>> {
    match &slot.connection {
        Some(connection) if !connection.is_closed() => Some(connection.clone()),
        Some(_) => {
            slot.connection = None;
            None
        }
        None => None,
    }
}

fn check_backoff(addr: &str, slot: &Slot) -> Result<()> {
    if let Some(retry_at) = slot.retry_at {
        let now = Instant::now();
        if now < retry_at {
            return Err(ClientError::ConnectBackoff {
                addr: addr.to_owned(),
                retry_in: retry_at - now,
                failures: slot.failures,
            });
        }
    }
    Ok(())
}

/// The [`ClientError::Broker`] for an error response.
pub(crate) fn broker_error(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> ClientError {
    ClientError::Broker {
        addr: addr.to_owned(),
        request_code,
        code: response.code,
        remark: response.remark.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
