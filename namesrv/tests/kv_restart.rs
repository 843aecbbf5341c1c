//! The KV store answers PUT/GET/DELETE/LIST, survives a restart (file persisted), and feeds
//! `orderTopicConf` of routes when order messages are enabled.

mod common;

use common::{Server, kv_path, master, request, route};
use ringmq_wire::body::kv::KvTable;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::GetKvConfigResponseHeader;
use ringmq_wire::{RequestCode, ResponseCode, SerializeType};

#[test]
fn kv_round_trip_survives_restart() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut client = server.connect();
    let put = |ns: &str, key: &str, value: &str, st| {
        request(
            RequestCode::PutKvConfig,
            st,
            &[("namespace", ns), ("key", key), ("value", value)],
        )
    };
    assert_eq!(
        client
            .call(&put("ns1", "k1", "v1", SerializeType::Json))
            .code,
        0
    );
    assert_eq!(
        client
            .call(&put("ns1", "k2", "v2", SerializeType::RocketMq))
            .code,
        0
    );
    assert_eq!(
        client
            .call(&put(
                "ORDER_TOPIC_CONFIG",
                "Ordered",
                "broker-a:4",
                SerializeType::Json
            ))
            .code,
        0
    );
    let delete = request(
        RequestCode::DeleteKvConfig,
        SerializeType::Json,
        &[("namespace", "ns1"), ("key", "k2")],
    );
    assert_eq!(client.call(&delete).code, 0);
    drop(client);
    assert_eq!(server.terminate().code(), Some(0), "clean exit on SIGTERM");

    let server = Server::start(&kv, &["--order-message-enable"]);
    let mut client = server.connect();
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let response = client.call(&request(
            RequestCode::GetKvConfig,
            serialize_type,
            &[("namespace", "ns1"), ("key", "k1")],
        ));
        assert_eq!(response.code, ResponseCode::Success.as_i32());
        assert_eq!(
            GetKvConfigResponseHeader::decode(&response)
                .unwrap()
                .value
                .as_deref(),
            Some("v1")
        );
    }
    let gone = client.call(&request(
        RequestCode::GetKvConfig,
        SerializeType::Json,
        &[("namespace", "ns1"), ("key", "k2")],
    ));
    assert_eq!(gone.code, ResponseCode::QueryNotFound.as_i32());
    let list = client.call(&request(
        RequestCode::GetKvlistByNamespace,
        SerializeType::Json,
        &[("namespace", "ns1")],
    ));
    let table: KvTable = ringmq_wire::json::parse("kv table", &list.body).unwrap();
    assert_eq!(table.table.len(), 1);
    assert_eq!(table.table["k1"], "v1");
    let empty = client.call(&request(
        RequestCode::GetKvlistByNamespace,
        SerializeType::Json,
        &[("namespace", "none")],
    ));
    assert_eq!(empty.code, ResponseCode::QueryNotFound.as_i32());

    // Order topic config reaches routes and the registration answer.
    let mut broker = server.connect();
    let response = master("broker-a", "127.0.0.1:10911", &[("Ordered", 4)]).register(&mut broker);
    let order: KvTable = ringmq_wire::json::parse("kv table", &response.body).unwrap();
    assert_eq!(order.table["Ordered"], "broker-a:4");
    let route = route(&mut client, "Ordered", SerializeType::Json).unwrap();
    assert_eq!(route.order_topic_conf.as_deref(), Some("broker-a:4"));
}
