//! Brokers register (JSON and binary headers, plain and compressed bodies, master and
//! slave) and clients read routes, the cluster map and topic lists, as stock clients and
//! mqadmin do.

mod common;

use common::{Broker, Server, kv_path, master, request, route};
use ringmq_wire::body::cluster::ClusterInfo;
use ringmq_wire::body::register::DataVersion;
use ringmq_wire::body::route::QueueData;
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::topic::TopicList;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{QueryDataVersionResponseHeader, RegisterBrokerResponseHeader};
use ringmq_wire::json::{parse, to_vec};
use ringmq_wire::{RequestCode, ResponseCode, SerializeType};

const GOLDEN_ROUTE: &str = include_str!("golden/route_two_brokers.json");

#[test]
fn route_of_a_topic_spread_over_two_brokers() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut broker_a = server.connect();
    let mut broker_b = server.connect();
    let mut client = server.connect();

    let a_topics = [("TopicTest", 8), ("OnlyA", 2)];
    master("broker-a", "127.0.0.1:10911", &a_topics).register(&mut broker_a);
    let b = Broker {
        serialize_type: SerializeType::RocketMq,
        compressed: true,
        ..master("broker-b", "127.0.0.1:20911", &[("TopicTest", 4)])
    };
    b.register(&mut broker_b);
    // A slave of broker-a learns where its master is.
    let slave = Broker {
        id: 1,
        ..master("broker-a", "127.0.0.1:10921", &a_topics)
    };
    let response = slave.register(&mut broker_a);
    let header = RegisterBrokerResponseHeader::decode(&response).unwrap();
    assert_eq!(header.master_addr.as_deref(), Some("127.0.0.1:10911"));
    assert_eq!(header.ha_server_addr.as_deref(), Some("127.0.0.1:10911-ha"));

    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let response = client.call(&request(
            RequestCode::GetRouteinfoByTopic,
            serialize_type,
            &[("topic", "TopicTest")],
        ));
        assert_eq!(response.code, ResponseCode::Success.as_i32());
        assert_eq!(
            std::str::from_utf8(&response.body).unwrap(),
            GOLDEN_ROUTE.trim_end(),
            "route JSON matches the golden file"
        );
    }

    let missing = route(&mut client, "NoSuchTopic", SerializeType::Json).unwrap_err();
    assert_eq!(missing.code, ResponseCode::TopicNotExist.as_i32());
    assert!(
        missing
            .remark
            .unwrap()
            .starts_with("No topic route info in name server for the topic: NoSuchTopic")
    );

    let response = client.call(&request(
        RequestCode::GetBrokerClusterInfo,
        SerializeType::Json,
        &[],
    ));
    let info: ClusterInfo = parse("cluster info", &response.body).unwrap();
    assert_eq!(info.cluster_addr_table["DefaultCluster"].len(), 2);
    assert_eq!(info.broker_addr_table["broker-a"].broker_addrs.len(), 2);

    let all: TopicList = parse(
        "topic list",
        &client
            .call(&request(
                RequestCode::GetAllTopicListFromNameserver,
                SerializeType::RocketMq,
                &[],
            ))
            .body,
    )
    .unwrap();
    assert_eq!(
        all.topic_list.iter().collect::<Vec<_>>(),
        ["OnlyA", "TopicTest"]
    );
    let by_cluster: TopicList = parse(
        "topic list",
        &client
            .call(&request(
                RequestCode::GetTopicsByCluster,
                SerializeType::Json,
                &[("cluster", "DefaultCluster")],
            ))
            .body,
    )
    .unwrap();
    assert_eq!(by_cluster.topic_list.len(), 2);
    let system: TopicList = parse(
        "topic list",
        &client
            .call(&request(
                RequestCode::GetSystemTopicListFromNs,
                SerializeType::Json,
                &[],
            ))
            .body,
    )
    .unwrap();
    assert!(system.topic_list.contains("DefaultCluster") && system.topic_list.contains("broker-b"));
    assert!(system.broker_addr.is_some());
    let unit: TopicList = parse(
        "topic list",
        &client
            .call(&request(
                RequestCode::GetUnitTopicList,
                SerializeType::Json,
                &[],
            ))
            .body,
    )
    .unwrap();
    assert!(unit.topic_list.is_empty());
}

