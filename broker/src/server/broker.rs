//! The broker process: one shard per core, each a complete RocketMQ broker serving its own
//! ports with its own store, registered with every NameServer as `<brokerName>-s<i>`.
//!
//! Process-wide and small, as `ARCHITECTURE.md` §3 wants: the configuration, the shard
//! threads (the runtime), the admin fan-out (a topic or group changed on one shard is applied
//! on every other shard through [`ShardHandle::try_run`], never by sharing state), and
//! shutdown. NameServer registration runs on each shard for that shard.

use std::cell::RefCell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use ringmq_wire::{FrameDecoder, RemotingCommand};

use crate::config::{BrokerConfig, ConfigError, FlushMode};
use crate::runtime::{
    Runtime, RuntimeConfig, RuntimeError, ShardContext, ShardHandle, TcpListener, TcpStream, sleep,
    spawn_local, timeout,
};
use crate::server::net::{ShardServer, now_ms};
use crate::server::register::{parse_register_response, register_request};
use crate::server::service::ShardService;
use crate::server::state::{AdminChange, ShardIdentity, ShardState};
use crate::server::store::ShardStore;
use crate::server::store_adapter::RealStore;
use crate::store::uring::UringFs;
use crate::store::{self, StoreConfig};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The shard runtime could not start (io_uring unavailable, …).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The overlay of runtime config changes next to the data cannot be applied.
    #[error("{0}")]
    Overlay(String),
    /// A shard could not open its store or bind its ports; the shards that did start were
    /// stopped cleanly.
    #[error("shard {shard} failed to start: {reason}")]
    Shard {
        /// The shard's index.
        shard: usize,
        /// Why, naming the port or the store path.
        reason: String,
    },
}

/// What a shard reports once it is serving, or why it cannot.
type Readiness = (usize, Result<SocketAddr, String>);

/// Reports a shard's readiness exactly once; a shard that ends (or panics) before it
/// reported says so from `drop`, so [`Broker::start`] never waits for a shard that is gone.
struct ReadyReporter {
    shard: usize,
    tx: Option<mpsc::Sender<Readiness>>,
}

impl ReadyReporter {
    fn report(&mut self, outcome: Result<SocketAddr, String>) {
        if let Some(tx) = self.tx.take() {
            // The receiver only goes away once `start` returned: nobody is listening then.
            let _ = tx.send((self.shard, outcome));
        }
    }
}

impl Drop for ReadyReporter {
    fn drop(&mut self) {
        self.report(Err("the shard ended before it was ready".into()));
    }
}

/// Interval between two flushes of what runs behind the CommitLog (queues, index,
/// checkpoint), RocketMQ's `flushIntervalConsumeQueue`.
pub const PERSIST_INTERVAL_MS: u64 = 1_000;

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    runtime: Runtime,
    addrs: Vec<SocketAddr>,
}

