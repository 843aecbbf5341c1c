//! `ringmq-broker admin`: the built binary against nothing (usage, errors), against a real
//! in-process NameServer with a fake registered broker (topicList, topicRoute, clusterList),
//! and end to end against a real in-process broker (updateTopic → sendMessage →
//! consumeMessage → consumerProgress and the query commands).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::broker::{Broker, BrokerError};
use ringmq_namesrv::{BackgroundNameServer, NameServer, NameServerConfig};
use ringmq_wire::body::register::{RegisterBrokerBody, TopicConfigSerializeWrapper};
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::RegisterBrokerRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode};

/// Generous: the machine is shared and oversubscribed.
const NETWORK_WAIT: Duration = Duration::from_secs(20);

/// Runs `ringmq-broker admin <args>` with no `NAMESRV_ADDR` in the environment.
fn admin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .arg("admin")
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ringmq-broker")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("--json prints one JSON document")
}

fn start_namesrv() -> (BackgroundNameServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = NameServer::start_in_background(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: dir.path().join("kv.json"),
        ..NameServerConfig::default()
    })
    .expect("NameServer starts");
    (server, dir)
}

/// An address nothing listens on (bound then released).
fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// Registers a fake broker `broker-a` at `broker_addr` with `topics` (4 queues each) in
/// cluster `TestCluster`. The returned connection must stay open: the NameServer drops a
/// broker whose registration connection closes.
fn register_fake_broker(namesrv: SocketAddr, broker_addr: &str, topics: &[&str]) -> TcpStream {
    let table = topics
        .iter()
        .map(|t| ((*t).to_owned(), TopicConfig::new(*t, 4)))
        .collect();
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
            topic_config_table: table,
            ..TopicConfigSerializeWrapper::default()
        },
        ..RegisterBrokerBody::default()
    };
    let mut request = RemotingCommand::request(RequestCode::RegisterBroker);
    RegisterBrokerRequestHeader {
        broker_name: "broker-a".into(),
        broker_addr: broker_addr.into(),
        cluster_name: "TestCluster".into(),
        ha_server_addr: broker_addr.into(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: false,
        body_crc32: None,
    }
    .encode_into(&mut request);
    request.body = body.encode(false).into();
    let mut stream = TcpStream::connect(namesrv).expect("connect NameServer");
    stream
        .set_read_timeout(Some(NETWORK_WAIT))
        .expect("timeout");
    stream
        .write_all(&request.encode_frame().expect("encode"))
        .expect("write");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("read length");
    let mut content = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut content).expect("read frame");
    let response = RemotingCommand::decode(content.into()).expect("decode");
    assert_eq!(
        response.code, 0,
        "registration refused: {:?}",
        response.remark
    );
    stream
}

#[test]
fn no_arguments_lists_the_commands_like_mqadmin() {
    let out = ok(&admin(&[]));
    assert!(out.starts_with("The most commonly used mqadmin commands are:\n"));
    for name in [
        "updateTopic",
        "topicList",
        "clusterList",
        "consumerProgress",
        "queryMsgByKey",
        "consumeMessage",
        "getBrokerConfig",
    ] {
        assert!(
            out.contains(&format!("   {name:<35} ")),
            "{name} missing: {out}"
        );
    }
    assert!(out.ends_with("for more information on a specific command.\n"));
}

