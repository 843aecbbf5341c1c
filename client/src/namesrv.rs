//! The NameServer client: topic routes, cluster info, topic lists, with failover across the
//! configured NameServers (`"host:port;host:port"`).
//!
//! Requests go to the NameServer that last answered; when it cannot be reached (connect
//! failure, connection loss, timeout) the next one in the list is tried, and so on once
//! around the list. An error *answer* (e.g. `TOPIC_NOT_EXIST`) is returned as is: another
//! NameServer has the same tables. Writes that every NameServer must see (deleting a topic)
//! go to all of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringmq_wire::body::cluster::ClusterInfo;
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::topic::TopicList;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    DeleteTopicFromNamesrvRequestHeader, GetRouteInfoRequestHeader, GetTopicsByClusterRequestHeader,
};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use tracing::{debug, warn};

use crate::error::{ClientError, Result};
use crate::remoting::RemotingClient;

/// Parses a NameServer list, `"host:port;host:port"` (commas and spaces also separate).
pub fn parse_addrs(list: &str) -> Result<Vec<String>> {
    let addrs: Vec<String> = list
        .split([';', ',', ' '])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if addrs.is_empty() {
        return Err(ClientError::InvalidArgument(format!(
            "NameServer address list {list:?} is empty (expected \"host:port;host:port\")"
        )));
    }
    if let Some(bad) = addrs.iter().find(|a| !a.contains(':')) {
        return Err(ClientError::InvalidArgument(format!(
            "NameServer address {bad:?} has no port (expected host:port)"
        )));
    }
    Ok(addrs)
}

/// Client of a set of NameServers; cheap to clone.
#[derive(Debug, Clone)]
pub struct NameServerClient {
    remoting: RemotingClient,
    addrs: std::sync::Arc<Vec<String>>,
    current: std::sync::Arc<AtomicUsize>,
    timeout: Duration,
}

impl NameServerClient {
    /// A client of the NameServers in `addrs` (`"host:port;host:port"`).
    pub fn new(remoting: RemotingClient, addrs: &str, timeout: Duration) -> Result<Self> {
        Ok(NameServerClient {
            remoting,
            addrs: std::sync::Arc::new(parse_addrs(addrs)?),
            current: std::sync::Arc::default(),
            timeout,
        })
    }

    /// The configured NameServer addresses.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Sends `request` to one NameServer, failing over on transport errors; returns the
    /// response whatever its code.
    pub async fn invoke(&self, request: RemotingCommand) -> Result<RemotingCommand> {
        let start = self.current.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..self.addrs.len() {
            let index = (start + i) % self.addrs.len();
            let addr = &self.addrs[index];
            let mut attempt = request.clone();
            attempt.opaque = ringmq_wire::command::next_opaque();
            match self.remoting.invoke(addr, attempt, self.timeout).await {
                Ok(response) => {
                    if index != start {
                        debug!(%addr, "NameServer failover");
                        self.current.store(index, Ordering::Relaxed);
                    }
                    return Ok(response);
                }
                Err(error) => {
                    warn!(%addr, %error, "NameServer request failed, trying the next one");
                    last_error = Some(error);
                }
            }
        }
        Err(ClientError::NameServerUnavailable {
            tried: self.addrs.join(";"),
            last_error: last_error.map_or_else(|| "no address".into(), |e| e.to_string()),
        })
    }

    /// Like [`Self::invoke`], but an error response becomes [`ClientError::Broker`].
    async fn invoke_ok(&self, request: RemotingCommand) -> Result<RemotingCommand> {
        let code = request.code;
        let response = self.invoke(request).await?;
        if response.code == ResponseCode::Success.as_i32() {
            Ok(response)
        } else {
            let addr = self.addrs[self.current.load(Ordering::Relaxed) % self.addrs.len()].clone();
            Err(crate::remoting::broker_error(&addr, code, &response))
        }
    }

    /// `GET_ROUTEINFO_BY_TOPIC`: the topic's route; [`ClientError::NoRoute`] if the
    /// NameServers do not know the topic.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        let mut request = RemotingCommand::request(RequestCode::GetRouteinfoByTopic);
        GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: None,
        }
        .encode_into(&mut request);
        let response = self.invoke(request).await?;
        if response.code == ResponseCode::TopicNotExist.as_i32() {
            return Err(ClientError::NoRoute {
                topic: topic.to_owned(),
                reason: response
                    .remark
                    .unwrap_or_else(|| "unknown to the NameServer".into()),
            });
        }
        if response.code != ResponseCode::Success.as_i32() {
            let addr = self.addrs[self.current.load(Ordering::Relaxed) % self.addrs.len()].clone();
            return Err(crate::remoting::broker_error(
                &addr,
                RequestCode::GetRouteinfoByTopic.as_i32(),
                &response,
            ));
        }
        self.parse_body("topic route", &response)
    }

    /// `GET_BROKER_CLUSTER_INFO`: every cluster and broker group.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let request = RemotingCommand::request(RequestCode::GetBrokerClusterInfo);
        let response = self.invoke_ok(request).await?;
        self.parse_body("cluster info", &response)
    }

    /// `GET_ALL_TOPIC_LIST_FROM_NAMESERVER`: every topic the NameServer knows.
    pub async fn all_topics(&self) -> Result<TopicList> {
        let request = RemotingCommand::request(RequestCode::GetAllTopicListFromNameserver);
        let response = self.invoke_ok(request).await?;
        self.parse_body("topic list", &response)
    }

    /// `GET_TOPICS_BY_CLUSTER`: the topics of one cluster.
    pub async fn topics_by_cluster(&self, cluster: &str) -> Result<TopicList> {
        let mut request = RemotingCommand::request(RequestCode::GetTopicsByCluster);
        GetTopicsByClusterRequestHeader {
            cluster: cluster.to_owned(),
        }
        .encode_into(&mut request);
        let response = self.invoke_ok(request).await?;
        self.parse_body("topic list", &response)
    }

    /// `DELETE_TOPIC_IN_NAMESRV` on every NameServer (they do not share state). Fails if
    /// any of them fails, naming it.
    pub async fn delete_topic(&self, topic: &str, cluster: Option<&str>) -> Result<()> {
        for addr in self.addrs.iter() {
            let mut request = RemotingCommand::request(RequestCode::DeleteTopicInNamesrv);
            DeleteTopicFromNamesrvRequestHeader {
                topic: topic.to_owned(),
                cluster_name: cluster.map(str::to_owned),
            }
            .encode_into(&mut request);
            self.remoting.invoke_ok(addr, request, self.timeout).await?;
        }
        Ok(())
    }

    fn parse_body<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        response: &RemotingCommand,
    ) -> Result<T> {
        ringmq_wire::json::parse(what, &response.body).map_err(|source| ClientError::Wire {
            addr: self.addrs[self.current.load(Ordering::Relaxed) % self.addrs.len()].clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_lists() {
        assert_eq!(
            parse_addrs("10.0.0.1:9876;10.0.0.2:9876").expect("list"),
            ["10.0.0.1:9876", "10.0.0.2:9876"]
        );
        assert_eq!(parse_addrs(" a:1 ; b:2 ;").expect("list"), ["a:1", "b:2"]);
        assert!(parse_addrs(" ; ").is_err());
        assert!(parse_addrs("hostonly").is_err());
    }
}