impl Broker {
    /// Validates `config`, starts one shard per configured core and waits until every shard
    /// has opened (recovered) its store and bound its ports. If any shard cannot, the shards
    /// that did start are stopped cleanly (stores closed) and the first failure is returned,
    /// naming the shard and the port or store path.
    pub fn start(mut config: BrokerConfig) -> Result<Broker, BrokerError> {
        config.validate()?;
        // Keys changed at runtime (UPDATE_BROKER_CONFIG) survive restarts in an overlay.
        let overlay = crate::server::handler::broker_config::apply_overlay(&mut config)
            .map_err(|e| BrokerError::Overlay(e.to_string()))?;
        if !overlay.is_empty() {
            tracing::info!(target: "ringmq::server::broker", ?overlay,
                "runtime config changes applied from the overlay file");
        }
        let shards = config.resolved_shards()?;
        let runtime_config = RuntimeConfig {
            shards: Some(shards),
            driver: config.runtime.driver,
            ..RuntimeConfig::default()
        };
        let config = Arc::new(config);
        let (ready_tx, ready_rx) = mpsc::channel::<Readiness>();
        let ready_tx = std::sync::Mutex::new(ready_tx);
        let runtime = Runtime::start(&runtime_config, move |ctx| {
            let config = config.clone();
            let tx = ready_tx
                .lock()
                .map(|tx| tx.clone())
                .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
            let ready = ReadyReporter {
                shard: ctx.id,
                tx: Some(tx),
            };
            async move { run_shard(config, ctx, ready).await }
        })?;
        let count = runtime.shards().len();
        let mut addrs: Vec<Option<SocketAddr>> = vec![None; count];
        let mut failures: Vec<(usize, String)> = Vec::new();
        for _ in 0..count {
            match ready_rx.recv() {
                Ok((shard, Ok(addr))) => {
                    if let Some(slot) = addrs.get_mut(shard) {
                        *slot = Some(addr);
                    }
                }
                Ok((shard, Err(reason))) => failures.push((shard, reason)),
                // Every reporter is gone: the runtime's root closure was dropped.
                Err(_) => break,
            }
        }
        let addrs: Option<Vec<SocketAddr>> = addrs.into_iter().collect();
        let broker = Broker {
            runtime,
            addrs: Vec::new(),
        };
        let Some(addrs) = addrs.filter(|_| failures.is_empty()) else {
            failures.sort();
            let (shard, reason) = failures
                .into_iter()
                .next()
                .unwrap_or((0, "a shard never reported readiness".into()));
            tracing::error!(target: "ringmq::server::broker", shard, %reason,
                "start failed; stopping the shards that did start");
            if let Err(error) = broker.shutdown() {
                tracing::error!(target: "ringmq::server::broker", %error,
                    "stopping after a failed start");
            }
            return Err(BrokerError::Shard { shard, reason });
        };
        Ok(Broker { addrs, ..broker })
    }

    /// The I/O driver the shards run on (io_uring, or the fallback where io_uring is
    /// unavailable and `runtime.driver` allows it).
    pub fn runtime_driver(&self) -> crate::runtime::DriverKind {
        self.runtime.driver()
    }

    /// The address each shard serves clients on (as published), indexed by shard; with
    /// `base_port = 0`, the OS-assigned ports.
    pub fn shard_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops every shard cleanly and waits for the threads: each shard stops accepting,
    /// group-commits and persists its store, and saves its topics, groups and offsets. The
    /// NameServers drop the shards when their registration connections close.
    pub fn shutdown(self) -> Result<(), BrokerError> {
        for handle in self.runtime.shards() {
            let outcome = handle.run_blocking(|| async {
                let hook = SHUTDOWN_HOOK.with(|hook| hook.borrow().clone());
                match hook {
                    Some(hook) => hook().await,
                    None => Ok(()),
                }
            });
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(target: "ringmq::server::broker",
                    shard = handle.id(), %error, "clean shutdown incomplete"),
                Err(gone) => tracing::warn!(target: "ringmq::server::broker", ?gone,
                    "shard already gone at shutdown"),
            }
        }
        Ok(self.runtime.shutdown()?)
    }

    /// Waits until the shards end (they run until [`Self::shutdown`]).
    pub fn join(self) -> Result<(), BrokerError> {
        Ok(self.runtime.join()?)
    }
}

/// The store configuration of shard `shard`.
pub fn store_config(config: &BrokerConfig, shard: usize, store_host: SocketAddr) -> StoreConfig {
    let mut store_config = StoreConfig::new(config.shard_store_path(shard));
    store_config.segment_bytes = config.store.segment_bytes;
    store_config.tail_cache_bytes = config.store.tail_cache_bytes;
    store_config.consume_queue_cache_bytes = config.store.consume_queue_cache_bytes;
    store_config.flush_mode = match config.store.flush_mode {
        FlushMode::Async => store::FlushMode::Async,
        FlushMode::Sync => store::FlushMode::Sync,
        FlushMode::Memory => store::FlushMode::Memory,
    };
    store_config.max_body_bytes = config.limits.max_message_bytes;
    store_config.store_host = store_host;
    store_config.file_reserved_hours = config.retention.file_reserved_time_hours;
    store_config.delete_when_hours = config
        .retention
        .delete_hours()
        .into_iter()
        .map(u32::from)
        .collect();
    store_config.disk_max_used_percent = u32::from(config.retention.disk_max_used_space_ratio);
    store_config.disk_clean_forcibly_percent =
        u32::from(config.retention.disk_space_clean_forcibly_ratio);
    store_config.disk_warning_percent = u32::from(config.retention.disk_space_warning_level_ratio);
    store_config.pull_messages_max = config.limits.max_pull_messages;
    store_config.delay_levels_ms = config
        .schedule
        .delay_levels_ms()
        .into_iter()
        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX))
        .collect();
    store_config
}

