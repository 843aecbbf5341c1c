//! `WIPE_WRITE_PERM_OF_BROKER` and `ADD_WRITE_PERM_OF_BROKER` change the permission clients
//! see in routes, for that broker's queues only.

mod common;

use common::{Server, kv_path, master, request, route};
use ringmq_wire::body::topic::perm;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{
    AddWritePermOfBrokerResponseHeader, WipeWritePermOfBrokerResponseHeader,
};
use ringmq_wire::{RequestCode, SerializeType};

fn perm_of(route: &ringmq_wire::body::route::TopicRouteData, broker: &str) -> i32 {
    route
        .queue_datas
        .iter()
        .find(|queue| queue.broker_name == broker)
        .map(|queue| queue.perm)
        .expect("broker in route")
}

#[test]
fn wipe_and_add_write_permission() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut brokers = server.connect();
    let mut admin = server.connect();
    master("broker-a", "127.0.0.1:10911", &[("T1", 4), ("T2", 4)]).register(&mut brokers);
    master("broker-b", "127.0.0.1:20911", &[("T1", 4)]).register(&mut brokers);

    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        // Read (and so cache) the routes first: the change must still show.
        for topic in ["T1", "T2"] {
            let before = route(&mut admin, topic, serialize_type).unwrap();
            assert_eq!(perm_of(&before, "broker-a"), perm::READ_WRITE);
        }
        let response = admin.call(&request(
            RequestCode::WipeWritePermOfBroker,
            serialize_type,
            &[("brokerName", "broker-a")],
        ));
        let header = WipeWritePermOfBrokerResponseHeader::decode(&response).unwrap();
        assert_eq!(header.wipe_topic_count, 2);
        let wiped = route(&mut admin, "T1", serialize_type).unwrap();
        assert_eq!(perm_of(&wiped, "broker-a"), perm::READ);
        assert_eq!(perm_of(&wiped, "broker-b"), perm::READ_WRITE);

        let response = admin.call(&request(
            RequestCode::AddWritePermOfBroker,
            serialize_type,
            &[("brokerName", "broker-a")],
        ));
        let header = AddWritePermOfBrokerResponseHeader::decode(&response).unwrap();
        assert_eq!(header.add_topic_count, 2);
        let restored = route(&mut admin, "T2", serialize_type).unwrap();
        assert_eq!(perm_of(&restored, "broker-a"), perm::READ_WRITE);
    }
}
