//! [`ClientInstance`]: what producers, consumers and admin of one application share — the
//! connection pool, the NameServer client, the route cache and the client id (RocketMQ's
//! `MQClientInstance`).
//!
//! It must be created inside a tokio runtime (it starts the route refresher task) and is cheap
//! to clone. The refresher stops when the last clone is dropped or on [`ClientInstance::shutdown`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::NotifyConsumerIdsChangedRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::consumer::broker_requests::{self, ConsumerHandle, ConsumerHandles};
use crate::error::Result;
use crate::limits::{API_TIMEOUT, ROUTE_REFRESH_INTERVAL};
use crate::namesrv::{NameServerClient, parse_addrs};
use crate::producer::transaction::{Checkers, register_check_handler};
use crate::remoting::{RemotingClient, RemotingConfig};
use crate::route::RouteCache;

/// Settings shared by everything built on one [`ClientInstance`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// NameServer addresses, `"host:port;host:port"`.
    pub namesrv_addr: String,
    /// Instance name, part of the client id; `None` uses the process id and start time, so
    /// that two processes on one host never share an id (RocketMQ does the same for
    /// `DEFAULT`).
    pub instance_name: Option<String>,
    /// IP reported in the client id and message ids; `None` detects the address used to
    /// reach the first NameServer.
    pub client_ip: Option<Ipv4Addr>,
    /// The connection layer's settings.
    pub remoting: RemotingConfig,
    /// Timeout of NameServer and admin requests (RocketMQ's `mqClientApiTimeout`, 3 s).
    pub api_timeout: Duration,
    /// Route refresh interval (RocketMQ's `pollNameServerInterval`, 30 s).
    pub route_refresh_interval: Duration,
}

impl ClientConfig {
    /// Defaults with the given NameServer list.
    pub fn new(namesrv_addr: impl Into<String>) -> Self {
        ClientConfig {
            namesrv_addr: namesrv_addr.into(),
            instance_name: None,
            client_ip: None,
            remoting: RemotingConfig::default(),
            api_timeout: API_TIMEOUT,
            route_refresh_interval: ROUTE_REFRESH_INTERVAL,
        }
    }
}

/// Consumer groups of this instance → their "rebalance now" signal.
type Notifiers = Arc<Mutex<HashMap<String, Arc<Notify>>>>;

struct Inner {
    config: ClientConfig,
    consumers: Notifiers,
    consumer_handles: ConsumerHandles,
    checkers: Checkers,
    remoting: RemotingClient,
    routes: RouteCache,
    client_id: String,
    client_ip: Ipv4Addr,
    refresher: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.refresher.abort();
        self.remoting.shutdown();
    }
}

/// The shared client state; see the module docs.
#[derive(Clone)]
pub struct ClientInstance {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClientInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInstance")
            .field("client_id", &self.inner.client_id)
            .field("namesrv_addr", &self.inner.config.namesrv_addr)
            .finish_non_exhaustive()
    }
}

/// The local IPv4 address the OS would use to reach `addr` (no packet is sent: connecting a
/// UDP socket only picks a route). Falls back to loopback.
fn detect_local_ip(addr: &str) -> Ipv4Addr {
    let detected = UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.connect(addr).map(|()| socket))
        .and_then(|socket| socket.local_addr());
    match detected {
        Ok(local) => match local.ip() {
            IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            _ => Ipv4Addr::LOCALHOST,
        },
        Err(_) => Ipv4Addr::LOCALHOST,
    }
}

/// Routes `NOTIFY_CONSUMER_IDS_CHANGED` to the consumer of the named group.
fn register_notify_handler(remoting: &RemotingClient, consumers: Notifiers) {
    remoting.register_handler(
        RequestCode::NotifyConsumerIdsChanged,
        Arc::new(move |addr, request: RemotingCommand| {
            let consumers = consumers.clone();
            Box::pin(async move {
                match NotifyConsumerIdsChangedRequestHeader::decode(&request) {
                    Ok(header) => {
                        let notify = consumers
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get(&header.consumer_group)
                            .cloned();
                        debug!(%addr, group = %header.consumer_group, known = notify.is_some(), "consumer ids changed");
                        if let Some(notify) = notify {
                            notify.notify_one();
                        }
                        Some(RemotingCommand::response_to(&request, ResponseCode::Success))
                    }
                    Err(error) => Some(RemotingCommand::error_response(
                        &request,
                        ResponseCode::SystemError,
                        error.to_string(),
                    )),
                }
            })
        }),
    );
}