/// Applies an admin change on the shard of the current thread.
type AdminSink = Rc<dyn Fn(AdminChange)>;

/// Stops and flushes the shard of the current thread.
type ShutdownHook =
    Rc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>>;

/// How long a clean shutdown waits for a group commit in flight on the ring.
const COMMIT_DRAIN_MS_MAX: u64 = 30_000;

thread_local! {
    /// The clean-shutdown step of the shard running on this thread.
    static SHUTDOWN_HOOK: RefCell<Option<ShutdownHook>> = RefCell::new(None);
    /// The admin sink of the shard running on this thread, for changes fanned out from
    /// other shards.
    static ADMIN_SINK: RefCell<Option<AdminSink>> = RefCell::new(None);
}

/// How long a port still held by a broker that just died may be waited for: a killed
/// process's io_uring (and the listening socket its pending accept holds) is torn down by the
/// kernel asynchronously, a moment after the process is gone.
const BIND_RETRY_MS_MAX: u64 = 10_000;

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    let mut waited_ms = 0;
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && waited_ms < BIND_RETRY_MS_MAX =>
            {
                if waited_ms == 0 {
                    tracing::warn!(target: "ringmq::server::broker", %addr,
                        "the {what} port is in use; waiting up to {BIND_RETRY_MS_MAX} ms for it");
                }
                sleep(Duration::from_millis(100)).await;
                waited_ms += 100;
            }
            Err(error) => {
                return Err(format!(
                    "cannot bind the {what} port {addr}: {error} (is another broker using it? \
                     change broker.base_port)"
                ));
            }
        }
    }
}

/// One shard: open (recover) the store, then bind the ports, then serve.
///
/// The store comes first so that a shard never accepts a connection it cannot serve. With
/// OS-assigned ports (`base_port = 0`, tests) the port must be bound first to know the
/// address written into the records; nobody can connect to it before `start` returns it.
async fn run_shard(config: Arc<BrokerConfig>, ctx: ShardContext, mut ready: ReadyReporter) {
    let shard = ctx.id;
    let ip = config.broker.listen_addr;
    let mut listeners = Vec::new();
    if config.broker.base_port == 0 {
        match bind(SocketAddr::new(ip, 0), "client").await {
            Ok(listener) => listeners.push(listener),
            Err(reason) => return ready.report(Err(reason)),
        }
    }
    let port = listeners
        .first()
        .map_or(config.shard_port(shard), |l| l.local_addr().port());
    let store_host = SocketAddr::new(config.advertised_ip(), port);
    let store_config = store_config(&config, shard, store_host);
    let store_path = store_config.root.clone();
    let store = match RealStore::open_on_ring(UringFs::new(), store_config) {
        Ok(store) => store,
        Err(error) => {
            return ready.report(Err(format!(
                "cannot open the store at {}: {error}",
                store_path.display()
            )));
        }
    };
    if config.broker.base_port != 0 {
        let ports = [
            (config.shard_port(shard), "client"),
            (config.shard_vip_port(shard), "VIP"),
        ];
        for (port, what) in ports {
            match bind(SocketAddr::new(ip, port), what).await {
                Ok(listener) => listeners.push(listener),
                Err(reason) => {
                    if let Err(error) = store.close() {
                        tracing::error!(target: "ringmq::server::broker", shard, %error,
                            "closing the store after a failed bind");
                    }
                    return ready.report(Err(reason));
                }
            }
        }
    }
    let identity = ShardIdentity::of(&config, shard, store_host);
    tracing::info!(target: "ringmq::server::broker", shard, broker = %identity.broker_name,
        addr = %store_host, "shard serving");
    let state = ShardState::new(identity, config.clone(), store, now_ms());
    let server = ShardServer::new(ShardService::new(state));
    let weak = Rc::downgrade(&server);
    server
        .service
        .borrow_mut()
        .state
        .store
        .set_commit_notify(Rc::new(move || {
            if let Some(server) = weak.upgrade() {
                server.kick();
            }
        }));
    {
        // Query reads run as tasks of this shard; their completion ticks the server.
        let weak = Rc::downgrade(&server);
        server.service.borrow_mut().state.deferred.install(
            Rc::new(|task| drop(spawn_local(task))),
            Rc::new(move || {
                if let Some(server) = weak.upgrade() {
                    server.kick();
                }
            }),
        );
    }
    install_admin(&server, ctx.shards.clone(), shard);
    install_shutdown(&server);
    spawn_local(persist_loop(
        server.clone(),
        config.store.flush_consumer_offset_interval_ms,
    ));
    spawn_local(register_loop(server.clone(), config.clone()));
    ready.report(Ok(store_host));
    server.serve(listeners).await;
}

