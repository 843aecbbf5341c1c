//! Test helpers: an in-test server speaking the wire codec, a fake NameServer and fake
//! brokers.

use std::sync::Arc;

use ringmq_wire::{FrameDecoder, RemotingCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A peer connection on the server side.
pub(crate) struct Peer {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Peer {
    pub(crate) async fn read(&mut self) -> Option<RemotingCommand> {
        loop {
            match self.decoder.next_command() {
                Ok(Some(command)) => return Some(command),
                Ok(None) => {}
                Err(error) => panic!("test server cannot decode: {error}"),
            }
            let buffer = self.decoder.buffer_mut();
            buffer.reserve(4096);
            match self.stream.read_buf(buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    pub(crate) async fn write(&mut self, command: &RemotingCommand) {
        let frame = command.encode_frame().expect("encode");
        self.stream.write_all(&frame).await.expect("write");
    }
}

/// Starts a server on an OS-assigned port; each accepted connection is handed to `serve`.
pub(crate) async fn start_server<F, Fut>(serve: F) -> String
where
    F: Fn(Peer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let serve = serve.clone();
            tokio::spawn(async move {
                serve(Peer {
                    stream,
                    decoder: FrameDecoder::default(),
                })
                .await
            });
        }
    });
    addr
}

/// A route with one queue set per broker: `(broker name, master address, queue count)`.
pub(crate) fn route_of(brokers: &[(&str, &str, i32)]) -> ringmq_wire::body::route::TopicRouteData {
    use ringmq_wire::body::route::{BrokerData, QueueData, TopicRouteData};
    TopicRouteData {
        broker_datas: brokers
            .iter()
            .map(|(name, addr, _)| BrokerData {
                broker_addrs: [(0, (*addr).to_owned())].into_iter().collect(),
                broker_name: (*name).to_owned(),
                cluster: "TestCluster".into(),
                ..BrokerData::default()
            })
            .collect(),
        queue_datas: brokers
            .iter()
            .map(|(name, _, queues)| QueueData {
                broker_name: (*name).to_owned(),
                perm: 6,
                read_queue_nums: *queues,
                write_queue_nums: *queues,
                topic_sys_flag: 0,
            })
            .collect(),
        ..TopicRouteData::default()
    }
}

/// A fake NameServer answering `GET_ROUTEINFO_BY_TOPIC` from a fixed table (unknown topics
/// get `TOPIC_NOT_EXIST`) and `GET_BROKER_CLUSTER_INFO` with the brokers of those routes.
pub(crate) async fn fake_namesrv(
    routes: std::collections::HashMap<String, ringmq_wire::body::route::TopicRouteData>,
) -> String {
    use ringmq_wire::body::cluster::ClusterInfo;
    use ringmq_wire::{RequestCode, ResponseCode};
    let routes = Arc::new(routes);
    start_server(move |mut peer| {
        let routes = routes.clone();
        async move {
            while let Some(request) = peer.read().await {
                let response = match request.request_code() {
                    Some(RequestCode::GetRouteinfoByTopic) => {
                        match request.ext("topic").and_then(|t| routes.get(t)) {
                            Some(route) => {
                                RemotingCommand::response_to(&request, ResponseCode::Success)
                                    .with_body(ringmq_wire::json::to_vec(route))
                            }
                            None => RemotingCommand::error_response(
                                &request,
                                ResponseCode::TopicNotExist,
                                "No topic route info in name server for the topic",
                            ),
                        }
                    }
                    Some(RequestCode::GetBrokerClusterInfo) => {
                        let mut info = ClusterInfo::default();
                        for broker in routes.values().flat_map(|r| r.broker_datas.iter()) {
                            info.cluster_addr_table
                                .entry(broker.cluster.clone())
                                .or_default()
                                .insert(broker.broker_name.clone());
                            info.broker_addr_table
                                .insert(broker.broker_name.clone(), broker.clone());
                        }
                        RemotingCommand::response_to(&request, ResponseCode::Success)
                            .with_body(ringmq_wire::json::to_vec(&info))
                    }
                    _ => RemotingCommand::error_response(
                        &request,
                        ResponseCode::RequestCodeNotSupported,
                        "fake NameServer",
                    ),
                };
                peer.write(&response).await;
            }
        }
    })
    .await
}

/// A fake broker: every request is reported on the returned channel and answered by
/// `answer` (no answer for oneway requests).
pub(crate) async fn fake_broker<F>(
    answer: F,
) -> (String, tokio::sync::mpsc::Receiver<RemotingCommand>)
where
    F: Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static,
{
    let (seen_tx, seen_rx) = tokio::sync::mpsc::channel(1024);
    let answer = Arc::new(answer);
    let addr = start_server(move |mut peer| {
        let answer = answer.clone();
        let seen_tx = seen_tx.clone();
        async move {
            while let Some(request) = peer.read().await {
                let response = answer(&request);
                let oneway = request.is_oneway();
                let _ = seen_tx.try_send(request);
                if !oneway {
                    peer.write(&response).await;
                }
            }
        }
    })
    .await;
    (addr, seen_rx)
}
pub(crate) mod mini_broker;
