//! The library API used by `ringmq-broker standalone`: a NameServer on its own thread, and
//! one on the caller's tokio runtime; both bind port 0 and shut down cleanly.

mod common;

use common::{Client, kv_path, master, route};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::SerializeType;

fn config(kv: std::path::PathBuf) -> NameServerConfig {
    NameServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        kv_config_path: kv,
        ..NameServerConfig::default()
    }
}

#[test]
fn background_name_server_serves_and_stops() {
    let (_dir, kv) = kv_path();
    let server = NameServer::start_in_background(config(kv)).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let mut client = Client::connect(addr);
    master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register(&mut client);
    assert!(route(&mut client, "T", SerializeType::Json).is_ok());
    server.shutdown();
    assert!(client.is_closed_by_server());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_server_on_the_callers_runtime() {
    let (_dir, kv) = kv_path();
    let server = NameServer::start(config(kv)).await.unwrap();
    let addr = server.local_addr();
    let client = tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(addr);
        master("broker-a", "127.0.0.1:10911", &[("T", 4), ("U", 1)]).register(&mut client);
        for _ in 0..3 {
            assert!(route(&mut client, "T", SerializeType::Json).is_ok());
        }
        assert!(route(&mut client, "Absent", SerializeType::Json).is_err());
        client
    })
    .await
    .unwrap();
    assert_eq!(server.stats().topics, 2);
    let stats = server.stats();
    assert_eq!(stats.live_brokers, 1);
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.route_queries, 4);
    assert_eq!(
        stats.route_cache_hits, 2,
        "the 2nd and 3rd query of T hit the cache"
    );
    assert_eq!(stats.error_responses, 1);
    assert_eq!(stats.connections_open, 1);
    drop(client);
    server.shutdown().await;

    let (_dir2, kv2) = kv_path();
    let mut bad = config(kv2);
    bad.scan_interval_ms = 0;
    assert!(NameServer::start(bad).await.is_err());
}

#[test]
fn name_servers_side_by_side_know_nothing_of_each_other() {
    let (_dir1, kv1) = kv_path();
    let (_dir2, kv2) = kv_path();
    let first = NameServer::start_in_background(config(kv1)).unwrap();
    let second = NameServer::start_in_background(config(kv2)).unwrap();
    let mut to_first = Client::connect(first.local_addr());
    let mut to_second = Client::connect(second.local_addr());
    // A broker registers with every NameServer; one that registered with only the first is
    // unknown to the second.
    master("broker-a", "127.0.0.1:10911", &[("Both", 4)]).register(&mut to_first);
    master("broker-a", "127.0.0.1:10911", &[("Both", 4)]).register(&mut to_second);
    master("broker-b", "127.0.0.1:20911", &[("FirstOnly", 4)]).register(&mut to_first);
    assert!(route(&mut to_first, "FirstOnly", SerializeType::Json).is_ok());
    assert!(route(&mut to_second, "FirstOnly", SerializeType::Json).is_err());
    assert!(route(&mut to_second, "Both", SerializeType::Json).is_ok());
    // Stopping one leaves the other serving.
    first.shutdown();
    assert!(route(&mut to_second, "Both", SerializeType::RocketMq).is_ok());
}
