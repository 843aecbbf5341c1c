//! Brokers that go silent are dropped by the scan; brokers whose connection closes are
//! dropped at once; heartbeats keep a broker alive.

mod common;

use common::{Broker, Server, eventually, kv_path, master, request, route};
use ringmq_wire::{RequestCode, ResponseCode, SerializeType};

#[test]
fn silent_broker_expires_and_closed_connection_drops_at_once() {
    let (_dir, kv) = kv_path();
    // Default expiry far beyond the test; one broker announces a short timeout of its own.
    let server = Server::start(&kv, &["--scan-interval-ms", "100"]);
    let mut client = server.connect();

    let mut silent = server.connect();
    Broker {
        timeout_ms: Some(800),
        ..master("broker-silent", "127.0.0.1:30911", &[("Expiring", 4)])
    }
    .register(&mut silent);
    let mut alive = server.connect();
    master("broker-alive", "127.0.0.1:31911", &[("Staying", 4)]).register(&mut alive);
    let mut leaving = server.connect();
    master("broker-leaving", "127.0.0.1:32911", &[("Leaving", 4)]).register(&mut leaving);

    assert!(route(&mut client, "Expiring", SerializeType::Json).is_ok());
    // The silent broker keeps its connection open but sends nothing: the scan drops it.
    eventually("silent broker expires", || {
        route(&mut client, "Expiring", SerializeType::Json)
            .is_err_and(|r| r.code == ResponseCode::TopicNotExist.as_i32())
    });
    assert!(route(&mut client, "Staying", SerializeType::Json).is_ok());

    // Closing a broker's connection drops it without waiting for the expiry.
    drop(leaving);
    eventually("closed broker dropped", || {
        route(&mut client, "Leaving", SerializeType::RocketMq).is_err()
    });
    assert!(route(&mut client, "Staying", SerializeType::Json).is_ok());
}

#[test]
fn heartbeats_keep_a_broker_registered() {
    let (_dir, kv) = kv_path();
    let server = Server::start(
        &kv,
        &["--scan-interval-ms", "50", "--broker-expiry-ms", "4000"],
    );
    let mut client = server.connect();
    let mut broker = server.connect();
    master("broker-a", "127.0.0.1:10911", &[("Kept", 2)]).register(&mut broker);
    let heartbeat = || {
        let mut command = request(
            RequestCode::BrokerHeartbeat,
            SerializeType::Json,
            &[
                ("clusterName", "DefaultCluster"),
                ("brokerAddr", "127.0.0.1:10911"),
                ("brokerName", "broker-a"),
                ("brokerId", "0"),
            ],
        );
        command.set_oneway();
        command
    };
    // Oneway heartbeats for well past the expiry; the route stays.
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(4500) {
        broker.send(&heartbeat());
        assert!(route(&mut client, "Kept", SerializeType::Json).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Then silence: it expires.
    eventually("broker expires once heartbeats stop", || {
        route(&mut client, "Kept", SerializeType::Json).is_err()
    });
}
