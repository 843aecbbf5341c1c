//! Unit tests of the route tables.

use super::*;
use ringmq_wire::body::topic::sys_flag;

const EXPIRY: Duration = Duration::from_secs(120);

fn registration(name: &str, id: i64, addr: &str, topics: &[(&str, i32)]) -> Registration {
    let mut wrapper = TopicConfigSerializeWrapper::default();
    wrapper.data_version.counter = 1;
    for (topic, queues) in topics {
        wrapper
            .topic_config_table
            .insert((*topic).into(), TopicConfig::new(*topic, *queues));
    }
    Registration {
        cluster: "C".into(),
        broker_addr: addr.into(),
        broker_name: name.into(),
        broker_id: id,
        ha_server_addr: format!("{addr}-ha"),
        timeout: None,
        enable_acting_master: Some(false),
        zone_name: None,
        topics: wrapper,
        filter_servers: Vec::new(),
        connection: 1,
    }
}

#[test]
fn route_over_two_brokers_and_slave_result() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    tables
        .register_broker(
            registration("b", 0, "h2:1", &[("T", 8)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    let slave = tables
        .register_broker(
            registration("a", 1, "h3:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    assert_eq!(slave.master_addr.as_deref(), Some("h1:1"));
    assert_eq!(slave.ha_server_addr.as_deref(), Some("h1:1-ha"));

    let route = tables.route("T").unwrap();
    assert_eq!(route.queue_datas.len(), 2);
    assert_eq!(route.broker_datas.len(), 2);
    assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    assert_eq!(route.queue_datas[1].write_queue_nums, 8);
    assert!(tables.route("U").is_none());
    assert_eq!(tables.topics_of_cluster("C").topic_list.len(), 1);
    assert!(tables.topics_of_cluster("D").topic_list.is_empty());
    let system = tables.system_topics();
    assert!(system.topic_list.contains("C") && system.topic_list.contains("a"));
    assert!(system.broker_addr.is_some());
}

#[test]
fn expiry_and_connection_close_drop_brokers() {
    let mut tables = RouteTables::new();
    let start = Instant::now();
    let mut short = registration("a", 0, "h1:1", &[("T", 4)]);
    short.timeout = Some(Duration::from_secs(10));
    tables.register_broker(short, start, EXPIRY, false).unwrap();
    let mut other = registration("b", 0, "h2:1", &[("T", 4)]);
    other.connection = 2;
    tables.register_broker(other, start, EXPIRY, false).unwrap();

    assert_eq!(tables.expire_brokers(start + Duration::from_secs(5)), 0);
    assert!(tables.heartbeat("C", "h1:1", start + Duration::from_secs(5)));
    assert_eq!(tables.expire_brokers(start + Duration::from_secs(14)), 0);
    assert_eq!(tables.expire_brokers(start + Duration::from_secs(16)), 1);
    assert_eq!(tables.route("T").unwrap().broker_datas.len(), 1);
    assert_eq!(tables.on_connection_closed(2), 1);
    assert!(tables.route("T").is_none());
    assert_eq!(tables.topic_count(), 0);
    assert!(tables.cluster_info().cluster_addr_table.is_empty());
}

#[test]
fn topic_tables_change_only_with_a_new_data_version() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    // Same data version, different topics: tables untouched (RocketMQ's rule).
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4), ("U", 2)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    assert!(tables.route("U").is_none());
    let mut newer = registration("a", 0, "h1:1", &[("U", 2)]);
    newer.topics.data_version.counter = 2;
    tables.register_broker(newer, now, EXPIRY, true).unwrap();
    assert!(tables.route("U").is_some());
    assert!(
        tables.route("T").is_none(),
        "unreported topic dropped when asked"
    );
    let (changed, stored) = tables.query_data_version(
        "C",
        "h1:1",
        &DataVersion {
            counter: 2,
            ..DataVersion::default()
        },
        now,
    );
    assert!(!changed);
    assert_eq!(stored.map(|v| v.counter), Some(2));
}

#[test]
fn write_perm_and_topic_admin() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4), ("U", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    assert_eq!(tables.set_write_perm("a", false), 2);
    assert_eq!(tables.route("T").unwrap().queue_datas[0].perm, perm::READ);
    assert_eq!(tables.set_write_perm("a", true), 2);
    assert_eq!(
        tables.route("T").unwrap().queue_datas[0].perm,
        perm::READ_WRITE
    );
    assert_eq!(tables.set_write_perm("zzz", false), 0);

    assert!(tables.delete_topic("T", Some("C")));
    assert!(tables.route("T").is_none());
    assert!(!tables.delete_topic("U", Some("other")));
    assert!(tables.delete_topic("U", None));
    let queue = QueueData {
        broker_name: "a".into(),
        perm: 6,
        read_queue_nums: 1,
        topic_sys_flag: sys_flag::UNIT,
        write_queue_nums: 1,
    };
    tables
        .register_topic("V", std::slice::from_ref(&queue))
        .unwrap();
    assert_eq!(tables.unit_topics(UnitFilter::Unit).topic_list.len(), 1);
    assert!(
        tables
            .unit_topics(UnitFilter::HasUnitSub)
            .topic_list
            .is_empty()
    );
    let unknown = QueueData {
        broker_name: "nope".into(),
        ..queue
    };
    assert_eq!(
        tables.register_topic("W", &[unknown]),
        Err(RegisterTopicError::UnknownBroker("nope".into()))
    );
}

#[test]
fn stale_registration_for_a_taken_id_is_refused() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    let mut holder = registration("a", 0, "h1:1", &[("T", 4)]);
    holder.topics.data_version.state_version = 5;
    tables.register_broker(holder, now, EXPIRY, false).unwrap();
    let late = registration("a", 0, "h9:1", &[("T", 4)]);
    assert!(matches!(
        tables.register_broker(late, now, EXPIRY, false),
        Err(RegistrationError::StaleRegistration { .. })
    ));
}

#[test]
fn slave_becoming_master_keeps_one_id_per_address() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    tables
        .register_broker(
            registration("a", 1, "h1:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    let group = &tables.cluster_info().broker_addr_table["a"];
    assert_eq!(group.broker_addrs.len(), 1);
    assert_eq!(group.master_addr(), Some("h1:1"));
}

#[test]
fn filter_servers_appear_in_routes_until_the_broker_leaves() {
    let mut tables = RouteTables::new();
    let now = Instant::now();
    let mut reg = registration("a", 0, "h1:1", &[("T", 4)]);
    reg.filter_servers = vec!["h1:3000".into()];
    tables.register_broker(reg, now, EXPIRY, false).unwrap();
    let route = tables.route("T").unwrap();
    assert_eq!(
        route.filter_server_table["h1:1"],
        vec!["h1:3000".to_string()]
    );
    // A later registration without filter servers clears them.
    tables
        .register_broker(
            registration("a", 0, "h1:1", &[("T", 4)]),
            now,
            EXPIRY,
            false,
        )
        .unwrap();
    assert!(tables.route("T").unwrap().filter_server_table.is_empty());
}
