//! The TCP server: accept loop (bounded connections), one reader task and one writer task
//! per connection, and the scan that drops silent brokers. Runs on tokio.
//!
//! Per connection: the reader decodes frames with the wire crate's [`FrameDecoder`] (frame
//! limit from the config), dispatches each request and queues its response on a bounded
//! channel; the writer encodes queued responses (in their request's header encoding) and
//! writes them in batches. A framing error or an undecodable header closes that connection
//! only, with a log line. When a connection closes, the brokers that registered through it
//! are dropped at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::handler::{self, Handled, Shared};
use crate::limits::WRITE_BATCH_MAX;
use crate::metrics::Counters;
use crate::route::ConnectionId;

/// How long shutdown waits for connections to finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Read buffer headroom kept free before each socket read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A write buffer grown past this by one large response is released after use.
const WRITE_BUFFER_KEEP_BYTES: usize = 1024 * 1024;

/// Runs the accept loop and the broker scan until `shutdown` flips to true.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = shared.config();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let next_id = AtomicU64::new(1);
    let mut tasks = JoinSet::new();
    tasks.spawn(scan_loop(shared.clone(), shutdown.clone()));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = connections.clone().try_acquire_owned() else {
                        Counters::bump(&shared.counters.connections_refused);
                        warn!(%peer, max = config.max_connections, "connection limit reached; closing new connection");
                        drop(stream);
                        continue;
                    };
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    Counters::bump(&shared.counters.connections_accepted);
                    tasks.spawn(serve_connection(
                        stream,
                        peer,
                        id,
                        shared.clone(),
                        shutdown.clone(),
                        permit,
                    ));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    info!("NameServer shutting down");
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("connections still busy after the shutdown grace period; aborting them");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// How often the activity summary is logged.
const ACTIVITY_LOG_INTERVAL: Duration = Duration::from_secs(60);

async fn scan_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut last_log = Instant::now();
    let mut last_requests = 0;
    loop {
        let interval = shared.config().scan_interval();
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let expired = shared.routes_mut().expire_brokers(Instant::now());
        if expired > 0 {
            info!(expired, "silent brokers dropped");
        }
        if last_log.elapsed() >= ACTIVITY_LOG_INTERVAL {
            let stats = shared.stats();
            if stats.requests != last_requests {
                info!(
                    requests = stats.requests,
                    errors = stats.error_responses,
                    route_queries = stats.route_queries,
                    route_cache_hits = stats.route_cache_hits,
                    connections = stats.connections_open,
                    brokers = stats.live_brokers,
                    topics = stats.topics,
                    "NameServer activity"
                );
                last_requests = stats.requests;
            }
            last_log = Instant::now();
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: ConnectionId,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    _connection_permit: OwnedSemaphorePermit,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "set_nodelay failed");
    }
    debug!(%peer, id, "connection opened");
    let counters = &shared.counters;
    counters.connections_open.fetch_add(1, Ordering::Relaxed);
    let config = shared.config();
    let (mut reader, writer) = stream.into_split();
    let (responses, queued) = mpsc::channel(config.max_in_flight_per_connection);
    let writer_task = tokio::spawn(write_loop(writer, queued, peer));
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight_per_connection));
    let mut decoder = FrameDecoder::new(config.max_frame_bytes);
    let idle_limit =
        (config.connection_idle_ms > 0).then(|| Duration::from_millis(config.connection_idle_ms));
    'connection: loop {
        loop {
            let content = match decoder.next_frame() {
                Ok(Some(content)) => content,
                Ok(None) => break,
                Err(error) => {
                    Counters::bump(&counters.connections_closed_on_error);
                    warn!(%peer, %error, "framing error; closing the connection");
                    break 'connection;
                }
            };
            let request = match RemotingCommand::decode(content) {
                Ok(request) => request,
                Err(error) => {
                    Counters::bump(&counters.connections_closed_on_error);
                    warn!(%peer, %error, "undecodable request header; closing the connection");
                    break 'connection;
                }
            };
            if request.is_response() {
                debug!(%peer, opaque = request.opaque, "ignoring a response frame; the NameServer sends no requests");
                continue;
            }
            Counters::bump(&counters.requests);
            let oneway = request.is_oneway();
            let code = request.code;
            match handler::handle(&shared, id, request) {
                Handled::Now(response) => {
                    trace_response(&shared, peer, code, &response);
                    if !oneway && responses.send(response).await.is_err() {
                        break 'connection;
                    }
                }
                Handled::Later(pending) => {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break 'connection;
                    };
                    let responses = responses.clone();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let response = pending.await;
                        trace_response(&shared, peer, code, &response);
                        if !oneway {
                            // The connection may be gone; nothing to answer then.
                            let _ = responses.send(response).await;
                        }
                        drop(permit);
                    });
                }
            }
        }
        let buffer = decoder.buffer_mut();
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        let idle = async {
            match idle_limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = idle => {
                info!(%peer, idle_ms = config.connection_idle_ms, "closing an idle connection");
                break;
            }
            read = reader.read_buf(buffer) => match read {
                Ok(0) => {
                    if decoder.buffered() > 0 {
                        debug!(%peer, bytes = decoder.buffered(), "connection closed mid-frame");
                    }
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    debug!(%peer, %error, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(responses);
    let dropped = shared.routes_mut().on_connection_closed(id);
    if dropped > 0 {
        info!(%peer, dropped, "brokers of a closed connection dropped");
    }
    if let Err(e) = writer_task.await {
        error!(%peer, error = %e, "connection writer task failed");
    }
    shared
        .counters
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
    debug!(%peer, id, "connection closed");
}

fn trace_response(shared: &Shared, peer: SocketAddr, code: i32, response: &RemotingCommand) {
    if response.code != ResponseCode::Success.as_i32() {
        Counters::bump(&shared.counters.error_responses);
        debug!(%peer, request = %RequestCode::describe(code), response_code = response.code, remark = response.remark.as_deref().unwrap_or(""), "request answered with an error");
    }
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queued: mpsc::Receiver<RemotingCommand>,
    peer: SocketAddr,
) {
    let mut out = BytesMut::with_capacity(READ_CHUNK_BYTES);
    while let Some(first) = queued.recv().await {
        encode(&first, &mut out);
        for _ in 1..WRITE_BATCH_MAX {
            match queued.try_recv() {
                Ok(next) => encode(&next, &mut out),
                Err(_) => break,
            }
        }
        if let Err(error) = writer.write_all(&out).await {
            debug!(%peer, %error, "write failed; dropping the connection's pending responses");
            return;
        }
        out.clear();
        if out.capacity() > WRITE_BUFFER_KEEP_BYTES {
            out = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
    }
    let _ = writer.shutdown().await;
}

/// Encodes a response; one that cannot be encoded (a body over the frame limit) becomes a
/// `SYSTEM_ERROR` naming the problem, so the client is not left waiting.
fn encode(response: &RemotingCommand, out: &mut BytesMut) {
    if let Err(error) = response.encode_into(out) {
        error!(opaque = response.opaque, %error, "response cannot be encoded");
        let fallback = RemotingCommand::response_to(response, ResponseCode::SystemError)
            .with_remark(format!("the response could not be encoded: {error}"));
        if let Err(error) = fallback.encode_into(out) {
            error!(%error, "even the error response cannot be encoded");
        }
    }
}
