//! The client against a real in-process NameServer: a fake broker registers a topic, then
//! the client's NameServer client, route cache and admin read it back, with failover from a
//! dead NameServer address to the live one.

use std::collections::BTreeMap;
use std::time::Duration;

use ringmq_client::admin::Admin;
use ringmq_client::instance::{ClientConfig, ClientInstance};
use ringmq_client::{ClientError, MessageQueue, RemotingClient, RemotingConfig};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::body::register::{RegisterBrokerBody, TopicConfigSerializeWrapper};
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::RegisterBrokerRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode};

const WAIT: Duration = Duration::from_secs(10);

/// Registers broker `name` at `addr` with `topics` (4 queues each) on `namesrv`. The
/// returned client holds the registering connection: the NameServer drops a broker whose
/// connection closes.
async fn register_fake_broker(
    namesrv: &str,
    name: &str,
    addr: &str,
    topics: &[&str],
) -> RemotingClient {
    let mut table = BTreeMap::new();
    for topic in topics {
        table.insert((*topic).to_owned(), TopicConfig::new(*topic, 4));
    }
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
            topic_config_table: table,
            ..TopicConfigSerializeWrapper::default()
        },
        ..RegisterBrokerBody::default()
    };
    let mut request = RemotingCommand::request(RequestCode::RegisterBroker);
    RegisterBrokerRequestHeader {
        broker_name: name.to_owned(),
        broker_addr: addr.to_owned(),
        cluster_name: "TestCluster".to_owned(),
        ha_server_addr: addr.to_owned(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: false,
        body_crc32: None,
    }
    .encode_into(&mut request);
    request.body = body.encode(false).into();
    let broker = RemotingClient::new(RemotingConfig::default());
    broker
        .invoke_ok(namesrv, request, WAIT)
        .await
        .expect("broker registered");
    broker
}

#[tokio::test]
async fn route_from_a_real_nameserver_with_failover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = NameServer::start(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NameServerConfig::default()
    })
    .await
    .expect("NameServer started");
    let live = server.local_addr().to_string();
    let _broker = register_fake_broker(&live, "broker-a", "127.0.0.1:10911", &["RouteTopic"]).await;

    // A dead address first: the client must fail over to the live NameServer.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let mut config = ClientConfig::new(format!("{dead};{live}"));
    config.api_timeout = WAIT;
    let instance = ClientInstance::new(config).expect("instance");

    let route = instance.routes().get("RouteTopic").await.expect("route");
    assert_eq!(route.write_queues.len(), 4);
    assert_eq!(
        route.master_addr("broker-a").expect("master"),
        "127.0.0.1:10911"
    );
    assert_eq!(
        route.read_queues[3],
        MessageQueue::new("RouteTopic", "broker-a", 3)
    );

    let admin = Admin::new(instance.clone());
    let info = admin.cluster_info().await.expect("cluster info");
    assert!(info.cluster_addr_table["TestCluster"].contains("broker-a"));
    assert_eq!(
        admin.cluster_masters("TestCluster").await.expect("masters"),
        vec![("broker-a".to_owned(), "127.0.0.1:10911".to_owned())]
    );
    assert!(
        admin
            .topic_list()
            .await
            .expect("topics")
            .contains("RouteTopic")
    );

    let missing = instance
        .routes()
        .get("NoSuchTopic")
        .await
        .expect_err("unknown");
    assert!(matches!(missing, ClientError::NoRoute { .. }), "{missing}");

    instance.shutdown();
    server.shutdown().await;
}