impl ClientInstance {
    /// Builds the instance and starts its route refresher. Must run inside a tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let addrs = parse_addrs(&config.namesrv_addr)?;
        let remoting = RemotingClient::new(config.remoting.clone());
        let nameserver =
            NameServerClient::new(remoting.clone(), &config.namesrv_addr, config.api_timeout)?;
        let routes = RouteCache::new(nameserver, config.route_refresh_interval);
        let client_ip = config
            .client_ip
            .unwrap_or_else(|| detect_local_ip(&addrs[0]));
        let instance_name = config.instance_name.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}#{nanos}", std::process::id())
        });
        let client_id = format!("{client_ip}@{instance_name}");
        let refresher = routes.spawn_refresher();
        let consumers = Notifiers::default();
        register_notify_handler(&remoting, consumers.clone());
        let consumer_handles = ConsumerHandles::default();
        broker_requests::register_handlers(
            &remoting,
            consumer_handles.clone(),
            config.namesrv_addr.clone(),
        );
        let checkers = Checkers::default();
        register_check_handler(&remoting, checkers.clone());
        Ok(ClientInstance {
            inner: Arc::new(Inner {
                config,
                consumers,
                consumer_handles,
                checkers,
                remoting,
                routes,
                client_id,
                client_ip,
                refresher,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The connection pool.
    pub fn remoting(&self) -> &RemotingClient {
        &self.inner.remoting
    }

    /// The NameServer client.
    pub fn nameserver(&self) -> &NameServerClient {
        self.inner.routes.nameserver()
    }

    /// The route cache.
    pub fn routes(&self) -> &RouteCache {
        &self.inner.routes
    }

    /// The client id, `ip@instanceName`, as brokers see it.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The IP used in the client id and in message ids.
    pub fn client_ip(&self) -> Ipv4Addr {
        self.inner.client_ip
    }

    /// The timeout of NameServer and admin requests.
    pub fn api_timeout(&self) -> Duration {
        self.inner.config.api_timeout
    }

    /// Registers a consumer group of this instance; the returned signal fires when a broker
    /// sends `NOTIFY_CONSUMER_IDS_CHANGED` for the group.
    pub(crate) fn register_consumer(&self, group: &str) -> Result<Arc<Notify>> {
        let mut consumers = self
            .inner
            .consumers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if consumers.contains_key(group) {
            return Err(crate::error::ClientError::InvalidArgument(format!(
                "consumer group {group:?} is already running on this client instance"
            )));
        }
        let notify = Arc::new(Notify::new());
        consumers.insert(group.to_owned(), notify.clone());
        Ok(notify)
    }

    /// Transaction checkers by producer group.
    pub(crate) fn transaction_checkers(&self) -> &Checkers {
        &self.inner.checkers
    }

    /// Registers what a running consumer of `group` answers to `GET_CONSUMER_RUNNING_INFO`
    /// and `RESET_CONSUMER_CLIENT_OFFSET` (see [`broker_requests`]).
    pub(crate) fn register_consumer_handle(&self, group: &str, handle: Arc<dyn ConsumerHandle>) {
        self.inner
            .consumer_handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.to_owned(), handle);
    }

    /// Unregisters a consumer group.
    pub(crate) fn unregister_consumer(&self, group: &str) {
        self.inner
            .consumers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(group);
        self.inner
            .consumer_handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(group);
    }

    /// Stops the route refresher and closes every connection; pending requests fail.
    pub fn shutdown(&self) {
        self.inner.refresher.abort();
        self.inner.remoting.shutdown();
    }
}
