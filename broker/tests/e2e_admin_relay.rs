//! The admin requests the broker serves for other parties, end to end against a real
//! in-process broker (one shard, no tail cache, so every query reads the CommitLog file on
//! the shard's io_uring) and the Rust client:
//! - `queryMsgById` / `queryMsgByKey` find cold records and `SEARCH_OFFSET_BY_TIMESTAMP`
//!   probes them (ring reads, deferred tasks);
//! - `consumerStatus` reaches a live push consumer through the broker's 307 relay, and an
//!   unknown client id is refused with RocketMQ's remark;
//! - `queryMsgById -g -d` makes the Rust push consumer consume a stored message through the
//!   broker's 309 relay and prints its `ConsumeMessageDirectlyResult`;
//! - `INVOKE_BROKER_TO_RESET_OFFSET` finds the offsets by time over cold records;
//! - `producerConnection` lists a live producer;
//! - `updateBrokerConfig -k brokerPermission -v 4` makes the broker read-only at once
//!   (sends refused with NO_PERMISSION, the route shows perm 4), survives a restart through
//!   the overlay file, and `-v 6` restores writes.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::broker::{Broker, BrokerError};
use ringmq_client::{
    Admin, ClientConfig, ClientInstance, ConsumeResult, Message, MessageListener, Producer,
    ProducerConfig, PushConsumer, PushConsumerConfig,
};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

/// Generous: the machine is shared and oversubscribed.
const WAIT: Duration = Duration::from_secs(30);
const TOPIC: &str = "RelayTopic";
const GROUP: &str = "relay_group";
const PRODUCER_GROUP: &str = "relay_producer";

fn admin_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .arg("admin")
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ringmq-broker admin")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn client(ns: &str, name: &str) -> ClientInstance {
    ClientInstance::new(ClientConfig {
        instance_name: Some(format!("{name}-{}", std::process::id())),
        ..ClientConfig::new(ns)
    })
    .expect("client")
}

async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn broker_config(ns: &str, data: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig::standalone();
    config.broker.base_port = 0;
    config.broker.namesrv_addrs = vec![ns.to_owned()];
    config.broker.shards = Some(1);
    config.store.path = data.to_owned();
    config.store.segment_bytes = 16 << 20;
    // Nothing stays in memory: queries read the segment file.
    config.store.tail_cache_bytes = 0;
    config
}

fn start(config: BrokerConfig) -> Option<Broker> {
    match Broker::start(config) {
        Ok(broker) => Some(broker),
        Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable: {error}");
            None
        }
        Err(error) => panic!("broker failed to start: {error}"),
    }
}