/// Wires the admin fan-out: changes made here go to every other shard; changes from other
/// shards are applied here.
fn install_admin<S: ShardStore + 'static>(
    server: &Rc<ShardServer<S>>,
    shards: Vec<ShardHandle>,
    me: usize,
) {
    let local = server.clone();
    ADMIN_SINK.with(|sink| {
        *sink.borrow_mut() = Some(Rc::new(move |change| {
            local
                .service
                .borrow_mut()
                .state
                .apply_admin_change(change, now_ms());
        }));
    });
    let fanout = move |changes: Vec<AdminChange>| {
        for handle in shards.iter().filter(|h| h.id() != me) {
            for change in &changes {
                let change = change.clone();
                let sent = handle.try_run(move || async move {
                    ADMIN_SINK.with(|sink| {
                        if let Some(apply) = sink.borrow().as_ref() {
                            apply(change);
                        }
                    });
                });
                if let Err(error) = sent {
                    tracing::error!(target: "ringmq::server::broker", shard = handle.id(), ?error,
                        "admin change not delivered to shard");
                }
            }
        }
    };
    server.set_admin_fanout(Box::new(fanout));
}

/// Persists the store's queues/index/checkpoint every [`PERSIST_INTERVAL_MS`] and the
/// shard's metadata (topics, groups, consumer offsets) every
/// `flush_consumer_offset_interval_ms`.
fn install_shutdown<S: ShardStore + 'static>(server: &Rc<ShardServer<S>>) {
    let local = server.clone();
    SHUTDOWN_HOOK.with(|hook| {
        *hook.borrow_mut() = Some(Rc::new(move || {
            let local = local.clone();
            Box::pin(async move {
                // First let a group commit in flight on the ring come back (the server is
                // still running meanwhile); commits are blocking from here on.
                let mut waited_ms = 0;
                while local.service.borrow_mut().state.store.drain_commits()
                    && waited_ms < COMMIT_DRAIN_MS_MAX
                {
                    sleep(Duration::from_millis(1)).await;
                    waited_ms += 1;
                }
                local.stop();
                let mut service = local.service.borrow_mut();
                let state = &mut service.state;
                state.after_requests(now_ms());
                state.store.persist().map_err(|e| e.to_string())?;
                state.persist_meta().map_err(|e| e.to_string())?;
                // Last: metadata snapshots go through the store, and the store's clean close
                // removes the crash marker so the next start trusts the checkpoint.
                state.store.shutdown().map_err(|e| e.to_string())
            })
        }));
    });
}

