//! The ringmq NameServer: a RocketMQ-compatible route registry, as a library (embedded by
//! `ringmq-broker standalone`) with a thin binary (`ringmq-namesrv`).
//!
//! Brokers register with every NameServer (`REGISTER_BROKER`, every 30 s) and are dropped
//! after 120 s of silence or as soon as their connection closes; clients and admin tools ask
//! it for topic routes, the cluster map, topic lists and KV config. Several NameServers run
//! side by side, unaware of each other. It runs on tokio; it is not on the data path.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringmq_namesrv::NameServerError> {
//! use ringmq_namesrv::{NameServer, NameServerConfig};
//!
//! let config = NameServerConfig {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     kv_config_path: "/tmp/ringmq-namesrv/kvConfig.json".into(),
//!     ..NameServerConfig::default()
//! };
//! let server = NameServer::start(config).await?;
//! println!("NameServer on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From a thread that runs no tokio runtime (the broker's io_uring shards), use
//! [`NameServer::start_in_background`], which runs the server on its own thread.

pub mod config;
pub mod error;
mod handler;
pub mod kv;
pub mod limits;
pub mod metrics;
pub mod route;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::NameServerConfig;
pub use error::NameServerError;

use handler::Shared;
use kv::KvStore;
use route::RouteTables;

/// Entry points of the NameServer.
#[derive(Debug)]
pub struct NameServer;

impl NameServer {
    /// Loads the KV store, binds the listen address and starts serving on the current tokio
    /// runtime. Returns once the socket is bound.
    pub async fn start(config: NameServerConfig) -> Result<NameServerHandle, NameServerError> {
        config.validate()?;
        let kv = KvStore::open(config.kv_config_path.clone())?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| NameServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| NameServerError::Bind {
                addr: config.listen,
                source,
            })?;
        tracing::info!(%local_addr, kv = %config.kv_config_path.display(), scan_interval_ms = config.scan_interval_ms, broker_expiry_ms = config.broker_expiry_ms, "NameServer listening");
        let shared = Arc::new(Shared {
            routes: RwLock::new(RouteTables::new()),
            kv,
            config: RwLock::new(config),
            route_cache: handler::RouteCache::default(),
            counters: metrics::Counters::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(server::run(listener, shared.clone(), shutdown_rx));
        Ok(NameServerHandle {
            local_addr,
            shutdown,
            task,
            shared,
        })
    }

    /// Starts the NameServer on a dedicated thread with its own single-threaded tokio
    /// runtime, for callers that do not run tokio. Returns once the socket is bound.
    pub fn start_in_background(
        config: NameServerConfig,
    ) -> Result<BackgroundNameServer, NameServerError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("ringmq-namesrv")
            .build()
            .map_err(NameServerError::Runtime)?;
        let thread = std::thread::Builder::new()
            .name("ringmq-namesrv".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match NameServer::start(config).await {
                        Ok(handle) => {
                            let _ = ready_tx.send(Ok(handle.local_addr()));
                            // A dropped sender (owner gone) also means stop.
                            let _ = stop_rx.await;
                            handle.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(NameServerError::Runtime)?;
        let local_addr = ready_rx.recv().map_err(|_| {
            NameServerError::Runtime(std::io::Error::other(
                "the NameServer thread exited before binding",
            ))
        })??;
        Ok(BackgroundNameServer {
            local_addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A running NameServer on the caller's tokio runtime.
#[derive(Debug)]
pub struct NameServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

/// Counts for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameServerStats {
    /// Live broker addresses.
    pub live_brokers: usize,
    /// Topics with at least one broker's queues.
    pub topics: usize,
    /// Requests received.
    pub requests: u64,
    /// Error responses sent.
    pub error_responses: u64,
    /// Route queries, and how many the cache answered.
    pub route_queries: u64,
    /// Route queries answered from the cache.
    pub route_cache_hits: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections refused at the limit.
    pub connections_refused: u64,
    /// Connections closed because of a framing or header error.
    pub connections_closed_on_error: u64,
}

impl NameServerHandle {
    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Current table sizes.
    pub fn stats(&self) -> NameServerStats {
        self.shared.stats()
    }

    /// Stops accepting, closes connections (waiting up to 5 s for them) and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "NameServer task failed");
        }
        tracing::info!("NameServer stopped");
    }
}

/// A NameServer running on its own thread ([`NameServer::start_in_background`]). Dropping it
/// shuts it down.
#[derive(Debug)]
pub struct BackgroundNameServer {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundNameServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the NameServer thread panicked");
        }
    }
}

impl Drop for BackgroundNameServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
