//! The formats against hand-written expected strings (mqadmin's printf patterns, spec §C.3.3).

use std::collections::BTreeMap;

use ringmq_client::MessageQueue;
use ringmq_wire::LanguageCode;
use ringmq_wire::body::consumer::{Connection, ConsumerConnection};
use ringmq_wire::body::heartbeat::SubscriptionData;
use ringmq_wire::body::route::{BrokerData, QueueData, TopicRouteData};
use ringmq_wire::body::stats::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};

use super::*;

#[test]
fn human_time_is_mqadmin_layout_in_utc() {
    assert_eq!(human_time(0), "1970-01-01 00:00:00,000");
    assert_eq!(human_time(1_700_000_000_123), "2023-11-14 22:13:20,123");
    assert_eq!(human_time(951_782_400_000), "2000-02-29 00:00:00,000");
}

#[test]
fn java_map_like_abstract_map_to_string() {
    let mut m = BTreeMap::new();
    assert_eq!(java_map(&m), "{}");
    m.insert(0i64, "127.0.0.1:10911");
    m.insert(1, "127.0.0.1:10921");
    assert_eq!(java_map(&m), "{0=127.0.0.1:10911, 1=127.0.0.1:10921}");
}

#[test]
fn topic_list_plain_and_by_cluster() {
    assert_eq!(topic_list(&["A".into(), "B".into()]), "A\nB\n");
    let rows = vec![("DefaultCluster".to_owned(), "T".to_owned(), String::new())];
    let expected = format!(
        "#Cluster Name         #Topic{}  #Consumer Group{}\n\
         DefaultCluster        T{}  {}\n",
        " ".repeat(42),
        " ".repeat(33),
        " ".repeat(47),
        " ".repeat(48)
    );
    assert_eq!(topic_list_by_cluster(&rows), expected);
}

fn route() -> TopicRouteData {
    TopicRouteData {
        broker_datas: vec![BrokerData {
            broker_addrs: BTreeMap::from([(0, "127.0.0.1:10911".to_owned())]),
            broker_name: "broker-a".into(),
            cluster: "DefaultCluster".into(),
            ..BrokerData::default()
        }],
        queue_datas: vec![QueueData {
            broker_name: "broker-a".into(),
            perm: 6,
            read_queue_nums: 4,
            write_queue_nums: 4,
            topic_sys_flag: 0,
        }],
        ..TopicRouteData::default()
    }
}

#[test]
fn topic_route_table_rows_and_total() {
    let text = topic_route_table(&route());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        format!(
            "{:<45} {:<32} {:<50} {:<10} {:<11} {:<5}",
            "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm"
        )
    );
    assert_eq!(
        lines[1],
        "DefaultCluster                                broker-a                         \
         {0=127.0.0.1:10911}                                4          4           6    "
    );
    assert!(lines[2].starts_with("Total:"), "{}", lines[2]);
    assert!(lines[2].contains(" 4          4 "), "{}", lines[2]);
}

#[test]
fn topic_status_table_rows() {
    let mut stats = TopicStatsTable::default();
    stats.offset_table.insert(
        MessageQueue::new("T", "broker-a", 0),
        TopicOffset {
            last_update_timestamp: 1_700_000_000_123,
            max_offset: 10,
            min_offset: 0,
        },
    );
    let expected = "#Broker Name                      #QID  #Min Offset           #Max Offset             #Last Updated\n\
                    broker-a                          0     0                     10                      2023-11-14 22:13:20,123\n\
                    Topic Put TPS: 0.0\n";
    assert_eq!(topic_status_table(&stats), expected);
}

#[test]
fn consumer_progress_table_with_totals() {
    let mut stats = ConsumeStats {
        consume_tps: 1.5,
        ..ConsumeStats::default()
    };
    stats.offset_table.insert(
        MessageQueue::new("T", "broker-a", 1),
        OffsetWrapper {
            broker_offset: 10,
            consumer_offset: 7,
            last_timestamp: 0,
            pull_offset: 9,
        },
    );
    let text = consumer_progress_table(&stats);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}{}",
            "#Topic",
            "#Broker Name",
            "#QID",
            "#Broker Offset",
            "#Consumer Offset",
            "#Diff",
            "#Inflight",
            "#LastTime"
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}N/A",
            "T", "broker-a", 1, 10, 7, 3, 2
        )
    );
    assert_eq!(
        &lines[2..],
        [
            "",
            "Consume TPS: 1.50",
            "Consume Diff Total: 3",
            "Consume Inflight Total: 2"
        ]
    );
}

