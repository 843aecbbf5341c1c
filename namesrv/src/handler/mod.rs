//! Request dispatch: one module per command family, each a function from a request to its
//! response. Handlers decode their typed header and body (errors name the field), act on the
//! shared state, and build the response in the request's header encoding.
//!
//! Almost every handler is a short, synchronous table operation and runs on the
//! connection's task; the KV writes wait for the disk and run as their own tasks
//! ([`Handled::Later`]), so one connection's answers may go out of request order.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, WireError};

use crate::config::NameServerConfig;
use crate::kv::KvStore;
use crate::route::{ConnectionId, RouteTables};

mod broker;
mod config;
mod kv;
mod route;

/// State shared by all connections.
#[derive(Debug)]
pub struct Shared {
    /// The route tables.
    pub routes: RwLock<RouteTables>,
    /// The KV store.
    pub kv: KvStore,
    /// The live configuration (`UPDATE_NAMESRV_CONFIG` changes it).
    pub config: RwLock<NameServerConfig>,
    /// Encoded route answers, valid for one generation of the route tables.
    pub route_cache: RouteCache,
    /// Request and connection counters.
    pub counters: crate::metrics::Counters,
}

impl Shared {
    /// Read access to the route tables. A poisoned lock means a handler panicked midway;
    /// the tables are plain maps and stay usable, so carry on rather than take the server down.
    pub fn routes(&self) -> RwLockReadGuard<'_, RouteTables> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Write access to the route tables.
    pub fn routes_mut(&self) -> RwLockWriteGuard<'_, RouteTables> {
        self.routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Table sizes and counters.
    pub fn stats(&self) -> crate::NameServerStats {
        use crate::metrics::Counters;
        let (live_brokers, topics) = {
            let routes = self.routes();
            (routes.live_broker_count(), routes.topic_count())
        };
        let c = &self.counters;
        crate::NameServerStats {
            live_brokers,
            topics,
            requests: Counters::read(&c.requests),
            error_responses: Counters::read(&c.error_responses),
            route_queries: Counters::read(&c.route_queries),
            route_cache_hits: Counters::read(&c.route_cache_hits),
            connections_open: Counters::read(&c.connections_open),
            connections_refused: Counters::read(&c.connections_refused),
            connections_closed_on_error: Counters::read(&c.connections_closed_on_error),
        }
    }

    /// A copy of the live configuration.
    pub fn config(&self) -> NameServerConfig {
        self.config_ref().clone()
    }

    /// Read access to the live configuration, for reading a field without copying it all.
    pub fn config_ref(&self) -> RwLockReadGuard<'_, NameServerConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Encoded `TopicRouteData` bodies per topic, tagged with the route-table generation they
/// were built from ([`RouteTables::generation`]); any table change makes them all stale.
/// Serving a cached body skips rebuilding and re-encoding the route, which is most of the
/// cost of the NameServer's hottest request.
#[derive(Debug, Default)]
pub struct RouteCache {
    inner: RwLock<RouteCacheInner>,
}

#[derive(Debug, Default)]
struct RouteCacheInner {
    generation: u64,
    bodies: std::collections::HashMap<String, bytes::Bytes>,
}

impl RouteCache {
    /// The cached body of `topic` built from `generation`, if any.
    pub fn get(&self, topic: &str, generation: u64) -> Option<bytes::Bytes> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (inner.generation == generation)
            .then(|| inner.bodies.get(topic).cloned())
            .flatten()
    }

    /// Stores a body built from `generation`; a body older than the cache is dropped, a
    /// newer one resets the cache to its generation.
    pub fn put(&self, topic: &str, generation: u64, body: bytes::Bytes) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.generation != generation {
            if generation < inner.generation {
                return;
            }
            inner.generation = generation;
            inner.bodies.clear();
        }
        if inner.bodies.len() >= crate::limits::ROUTE_CACHE_ENTRIES_MAX {
            inner.bodies.clear();
        }
        inner.bodies.insert(topic.to_owned(), body);
    }
}

/// A response computed later (a KV write waiting for the disk).
pub type LaterResponse = Pin<Box<dyn Future<Output = RemotingCommand> + Send + 'static>>;