#[test]
fn data_version_register_topic_delete_topic_and_unregister() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut broker = server.connect();
    let mut client = server.connect();
    let a = master("broker-a", "127.0.0.1:10911", &[("T1", 4)]);
    a.register(&mut broker);

    // QUERY_DATA_VERSION: same version → unchanged; the stored version comes back.
    let fields = [
        ("brokerName", "broker-a"),
        ("brokerAddr", "127.0.0.1:10911"),
        ("clusterName", "DefaultCluster"),
        ("brokerId", "0"),
    ];
    let mut query = request(RequestCode::QueryDataVersion, SerializeType::Json, &fields);
    let same = DataVersion {
        counter: 1,
        state_version: 0,
        timestamp: 1_700_000_000_000,
    };
    query.body = to_vec(&same).into();
    let response = broker.call(&query);
    assert!(
        !QueryDataVersionResponseHeader::decode(&response)
            .unwrap()
            .changed
    );
    assert_eq!(parse::<DataVersion>("dv", &response.body).unwrap(), same);
    let mut query = request(
        RequestCode::QueryDataVersion,
        SerializeType::RocketMq,
        &fields,
    );
    query.body = to_vec(&DataVersion { counter: 2, ..same }).into();
    assert!(
        QueryDataVersionResponseHeader::decode(&broker.call(&query))
            .unwrap()
            .changed
    );

    // BROKER_HEARTBEAT answers success.
    let heartbeat = request(
        RequestCode::BrokerHeartbeat,
        SerializeType::Json,
        &[
            ("clusterName", "DefaultCluster"),
            ("brokerAddr", "127.0.0.1:10911"),
            ("brokerName", "broker-a"),
            ("brokerId", "0"),
        ],
    );
    assert_eq!(broker.call(&heartbeat).code, ResponseCode::Success.as_i32());

    // REGISTER_TOPIC_IN_NAMESRV adds a topic on a registered broker, refuses unknown ones.
    let mut body = TopicRouteData::default();
    body.queue_datas.push(QueueData {
        broker_name: "broker-a".into(),
        perm: 6,
        read_queue_nums: 2,
        topic_sys_flag: 0,
        write_queue_nums: 2,
    });
    let mut register = request(
        RequestCode::RegisterTopicInNamesrv,
        SerializeType::Json,
        &[("topic", "T2")],
    );
    register.body = to_vec(&body).into();
    assert_eq!(client.call(&register).code, ResponseCode::Success.as_i32());
    assert_eq!(
        route(&mut client, "T2", SerializeType::Json)
            .unwrap()
            .queue_datas[0]
            .read_queue_nums,
        2
    );
    body.queue_datas[0].broker_name = "nobody".into();
    let mut register = request(
        RequestCode::RegisterTopicInNamesrv,
        SerializeType::Json,
        &[("topic", "T3")],
    );
    register.body = to_vec(&body).into();
    let refused = client.call(&register);
    assert_eq!(refused.code, ResponseCode::SystemError.as_i32());
    assert!(refused.remark.unwrap().contains("nobody"));

    // DELETE_TOPIC_IN_NAMESRV, for another cluster (no-op) and then for all.
    let delete = request(
        RequestCode::DeleteTopicInNamesrv,
        SerializeType::Json,
        &[("topic", "T1"), ("clusterName", "Other")],
    );
    assert_eq!(client.call(&delete).code, ResponseCode::Success.as_i32());
    assert!(route(&mut client, "T1", SerializeType::Json).is_ok());
    let delete = request(
        RequestCode::DeleteTopicInNamesrv,
        SerializeType::RocketMq,
        &[("topic", "T1")],
    );
    assert_eq!(client.call(&delete).code, ResponseCode::Success.as_i32());
    assert!(route(&mut client, "T1", SerializeType::Json).is_err());

    // UNREGISTER_BROKER drops the group and its topics.
    let unregister = request(RequestCode::UnregisterBroker, SerializeType::Json, &fields);
    assert_eq!(
        broker.call(&unregister).code,
        ResponseCode::Success.as_i32()
    );
    assert!(route(&mut client, "T2", SerializeType::Json).is_err());
}