#[test]
fn relays_queries_and_runtime_config_against_a_real_broker() {
    let ns_dir = tempfile::tempdir().expect("tempdir");
    let namesrv = NameServer::start_in_background(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: ns_dir.path().join("kv.json"),
        ..NameServerConfig::default()
    })
    .expect("NameServer");
    let ns = namesrv.local_addr().to_string();
    let data = tempfile::tempdir().expect("tempdir");
    let Some(broker) = start(broker_config(&ns, data.path())) else {
        return;
    };
    let addr = broker.shard_addrs()[0].to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (producer, mut consumer, client_id, (offset_msg_id, unique_id)) = runtime.block_on(async {
        let admin = Admin::new(client(&ns, "admin"));
        wait_until("the broker registered", || async {
            let info = admin.cluster_info().await.ok()?;
            (!info.broker_addr_table.is_empty()).then_some(())
        })
        .await;
        admin
            .create_topic(&addr, &TopicConfig::new(TOPIC, 2))
            .await
            .expect("create topic");
        wait_until("the topic's route", || async {
            admin.topic_route(TOPIC).await.ok()
        })
        .await;

        // Cold reads on the ring: by offset id and by key.
        let producer = Producer::new(client(&ns, "producer"), ProducerConfig::new(PRODUCER_GROUP))
            .expect("producer");
        let sent = producer
            .send(Message::new(TOPIC, "ring-read-body").with_keys(["ring-key"]))
            .await
            .expect("send");
        let viewed = admin
            .view_message_by_id(&sent.offset_msg_id)
            .await
            .expect("view by id");
        assert_eq!(&viewed.body[..], b"ring-read-body");
        let found = admin
            .query_messages_by_key(TOPIC, "ring-key", 32, 0, i64::MAX)
            .await
            .expect("query by key");
        assert_eq!(found.len(), 1);
        assert_eq!(&found[0].body[..], b"ring-read-body");
        // Time lookups probe the cold record on the ring too.
        let before = admin
            .search_offset(&sent.queue, 0)
            .await
            .expect("search offset");
        assert_eq!(before, 0);
        let after = admin
            .search_offset(&sent.queue, i64::MAX / 2)
            .await
            .expect("search offset");
        assert_eq!(after, sent.queue_offset + 1);
        // Producers heartbeat every 30 s; say hello now for producerConnection.
        producer.heartbeat().await;

        // A live consumer, asked through the broker.
        let mut consumer =
            PushConsumer::new(client(&ns, "consumer"), PushConsumerConfig::new(GROUP))
                .expect("consumer");
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        consumer
            .start(MessageListener::concurrently(|messages| async move {
                // Asked directly for this one: "later".
                if messages.iter().any(|m| &m.body[..] == b"direct-later") {
                    ConsumeResult::ReconsumeLater
                } else {
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");
        let client_id = wait_until("the consumer's heartbeat", || async {
            let cc = admin.consumer_connection_on(&addr, GROUP).await.ok()?;
            cc.connection_set.first().map(|c| c.client_id.clone())
        })
        .await;
        let info = admin
            .consumer_running_info(&addr, GROUP, &client_id, false)
            .await
            .expect("running info relayed");
        assert!(
            info.subscription_set.iter().any(|s| s.topic == TOPIC),
            "{info:?}"
        );
        let ghost = admin
            .consumer_running_info(&addr, GROUP, "ghost@1", false)
            .await
            .expect_err("unknown client");
        assert_eq!(
            ghost.response_code(),
            Some(ResponseCode::SystemError.as_i32())
        );
        assert!(ghost.to_string().contains("not online"), "{ghost}");

        // CONSUME_MESSAGE_DIRECTLY: the broker reads the cold record and relays it; the Rust
        // consumer runs its listener on it and answers.
        let result = admin
            .consume_message_directly(GROUP, &client_id, &sent.offset_msg_id, Some(TOPIC))
            .await
            .expect("consumed directly");
        assert_eq!(result["consumeResult"], "CR_SUCCESS", "{result}");
        assert_eq!(result["order"], false);
        let later = producer
            .send(Message::new(TOPIC, "direct-later"))
            .await
            .expect("send");
        let result = admin
            .consume_message_directly(GROUP, &client_id, &later.offset_msg_id, None)
            .await
            .expect("consumed directly");
        assert_eq!(result["consumeResult"], "CR_LATER", "{result}");

        // INVOKE_BROKER_TO_RESET_OFFSET with the consumer online: the time search probes the
        // cold records on the ring (deferred), then the broker commits and tells the client.
        ringmq_client::consumer::api::update_consumer_offset(
            admin.instance(),
            &addr,
            GROUP,
            &sent.queue,
            sent.queue_offset + 1,
        )
        .await
        .expect("commit an offset");
        let table = admin
            .invoke_broker_to_reset_offset(&addr, GROUP, TOPIC, 0, true, None)
            .await
            .expect("reset online");
        assert_eq!(table.get(&sent.queue), Some(&0), "{table:?}");
        assert_eq!(table.len(), 2, "every queue of the topic: {table:?}");
        (
            producer,
            consumer,
            client_id,
            (sent.offset_msg_id, sent.msg_id),
        )
    });
    let out = admin_cli(&[
        "queryMsgById",
        "-n",
        &ns,
        "-i",
        &offset_msg_id,
        "-g",
        GROUP,
        "-d",
        &client_id,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "ConsumeMessageDirectlyResult [order=false, autoCommit=true, consumeResult=CR_SUCCESS"
        ),
        "{}",
        text(&out)
    );
    let out = admin_cli(&[
        "queryMsgByUniqueKey",
        "-n",
        &ns,
        "-t",
        TOPIC,
        "-i",
        &unique_id,
        "-g",
        GROUP,
        "-d",
        &client_id,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        report["consumeMessageDirectlyResult"]["consumeResult"], "CR_SUCCESS",
        "{report}"
    );

    // The admin commands over the same paths.
    let out = admin_cli(&["consumerStatus", "-n", &ns, "-g", GROUP]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = text(&out);
    assert!(
        listing.contains("#ClientId") && listing.contains("Rebalance OK"),
        "{listing}"
    );
    let out = admin_cli(&[
        "producerConnection",
        "-n",
        &ns,
        "-g",
        PRODUCER_GROUP,
        "-t",
        TOPIC,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).starts_with("0001  "), "{}", text(&out));

    // Read-only at runtime: sends refused, the route shows it.
    let out = admin_cli(&[
        "updateBrokerConfig",
        "-n",
        &ns,
        "-b",
        &addr,
        "-k",
        "brokerPermission",
        "-v",
        "4",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("update broker config success"));
    let out = admin_cli(&[
        "updateBrokerConfig",
        "-n",
        &ns,
        "-b",
        &addr,
        "-k",
        "flushDiskType",
        "-v",
        "SYNC_FLUSH",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("flushDiskType"), "{}", text(&out));
    runtime.block_on(async {
        // A send straight to the broker (as from a producer whose route is stale) is
        // refused.
        let admin = Admin::new(client(&ns, "admin2"));
        let mut send = RemotingCommand::request(RequestCode::SendMessage);
        SendMessageRequestHeader {
            producer_group: PRODUCER_GROUP.into(),
            topic: TOPIC.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: 0,
            flag: 0,
            properties: None,
            reconsume_times: None,
            unit_mode: None,
            batch: None,
            max_reconsume_times: None,
            rpc: Default::default(),
        }
        .encode_into(&mut send);
        let refused = admin
            .instance()
            .remoting()
            .invoke(&addr, send.with_body(&b"refused"[..]), WAIT)
            .await
            .expect("an answer");
        assert_eq!(
            refused.code,
            ResponseCode::NoPermission.as_i32(),
            "{:?}",
            refused.remark
        );
        wait_until("the route to show the broker read-only", || async {
            let route = admin.topic_route(TOPIC).await.ok()?;
            route.queue_datas.iter().all(|q| q.perm == 4).then_some(())
        })
        .await;
        consumer.shutdown().await;
        producer.shutdown();
    });
    broker.shutdown().expect("clean shutdown");

    // The change survives a restart, and can be undone.
    let Some(broker) = start(broker_config(&ns, data.path())) else {
        return;
    };
    let addr = broker.shard_addrs()[0].to_string();
    runtime.block_on(async {
        let admin = Admin::new(client(&ns, "admin3"));
        let config = admin.broker_config(&addr).await.expect("getBrokerConfig");
        assert_eq!(config["brokerPermission"], "4");
        let entries =
            std::collections::BTreeMap::from([("brokerPermission".to_owned(), "6".to_owned())]);
        admin
            .update_broker_config(&addr, &entries)
            .await
            .expect("back to read-write");
        wait_until("the route to show the broker writable", || async {
            let route = admin.topic_route(TOPIC).await.ok()?;
            route.queue_datas.iter().all(|q| q.perm == 6).then_some(())
        })
        .await;
        let producer = Producer::new(
            client(&ns, "producer2"),
            ProducerConfig::new(PRODUCER_GROUP),
        )
        .expect("producer");
        wait_until("sends accepted again", || async {
            producer.send(Message::new(TOPIC, "again")).await.ok()
        })
        .await;
        producer.shutdown();
    });
    broker.shutdown().expect("clean shutdown");
    namesrv.shutdown();
}