#[test]
fn cluster_list_row_from_runtime_info() {
    let runtime = BTreeMap::from(
        [
            ("brokerVersionDesc", "V5_3_2"),
            ("putTps", "12.5 11.0 10.0"),
            ("getTransferredTps", "3.25 3.0 3.0"),
            ("sendThreadPoolQueueSize", "2"),
            ("sendThreadPoolQueueHeadWaitTimeMills", "1"),
            ("pullThreadPoolQueueSize", "0"),
            ("pullThreadPoolQueueHeadWaitTimeMills", "0"),
            ("pageCacheLockTimeMills", "0"),
            ("earliestMessageTimeStamp", "0"),
            ("commitLogDiskRatio", "0.25"),
            ("brokerActive", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let rows = [ClusterRow {
        cluster: "DefaultCluster".into(),
        broker_name: "broker-a".into(),
        broker_id: 0,
        addr: "127.0.0.1:10911".into(),
        runtime,
    }];
    let text = cluster_list_table(&rows, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("#Cluster Name           #Broker Name            #BID  #Addr"));
    let expected = format!(
        "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:<11}  {:<12}  {:<8}  {:<10}",
        "DefaultCluster",
        "broker-a",
        0,
        "127.0.0.1:10911",
        "V5_3_2",
        "    12.50(2,1ms)",
        "     3.25(0,0ms)",
        "0-0(0.0w, 0.0, 0.0)",
        0,
        "0.00",
        "0.2500",
        "true"
    );
    assert_eq!(lines[1], expected);

    // A broker that did not answer still gets its row, with zeros.
    let silent = [ClusterRow {
        runtime: BTreeMap::new(),
        ..rows[0].clone()
    }];
    let text = cluster_list_table(&silent, 0);
    assert!(
        text.lines()
            .nth(1)
            .expect("row")
            .contains("     0.00(0,0ms)")
    );
    assert!(
        cluster_more_stats_table(&silent)
            .lines()
            .nth(1)
            .expect("row")
            .starts_with("DefaultCluster")
    );
}

#[test]
fn broker_status_and_config_lines() {
    let table = BTreeMap::from([("putTps".to_owned(), "1.0".to_owned())]);
    assert_eq!(
        broker_status(None, &table),
        format!("{:<32}: 1.0\n", "putTps")
    );
    assert_eq!(
        broker_status(Some("127.0.0.1:10911"), &table),
        format!("{:<24} {:<32}: 1.0\n", "127.0.0.1:10911", "putTps")
    );
    assert_eq!(
        broker_config("127.0.0.1:10911", &table),
        format!(
            "============127.0.0.1:10911============\n{:<50}=  1.0\n",
            "putTps"
        )
    );
}

#[test]
fn update_topic_prints_topic_config_like_java() {
    let config = TopicConfig::new("T", 8);
    assert_eq!(
        topic_config(&config),
        "TopicConfig [topicName=T, readQueueNums=8, writeQueueNums=8, perm=RW-, \
         topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={}]"
    );
}

#[test]
fn consumer_connection_layout() {
    let cc = ConsumerConnection {
        connection_set: vec![Connection {
            client_addr: "127.0.0.1:50000".into(),
            client_id: "127.0.0.1@1".into(),
            language: LanguageCode::Java,
            version: 413,
        }],
        subscription_table: BTreeMap::from([(
            "T".to_owned(),
            SubscriptionData {
                topic: "T".into(),
                sub_string: "*".into(),
                ..SubscriptionData::default()
            },
        )]),
        ..ConsumerConnection::default()
    };
    let text = consumer_connection(&cc);
    let expected = format!(
        "001  {:<32} {:<22} {:<8} 413\n\nBelow is subscription:\n001  Topic: {:<40} SubExpression: *\n\n",
        "127.0.0.1@1", "127.0.0.1:50000", "JAVA", "T"
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains("\nMessageModel: CLUSTERING\n"), "{text}");
}

#[test]
fn send_result_table() {
    assert_eq!(
        send_result("broker-a", 3, "SEND_OK", "ID1"),
        format!(
            "{:<32}  {:<4}  {:<20}    #MsgId\n{:<32}  {:<4}  {:<20}    ID1\n",
            "#Broker Name", "#QID", "#Send Result", "broker-a", 3, "SEND_OK"
        )
    );
}

fn message() -> MessageExt {
    MessageExt {
        topic: "T".into(),
        broker_name: "broker-a".into(),
        queue_id: 2,
        queue_offset: 5,
        commit_log_offset: 1024,
        body: bytes::Bytes::from_static(b"hello"),
        flag: 0,
        sys_flag: 0,
        properties: BTreeMap::from([
            ("KEYS".to_owned(), "k1".to_owned()),
            ("TAGS".to_owned(), "TagA".to_owned()),
            ("UNIQ_KEY".to_owned(), "UNIQ1".to_owned()),
        ]),
        born_timestamp: 0,
        born_host: "127.0.0.1:5000".parse().expect("addr"),
        store_timestamp: 1_700_000_000_123,
        store_host: "127.0.0.1:10911".parse().expect("addr"),
        reconsume_times: 0,
        offset_msg_id: "7F00000100002A9F0000000000000400".into(),
    }
}

#[test]
fn message_detail_and_key_table() {
    let m = message();
    let detail = message_detail(&m);
    assert!(
        detail.contains(&format!("{:<20} [TagA]\n", "Tags:")),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("{:<20} [k1]\n", "Keys:")),
        "{detail}"
    );
    assert!(detail.contains(&format!(
        "{:<20} 2023-11-14 22:13:20,123\n",
        "Store Timestamp:"
    )));
    assert!(detail.ends_with(&format!("{:<20} hello\n", "Message Body:")));
    assert_eq!(
        query_by_key(std::slice::from_ref(&m)),
        format!(
            "{:<50} {:>4} {:>40}\n{:<50} {:>4} {:>40}\n",
            "#Message ID", "#QID", "#Offset", "UNIQ1", 2, 5
        )
    );
    let line = message_line(&m);
    assert!(line.starts_with("MSGID: UNIQ1 MessageExt [brokerName=broker-a, queueId=2"));
    assert!(line.ends_with(" BODY: hello\n"));
    assert_eq!(message_json(&m)["queueOffset"], 5);
}

#[test]
fn subscription_group_to_string() {
    let text =
        subscription_group(&ringmq_wire::body::subscription::SubscriptionGroupConfig::new("G"));
    assert!(text.starts_with("SubscriptionGroupConfig [groupName=G, consumeEnable=true"));
}