#[test]
fn help_of_a_command_is_case_insensitive() {
    let out = ok(&admin(&["help", "TOPICROUTE"]));
    assert!(out.contains("ringmq-broker admin topicRoute"), "{out}");
    assert!(out.contains("-t, --topic"), "{out}");
    assert!(out.contains("--json"), "{out}");
    let out = ok(&admin(&["queryMsgByKey", "-h"]));
    assert!(out.contains("-k, --msgKey"), "{out}");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = admin(&["noSuchCommand"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("The sub command noSuchCommand not exist."),
        "{}",
        stderr(&out)
    );
    let out = admin(&["topicList", "-n", "hostonly"]);
    assert_eq!(out.status.code(), Some(2), "malformed -n");
    assert!(stderr(&out).contains("has no port"), "{}", stderr(&out));
    let out = admin(&["topicRoute", "-n", "127.0.0.1:9876"]);
    assert_eq!(out.status.code(), Some(2), "missing -t");
    assert!(stderr(&out).contains("--topic"), "{}", stderr(&out));
}

#[test]
fn missing_nameserver_says_how_to_fix_it() {
    let out = admin(&["topicList"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("-n host:port") && err.contains("NAMESRV_ADDR"),
        "{err}"
    );
}

#[test]
fn unreachable_nameserver_fails_with_one_line_and_status_1() {
    let dead = dead_addr();
    let out = admin(&["topicList", "-n", &dead]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("topicList: cannot reach NameServer {dead} (")),
        "{err}"
    );
    assert!(err.contains("is ringmq-namesrv or `ringmq-broker standalone` running? pass -n"));
}

#[test]
fn nameserver_commands_against_a_real_nameserver() {
    let (namesrv, _dir) = start_namesrv();
    let ns = namesrv.local_addr().to_string();
    let broker_addr = dead_addr();
    let _registration = register_fake_broker(
        namesrv.local_addr(),
        &broker_addr,
        &["AdminTopicA", "AdminTopicB"],
    );

    // topicList: plain, JSON, and via NAMESRV_ADDR.
    let out = ok(&admin(&["topicList", "-n", &ns]));
    assert!(out.lines().any(|l| l == "AdminTopicA"), "{out}");
    assert!(out.lines().any(|l| l == "AdminTopicB"), "{out}");
    let listed = json(&admin(&["topiclist", "-n", &ns, "--json"]));
    let topics = listed["topics"].as_array().expect("topics array");
    assert!(topics.iter().any(|t| t == "AdminTopicA"), "{listed}");
    let via_env = Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .args(["admin", "topicList"])
        .env("NAMESRV_ADDR", &ns)
        .output()
        .expect("run");
    assert!(ok(&via_env).contains("AdminTopicA"));
    let by_cluster = ok(&admin(&["topicList", "-n", &ns, "-c"]));
    assert!(
        by_cluster.starts_with("#Cluster Name         #Topic"),
        "{by_cluster}"
    );
    assert!(
        by_cluster
            .lines()
            .any(|l| l.starts_with("TestCluster") && l.contains("AdminTopicA")),
        "{by_cluster}"
    );

    // topicRoute: JSON by default, a table with -l.
    let route: serde_json::Value =
        serde_json::from_str(&ok(&admin(&["topicRoute", "-n", &ns, "-t", "AdminTopicA"])))
            .expect("topicRoute prints JSON");
    assert_eq!(route["brokerDatas"][0]["brokerName"], "broker-a");
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 4);
    let table = ok(&admin(&[
        "topicRoute",
        "-n",
        &ns,
        "-t",
        "AdminTopicA",
        "-l",
    ]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("#ClusterName"), "{table}");
    assert!(rows[1].starts_with("TestCluster"), "{table}");
    assert!(rows[1].contains(&format!("{{0={broker_addr}}}")), "{table}");
    assert!(rows[2].starts_with("Total:"), "{table}");

    let missing = admin(&["topicRoute", "-n", &ns, "-t", "NoSuchTopic"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("updateTopic -t NoSuchTopic"),
        "{}",
        stderr(&missing)
    );

    // clusterList: the broker is listed even though it does not answer (warning on stderr).
    let out = admin(&["clusterList", "-n", &ns]);
    let list = ok(&out);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("#Cluster Name           #Broker Name"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("TestCluster             broker-a                0     "),
        "{list}"
    );
    assert!(lines[1].contains(&broker_addr), "{list}");
    assert!(stderr(&out).contains("warning: no runtime info from broker broker-a"));
    let brokers = json(&admin(&["clusterList", "-n", &ns, "--json"]));
    assert_eq!(brokers["brokers"][0]["addr"], broker_addr.as_str());
    let unknown = admin(&["clusterList", "-n", &ns, "-c", "NoSuchCluster"]);
    assert_eq!(unknown.status.code(), Some(1));

    // A broker-side command against the fake broker: it names the broker and the fix.
    let out = admin(&["brokerStatus", "-n", &ns, "-b", &broker_addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("brokerStatus: cannot reach broker {broker_addr}")),
        "{}",
        stderr(&out)
    );

    namesrv.shutdown();
}

/// Retries `args` until it succeeds (the broker registers new topics with the NameServer
/// asynchronously), returning its stdout.
fn until_ok(args: &[&str]) -> String {
    let deadline = Instant::now() + NETWORK_WAIT;
    loop {
        let out = admin(args);
        if out.status.success() {
            return stdout(&out);
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} kept failing: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real in-process NameServer and one-shard broker, registered; `None` (test skipped) when
/// io_uring is unavailable on this machine.
struct Cluster {
    ns: String,
    broker_addr: String,
    broker_name: String,
    broker: Broker,
    namesrv: BackgroundNameServer,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let (namesrv, ns_dir) = start_namesrv();
        let ns = namesrv.local_addr().to_string();
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig::standalone();
        config.broker.base_port = 0;
        config.broker.namesrv_addrs = vec![ns.clone()];
        config.broker.shards = Some(1);
        config.store.path = data.path().to_owned();
        config.store.segment_bytes = 64 << 20;
        let broker = match Broker::start(config) {
            Ok(broker) => broker,
            Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
                eprintln!("skipping: io_uring unavailable: {error}");
                return None;
            }
            Err(error) => panic!("broker failed to start: {error}"),
        };
        let deadline = Instant::now() + NETWORK_WAIT;
        let clusters = loop {
            let out = json(&admin(&["clusterList", "-n", &ns, "--json"]));
            if out["brokers"].as_array().is_some_and(|b| !b.is_empty()) {
                break out;
            }
            assert!(Instant::now() < deadline, "broker never registered");
            std::thread::sleep(Duration::from_millis(100));
        };
        let field = |name: &str| {
            clusters["brokers"][0][name]
                .as_str()
                .expect("broker field")
                .to_owned()
        };
        Some(Cluster {
            broker_addr: field("addr"),
            broker_name: field("brokerName"),
            ns,
            broker,
            namesrv,
            _dirs: (ns_dir, data),
        })
    }

    /// Creates `topic` (2 queues) through the cluster and waits for its route.
    fn create_topic(&self, topic: &str) -> String {
        let out = ok(&admin(&[
            "updateTopic",
            "-n",
            &self.ns,
            "-c",
            "DefaultCluster",
            "-t",
            topic,
            "-r",
            "2",
            "-w",
            "2",
        ]));
        until_ok(&["topicRoute", "-n", &self.ns, "-t", topic]);
        out
    }

    fn send(&self, topic: &str, body: &str) -> serde_json::Value {
        let sent = json(&admin(&[
            "sendMessage",
            "-n",
            &self.ns,
            "-t",
            topic,
            "-p",
            body,
            "-k",
            "order-42",
            "-c",
            "TagA",
            "--json",
        ]));
        assert_eq!(sent["sendStatus"], "SEND_OK", "{sent}");
        sent
    }

    fn stop(self) {
        self.broker.shutdown().expect("clean shutdown");
        self.namesrv.shutdown();
    }
}

#[test]
fn end_to_end_against_a_real_broker() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ns = cluster.ns.clone();
    let (broker_addr, broker_name) = (cluster.broker_addr.clone(), cluster.broker_name.clone());
    let out = cluster.create_topic("AdminE2E");
    assert!(
        out.starts_with(&format!("create topic to {broker_addr} success.\n")),
        "{out}"
    );
    assert!(out.contains("TopicConfig [topicName=AdminE2E, readQueueNums=2, writeQueueNums=2"));
    let out = ok(&admin(&[
        "updateSubGroup",
        "-n",
        &ns,
        "-b",
        &broker_addr,
        "-g",
        "AdminGroup",
    ]));
    assert!(out.starts_with(&format!(
        "create subscription group to {broker_addr} success.\n"
    )));

    let sent = cluster.send("AdminE2E", "hello admin");
    assert_eq!(sent["brokerName"], broker_name.as_str());
    let offset_msg_id = sent["offsetMsgId"].as_str().expect("offset id").to_owned();

    let out = ok(&admin(&["queryMsgById", "-n", &ns, "-i", &offset_msg_id]));
    assert!(out.contains("hello admin"), "{out}");
    let found = json(&admin(&[
        "queryMsgByKey",
        "-n",
        &ns,
        "-t",
        "AdminE2E",
        "-k",
        "order-42",
        "--json",
    ]));
    assert_eq!(found["messages"][0]["body"], "hello admin", "{found}");

    // topicStatus: the queue's max offset moved to 1.
    let status = json(&admin(&[
        "topicStatus",
        "-n",
        &ns,
        "-t",
        "AdminE2E",
        "--json",
    ]));
    let max_total: i64 = status["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["maxOffset"].as_i64())
        .sum();
    assert_eq!(max_total, 1, "{status}");

    // consumerProgress of a group that consumed nothing: the message is its lag.
    let out = ok(&admin(&[
        "consumerProgress",
        "-n",
        &ns,
        "-g",
        "AdminGroup",
        "-t",
        "AdminE2E",
    ]));
    assert!(out.starts_with("#Topic"), "{out}");
    assert!(out.contains("Consume Diff Total: "), "{out}");
    let progress = json(&admin(&[
        "consumerProgress",
        "-n",
        &ns,
        "-g",
        "AdminGroup",
        "-t",
        "AdminE2E",
        "--json",
    ]));
    // Nothing consumed: the one message sent is the group's lag.
    assert_eq!(progress["diffTotal"], 1, "{progress}");

    // Broker-level commands.
    let out = ok(&admin(&["getBrokerConfig", "-n", &ns, "-b", &broker_addr]));
    assert!(
        out.starts_with(&format!("============{broker_addr}============\n")),
        "{out}"
    );
    assert!(out.lines().count() > 1, "{out}");
    let runtime = json(&admin(&[
        "brokerStatus",
        "-n",
        &ns,
        "-b",
        &broker_addr,
        "--json",
    ]));
    assert!(runtime[&broker_addr].is_object(), "{runtime}");

    // queryMsgByUniqueKey finds it by the id sendMessage printed.
    let unique = sent["msgId"].as_str().expect("msg id").to_owned();
    let out = ok(&admin(&[
        "queryMsgByUniqueKey",
        "-n",
        &ns,
        "-t",
        "AdminE2E",
        "-i",
        &unique,
    ]));
    assert!(out.contains("hello admin"), "{out}");

    // Write permission: drained on the NameServer, then restored.
    let out = ok(&admin(&["wipeWritePerm", "-n", &ns, "-b", &broker_name]));
    assert!(
        out.starts_with(&format!(
            "wipe write perm of broker[{broker_name}] in name server[{ns}] OK, "
        )),
        "{out}"
    );
    let out = ok(&admin(&["addWritePerm", "-n", &ns, "-b", &broker_name]));
    assert!(out.starts_with("add write perm of broker["), "{out}");

    // updateTopicPerm: read-only on the broker.
    let out = ok(&admin(&[
        "updateTopicPerm",
        "-n",
        &ns,
        "-b",
        &broker_addr,
        "-t",
        "AdminE2E",
        "-p",
        "4",
    ]));
    assert_eq!(
        out,
        format!("update topic perm from 6 to 4 in {broker_addr} success.\n")
    );

    // deleteSubGroup then deleteTopic.
    let out = ok(&admin(&[
        "deleteSubGroup",
        "-n",
        &ns,
        "-b",
        &broker_addr,
        "-g",
        "AdminGroup",
    ]));
    assert!(
        out.starts_with("delete subscription group [AdminGroup] from broker"),
        "{out}"
    );
    let out = ok(&admin(&[
        "deleteTopic",
        "-n",
        &ns,
        "-c",
        "DefaultCluster",
        "-t",
        "AdminE2E",
    ]));
    assert!(
        out.contains("delete topic [AdminE2E] from NameServer success."),
        "{out}"
    );

    cluster.stop();
}

/// consumeMessage and queryMsgByOffset pull through `Admin::view_message_at`, which sends
/// PULL_MESSAGE without the subscription flag (`sys_flag: 0`); the broker then answers
/// SUBSCRIPTION_NOT_EXIST for TOOLS_CONSUMER, as RocketMQ does. Java's pull consumer sets
/// `pull_sys_flag::SUBSCRIPTION`; the client fix is one line in client/src/admin.rs.
#[test]
fn consume_message_and_query_by_offset_against_a_real_broker() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ns = cluster.ns.clone();
    cluster.create_topic("AdminConsume");
    let sent = cluster.send("AdminConsume", "hello consume");
    let queue_id = sent["queueId"].as_i64().expect("queue id").to_string();

    let out = ok(&admin(&["consumeMessage", "-n", &ns, "-t", "AdminConsume"]));
    assert!(out.contains("BODY: hello consume"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = ok(&admin(&[
        "queryMsgByOffset",
        "-n",
        &ns,
        "-t",
        "AdminConsume",
        "-b",
        &cluster.broker_name,
        "-i",
        &queue_id,
        "-o",
        "0",
    ]));
    assert!(
        out.contains("[TagA]") && out.ends_with("hello consume\n"),
        "{out}"
    );
    cluster.stop();
}

/// `consumeMessage` reads in batches (counts honoured across queues); with a push consumer
/// online: `consumerProgress` without `-g` lists its group, `consumerConnection -b` asks the
/// broker given (and fails on a broker that is not there), and `topicList -c` fills the
/// consumer-group column.
#[test]
fn group_listings_and_batched_consume_against_a_real_broker() {
    use ringmq_client::instance::{ClientConfig, ClientInstance};
    use ringmq_client::{
        ConsumeFromWhere, ConsumeResult, MessageListener, PushConsumer, PushConsumerConfig,
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ns = cluster.ns.clone();
    let broker_addr = cluster.broker_addr.clone();
    cluster.create_topic("AdminGroups");
    for i in 0..5 {
        cluster.send("AdminGroups", &format!("batch {i}"));
    }
    let out = ok(&admin(&["consumeMessage", "-n", &ns, "-t", "AdminGroups"]));
    assert_eq!(out.lines().count(), 5, "{out}");
    for i in 0..5 {
        assert!(out.contains(&format!("BODY: batch {i}")), "{out}");
    }
    let out = ok(&admin(&[
        "consumeMessage",
        "-n",
        &ns,
        "-t",
        "AdminGroups",
        "-c",
        "3",
    ]));
    assert_eq!(out.lines().count(), 3, "{out}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut consumer = runtime.block_on(async {
        let client = ClientInstance::new(ClientConfig::new(ns.as_str())).expect("client");
        let mut consumer = PushConsumer::new(
            client,
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                ..PushConsumerConfig::new("AdminOnlineGroup")
            },
        )
        .expect("push consumer");
        consumer.subscribe("AdminGroups", "*").expect("subscribe");
        consumer
            .start(MessageListener::concurrently(|_| async {
                ConsumeResult::Success
            }))
            .await
            .expect("consumer starts");
        consumer
    });

    // consumerProgress without -g: the online group is listed with its consumer count.
    let deadline = Instant::now() + NETWORK_WAIT;
    let progress = loop {
        let out = json(&admin(&["consumerProgress", "-n", &ns, "--json"]));
        let row = out["groups"]
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["group"] == "AdminOnlineGroup" && r["count"] == 1)
            })
            .cloned();
        if let Some(row) = row {
            break row;
        }
        assert!(Instant::now() < deadline, "group never listed: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(progress["consumeType"], "CONSUME_PASSIVELY", "{progress}");
    let out = ok(&admin(&["consumerProgress", "-n", &ns]));
    assert!(out.starts_with("#Group"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("AdminOnlineGroup") && l.contains("PUSH")),
        "{out}"
    );

    // consumerConnection -b: the broker given is the one asked.
    let out = ok(&admin(&[
        "consumerConnection",
        "-n",
        &ns,
        "-g",
        "AdminOnlineGroup",
        "-b",
        &broker_addr,
    ]));
    assert!(out.contains("Topic: AdminGroups"), "{out}");
    let elsewhere = admin(&[
        "consumerConnection",
        "-n",
        &ns,
        "-g",
        "AdminOnlineGroup",
        "-b",
        &dead_addr(),
    ]);
    assert_eq!(elsewhere.status.code(), Some(1), "{}", stdout(&elsewhere));

    // topicList -c: the group consuming the topic fills its column.
    let listed = json(&admin(&["topicList", "-n", &ns, "-c", "--json"]));
    let rows = listed["topics"].as_array().expect("rows");
    assert!(
        rows.iter().any(|r| r["topic"] == "AdminGroups"
            && r["consumerGroup"] == "AdminOnlineGroup"
            && r["cluster"] == "DefaultCluster"),
        "{listed}"
    );
    let out = ok(&admin(&["topicList", "-n", &ns, "-c"]));
    assert!(
        out.lines()
            .any(|l| l.contains("AdminGroups") && l.trim_end().ends_with("AdminOnlineGroup")),
        "{out}"
    );

    runtime.block_on(consumer.shutdown());
    cluster.stop();
}