async fn persist_loop<S: ShardStore + 'static>(server: Rc<ShardServer<S>>, meta_interval_ms: u64) {
    let mut last_meta = now_ms();
    loop {
        sleep(Duration::from_millis(PERSIST_INTERVAL_MS)).await;
        let result = server.service.borrow_mut().state.store.persist();
        if let Err(error) = result {
            tracing::error!(target: "ringmq::server::broker", %error, "store persist failed");
        }
        if now_ms().saturating_sub(last_meta) >= meta_interval_ms {
            last_meta = now_ms();
            let result = server.service.borrow_mut().state.persist_meta();
            if let Err(error) = result {
                tracing::error!(target: "ringmq::server::broker", %error,
                    "persisting topics, groups and offsets failed");
            }
        }
    }
}

/// Registers this shard with every NameServer now and every `register_period_ms`, and
/// at once when its topic table changed. The connection to each NameServer
/// is kept open between registrations: a NameServer drops a broker whose channel closes.
async fn register_loop<S: ShardStore + 'static>(
    server: Rc<ShardServer<S>>,
    config: Arc<BrokerConfig>,
) {
    let period = config.broker.register_period_ms;
    let mut last = 0u64;
    let mut connections: Vec<Option<NamesrvConnection>> =
        config.broker.namesrv_addrs.iter().map(|_| None).collect();
    loop {
        let now = now_ms();
        let changed = server.service.borrow_mut().state.take_register_request();
        if changed || now.saturating_sub(last) >= period {
            last = now;
            let request = register_request(&server.service.borrow().state);
            for (addr, slot) in config
                .broker
                .namesrv_addrs
                .iter()
                .zip(connections.iter_mut())
            {
                register_once(addr, slot, &request, config.broker.register_timeout_ms).await;
            }
        }
        // Sleep until the next periodic registration, or less: a topic change wakes us.
        let wait = period.saturating_sub(now_ms().saturating_sub(last)).max(1);
        let _ = timeout(
            Duration::from_millis(wait),
            std::future::poll_fn(|cx| server.service.borrow_mut().state.poll_register_request(cx)),
        )
        .await;
    }
}

/// A kept-open connection to one NameServer.
struct NamesrvConnection {
    stream: TcpStream,
    decoder: FrameDecoder,
}

async fn register_once(
    addr: &str,
    slot: &mut Option<NamesrvConnection>,
    request: &RemotingCommand,
    timeout_ms: u64,
) {
    let outcome = timeout(
        Duration::from_millis(timeout_ms),
        exchange(addr, slot, request),
    )
    .await;
    let result = match outcome {
        Ok(Ok(response)) => parse_register_response(&response).map_err(|e| e.to_string()),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!("no answer within {timeout_ms} ms")),
    };
    match result {
        Ok(_) => tracing::debug!(target: "ringmq::server::register", namesrv = addr, "registered"),
        Err(error) => {
            // Start over on a fresh connection next time.
            *slot = None;
            tracing::warn!(target: "ringmq::server::register", namesrv = addr, %error,
                "registration failed")
        }
    }
}

/// Sends one request on the kept connection (opening it if needed) and reads its response.
async fn exchange(
    addr: &str,
    slot: &mut Option<NamesrvConnection>,
    request: &RemotingCommand,
) -> Result<RemotingCommand, String> {
    if slot.is_none() {
        let target = addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr} resolves to nothing"))?;
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        *slot = Some(NamesrvConnection {
            stream,
            decoder: FrameDecoder::default(),
        });
    }
    let Some(connection) = slot.as_mut() else {
        return Err("no connection".into());
    };
    let mut request = request.clone();
    request.opaque = ringmq_wire::command::next_opaque();
    let bytes = request.encode_frame().map_err(|e| e.to_string())?;
    let (sent, _) = connection.stream.send_all(bytes).await;
    sent.map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        while let Some(response) = connection
            .decoder
            .next_command()
            .map_err(|e| e.to_string())?
        {
            if response.opaque == request.opaque {
                return Ok(response);
            }
        }
        buf.clear();
        let (received, returned) = connection.stream.recv(buf).await;
        buf = returned;
        match received {
            Ok(0) => return Err("NameServer closed the connection".into()),
            Ok(n) => connection.decoder.extend(&buf[..n]),
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
}
