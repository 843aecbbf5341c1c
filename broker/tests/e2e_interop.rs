//! Interop with stock RocketMQ clients, installed by `.ci/install-deps`:
//! - the pure-JavaScript `ali-ons` (from `tests/interop/package-lock.json`) produces 1 000
//!   messages with tags, keys and a user property into a real 2-shard `ringmq-broker`, and
//!   two `ali-ons` push consumers in one group consume them;
//! - Apache's C++ client (rocketmq-client-cpp 2.x, driven from Python through the `rocketmq`
//!   wheel that bundles `librocketmq.so`, installed under `tests/interop/py`) produces 300
//!   messages, half one by one and half in batches of 10 (which it sends as SEND_MESSAGE with
//!   `batch=true`), and two C++ push consumers in one group subscribe to two of the three
//!   tags.
//!
//! Every message arrives exactly once, with its tag, key, property and body, and both
//! consumers get a share.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::{Admin, ClientConfig, ClientInstance};
use ringmq_wire::body::topic::TopicConfig;
use support::{Broker, BrokerOptions, Namesrv, wait_for};

const MESSAGES: usize = 1_000;
const TOPIC: &str = "InteropTopic";
const GROUP: &str = "interop_consumer_group";

/// `tests/interop`, after checking that the client `marker` (a path inside it) is installed.
fn interop_dir(marker: &str, missing: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
    assert!(
        dir.join(marker).exists(),
        "{missing} is not installed: run `.ci/install-deps`"
    );
    dir
}

/// Runs `program script` in `dir` with `env`, stdout and stderr piped for [`collect`].
fn spawn_script(program: &str, script: PathBuf, dir: &Path, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(program);
    command
        .arg(script)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap_or_else(|error| {
        panic!("spawn {program} (install it to run the interop tests): {error}")
    })
}

/// A C++ client script (`tests/interop/cpp/`), run with the wheel under `tests/interop/py`.
fn python(script: &str, env: &[(&str, String)]) -> Child {
    let dir = interop_dir(
        "py/rocketmq/librocketmq.so",
        "the RocketMQ C++ client (pip install --target tests/interop/py rocketmq==0.4.4)",
    );
    let mut env = env.to_vec();
    env.push(("RMQ_PY", dir.join("py").display().to_string()));
    spawn_script("python3", dir.join("cpp").join(script), &dir, &env)
}

/// An ali-ons script (`tests/interop/`).
fn node(script: &str, env: &[(&str, String)]) -> Child {
    let dir = interop_dir(
        "node_modules/ali-ons",
        "ali-ons (npm ci --prefix tests/interop)",
    );
    spawn_script("node", dir.join(script), &dir, env)
}

/// Reads a child's stdout JSON lines into `sink` on a thread; stderr goes to our stderr
/// prefixed with `name`.
fn collect(
    mut child: Child,
    name: &'static str,
    sink: Arc<Mutex<Vec<serde_json::Value>>>,
) -> Child {
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                sink.lock().unwrap().push(value);
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[{name}] {line}");
        }
    });
    child
}

fn create_topic(namesrv: &str, cluster: &str, topic: &str, queues_per_shard: i32, shards: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = Admin::new(ClientInstance::new(ClientConfig::new(namesrv)).unwrap());
        wait_for_async("both shards registered", || async {
            let info = admin.cluster_info().await.ok()?;
            (info.cluster_addr_table.get(cluster)?.len() == shards).then_some(())
        })
        .await;
        let written = admin
            .create_topic_in_cluster(cluster, &TopicConfig::new(topic, queues_per_shard))
            .await
            .expect("updateTopic");
        assert_eq!(written.len(), shards);
        wait_for_async("the topic's route on every shard", || async {
            let route = admin.topic_route(topic).await.ok()?;
            (route.queue_datas.len() == shards).then_some(())
        })
        .await;
    });
}

async fn wait_for_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let deadline = Instant::now() + support::START_TIMEOUT;
    while check().await.is_none() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn ali_ons_produces_and_two_consumers_share_every_message_exactly_once() {
    let namesrv = Namesrv::start();
    let options = BrokerOptions {
        name: "interop".into(),
        ..BrokerOptions::default()
    };
    let _broker = Broker::start(&namesrv.addr, options);
    create_topic(&namesrv.addr, "E2eCluster", TOPIC, 4, 2);

    // Two consumers of one group, started before the messages exist, so that the group's
    // rebalance has settled before the first message and nothing is delivered twice.
    let received = Arc::new(Mutex::new(Vec::new()));
    let received_b = Arc::new(Mutex::new(Vec::new()));
    let consumer_env = |instance: &str| {
        vec![
            ("NAMESRV", namesrv.addr.clone()),
            ("TOPIC", TOPIC.to_string()),
            ("GROUP", GROUP.to_string()),
            ("TIMEOUT_MS", "300000".to_string()),
            ("STOP_AFTER_IDLE_MS", "300000".to_string()),
            ("INSTANCE", instance.to_string()),
        ]
    };
    let consumer_a = collect(
        node("consume.js", &consumer_env("a")),
        "consumer-a",
        received.clone(),
    );
    let consumer_b = collect(
        node("consume.js", &consumer_env("b")),
        "consumer-b",
        received_b.clone(),
    );
    // ali-ons rebalances every 2 s here (consume.js) and on NOTIFY_CONSUMER_IDS_CHANGED.
    std::thread::sleep(Duration::from_secs(8));

    let producer_out = Arc::new(Mutex::new(Vec::new()));
    let producer = collect(
        node(
            "produce.js",
            &[
                ("NAMESRV", namesrv.addr.clone()),
                ("TOPIC", TOPIC.to_string()),
                ("COUNT", MESSAGES.to_string()),
                ("IN_FLIGHT", "8".to_string()),
            ],
        ),
        "producer",
        producer_out.clone(),
    );
    expect_every_send_ok(producer, &producer_out, MESSAGES, "ali-ons");
    let expected: Vec<usize> = (0..MESSAGES).collect();
    check_exactly_once(
        [consumer_a, consumer_b],
        [&received, &received_b],
        &expected,
    );
}