/// The outcome of dispatching one request.
pub enum Handled {
    /// The response is ready.
    Now(RemotingCommand),
    /// The response will be ready when the future completes.
    Later(LaterResponse),
}

/// Dispatches one request.
pub fn handle(shared: &Arc<Shared>, connection: ConnectionId, request: RemotingCommand) -> Handled {
    let Some(code) = request.request_code() else {
        return Handled::Now(not_supported(&request));
    };
    let result = match code {
        RequestCode::RegisterBroker => broker::register(shared, connection, &request),
        RequestCode::UnregisterBroker => broker::unregister(shared, &request),
        RequestCode::BrokerHeartbeat => broker::heartbeat(shared, &request),
        RequestCode::QueryDataVersion => broker::query_data_version(shared, &request),
        RequestCode::GetRouteinfoByTopic => route::route_by_topic(shared, &request),
        RequestCode::GetBrokerClusterInfo => route::cluster_info(shared, &request),
        RequestCode::GetAllTopicListFromNameserver => route::all_topics(shared, &request),
        RequestCode::GetTopicsByCluster => route::topics_by_cluster(shared, &request),
        RequestCode::GetSystemTopicListFromNs => route::system_topics(shared, &request),
        RequestCode::GetUnitTopicList
        | RequestCode::GetHasUnitSubTopicList
        | RequestCode::GetHasUnitSubUnunitTopicList => route::unit_topics(shared, code, &request),
        RequestCode::DeleteTopicInNamesrv => route::delete_topic(shared, &request),
        RequestCode::RegisterTopicInNamesrv => route::register_topic(shared, &request),
        RequestCode::WipeWritePermOfBroker => route::write_perm(shared, &request, false),
        RequestCode::AddWritePermOfBroker => route::write_perm(shared, &request, true),
        RequestCode::GetKvConfig => kv::get(shared, &request),
        RequestCode::GetKvlistByNamespace => kv::list(shared, &request),
        RequestCode::PutKvConfig => {
            return Handled::Later(Box::pin(kv::put(shared.clone(), request)));
        }
        RequestCode::DeleteKvConfig => {
            return Handled::Later(Box::pin(kv::delete(shared.clone(), request)));
        }
        RequestCode::GetNamesrvConfig => Ok(config::get(shared, &request)),
        RequestCode::UpdateNamesrvConfig => config::update(shared, &request),
        _ => return Handled::Now(not_supported(&request)),
    };
    Handled::Now(result.unwrap_or_else(|error| malformed(&request, &error)))
}

/// `REQUEST_CODE_NOT_SUPPORTED` with the code in the remark, as RocketMQ answers.
fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::error_response(
        request,
        ResponseCode::RequestCodeNotSupported,
        format!(
            "request type {} not supported by the ringmq NameServer",
            RequestCode::describe(request.code)
        ),
    )
}

/// The answer to a request whose header or body does not decode.
fn malformed(request: &RemotingCommand, error: &WireError) -> RemotingCommand {
    tracing::debug!(code = %RequestCode::describe(request.code), %error, "malformed request");
    RemotingCommand::error_response(
        request,
        error.response_code(),
        format!("{}: {error}", RequestCode::describe(request.code)),
    )
}

/// A success response with a body.
fn success_with_body(request: &RemotingCommand, body: Vec<u8>) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::Success).with_body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_cache_serves_only_its_generation() {
        let cache = RouteCache::default();
        cache.put("T", 1, bytes::Bytes::from_static(b"v1"));
        assert_eq!(cache.get("T", 1).as_deref(), Some(&b"v1"[..]));
        assert!(cache.get("T", 2).is_none(), "stale after a table change");
        assert!(cache.get("U", 1).is_none());
        cache.put("T", 3, bytes::Bytes::from_static(b"v3"));
        // A body built from an older generation, finishing late, is not stored.
        cache.put("U", 2, bytes::Bytes::from_static(b"old"));
        assert!(cache.get("U", 2).is_none() && cache.get("U", 3).is_none());
        assert_eq!(cache.get("T", 3).as_deref(), Some(&b"v3"[..]));
    }
}