#[test]
fn cpp_client_produces_and_two_tag_filtered_consumers_share_every_message_exactly_once() {
    const COUNT: usize = 300;
    const CPP_TOPIC: &str = "CppInteropTopic";
    let namesrv = Namesrv::start();
    let options = BrokerOptions {
        name: "interop-cpp".into(),
        ..BrokerOptions::default()
    };
    let broker = Broker::start(&namesrv.addr, options);
    create_topic(&namesrv.addr, "E2eCluster", CPP_TOPIC, 4, 2);

    let consumer_env = |instance: &str| {
        vec![
            ("NAMESRV", namesrv.addr.clone()),
            ("TOPIC", CPP_TOPIC.to_string()),
            ("GROUP", "cpp_interop_group".to_string()),
            ("EXPRESSION", "Tag0 || Tag1".to_string()),
            ("INSTANCE", instance.to_string()),
            ("TIMEOUT_MS", "300000".to_string()),
            ("STOP_AFTER_IDLE_MS", "300000".to_string()),
        ]
    };
    let a_out = Arc::new(Mutex::new(Vec::new()));
    let b_out = Arc::new(Mutex::new(Vec::new()));
    let consumer_a = collect(
        python("consume.py", &consumer_env("cpp-a")),
        "cpp-consumer-a",
        a_out.clone(),
    );
    let consumer_b = collect(
        python("consume.py", &consumer_env("cpp-b")),
        "cpp-consumer-b",
        b_out.clone(),
    );
    // Both members registered with every shard, then one more rebalance round (the C++
    // client rebalances every 20 s and on NOTIFY_CONSUMER_IDS_CHANGED) before any message
    // exists, so no queue changes hands while messages flow.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = Admin::new(ClientInstance::new(ClientConfig::new(&namesrv.addr)).unwrap());
        for shard in 0..2 {
            let addr = broker.shard_addr(shard);
            wait_for_async("both C++ consumers in the group on every shard", || async {
                let connection = admin
                    .consumer_connection_on(&addr, "cpp_interop_group")
                    .await
                    .ok()?;
                (connection.connection_set.len() == 2).then_some(())
            })
            .await;
        }
    });
    std::thread::sleep(Duration::from_secs(5));

    let producer_out = Arc::new(Mutex::new(Vec::new()));
    let producer = collect(
        python(
            "produce.py",
            &[
                ("NAMESRV", namesrv.addr.clone()),
                ("TOPIC", CPP_TOPIC.to_string()),
                ("COUNT", COUNT.to_string()),
            ],
        ),
        "cpp-producer",
        producer_out.clone(),
    );
    expect_every_send_ok(producer, &producer_out, COUNT, "C++");
    let expected: Vec<usize> = (0..COUNT).filter(|seq| seq % 3 != 2).collect();
    check_exactly_once([consumer_a, consumer_b], [&a_out, &b_out], &expected);
}

type Sink = Arc<Mutex<Vec<serde_json::Value>>>;

/// The JSON lines of a sink that are about one message (they carry `seq`).
fn messages(out: &Sink) -> Vec<serde_json::Value> {
    out.lock()
        .unwrap()
        .iter()
        .filter(|v| v.get("seq").is_some())
        .cloned()
        .collect()
}

/// Waits for a producer script and checks it reported SEND_OK for each of `count` messages.
fn expect_every_send_ok(mut producer: Child, out: &Sink, count: usize, client: &str) {
    let status = producer.wait().expect("producer exit");
    assert!(status.success(), "the {client} producer failed: {status}");
    let sent = messages(out);
    assert_eq!(sent.len(), count, "every send reports a result");
    assert!(
        sent.iter().all(|v| v["status"] == "SEND_OK"),
        "every send is SEND_OK"
    );
}

/// Waits until the two consumers of one group together received `expected.len()` messages,
/// gives duplicates a moment to show up, stops them, and checks that both got a share and
/// that exactly the `expected` sequence numbers arrived, once each, with their tag, key and
/// body as the producer scripts set them.
fn check_exactly_once(consumers: [Child; 2], outs: [&Sink; 2], expected: &[usize]) {
    let total = || outs.iter().map(|out| messages(out).len()).sum::<usize>();
    wait_for("every message consumed", Duration::from_secs(120), || {
        (total() >= expected.len()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    for mut consumer in consumers {
        let _ = consumer.kill();
        let _ = consumer.wait();
    }
    let [a, b] = outs.map(messages);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both group members consume: a={} b={}",
        a.len(),
        b.len()
    );
    let mut by_seq: BTreeMap<usize, serde_json::Value> = BTreeMap::new();
    for message in a.iter().chain(b.iter()) {
        let seq: usize = message["seq"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("seq property");
        assert!(
            by_seq.insert(seq, message.clone()).is_none(),
            "message {seq} delivered twice"
        );
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        expected,
        "exactly the expected messages are delivered"
    );
    for (seq, message) in by_seq {
        assert_eq!(message["tags"], format!("Tag{}", seq % 3), "tag of {seq}");
        assert_eq!(message["keys"], format!("key-{seq}"), "key of {seq}");
        assert_eq!(
            message["body"],
            format!("hello ringmq {seq}"),
            "body of {seq}"
        );
    }
}
