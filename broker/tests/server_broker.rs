//! The whole broker process in-process: shards on the real runtime and store, registered
//! with a real NameServer; a client finds a shard through the NameServer, sends and pulls;
//! a topic created on one shard appears on every shard.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::broker::{Broker, BrokerError};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::body::cluster::ClusterInfo;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::admin::{CreateTopicRequestHeader, GetTopicConfigRequestHeader};
use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag};
use ringmq_wire::header::send::SendMessageRequestHeaderV2;
use ringmq_wire::{RemotingCommand, RequestCode};

const NETWORK_WAIT: Duration = Duration::from_secs(20);

fn call(addr: SocketAddr, request: &RemotingCommand) -> RemotingCommand {
    let mut stream = TcpStream::connect(addr).expect("connect");
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
    RemotingCommand::decode(content.into()).expect("decode")
}

fn request<H: CommandHeader>(code: RequestCode, header: &H) -> RemotingCommand {
    let mut request = RemotingCommand::request(code);
    header.encode_into(&mut request);
    request
}

/// Polls the NameServer until `shards` brokers of the cluster are registered.
fn broker_addrs(namesrv: SocketAddr, shards: usize) -> Vec<(String, SocketAddr)> {
    let deadline = Instant::now() + NETWORK_WAIT;
    loop {
        let response = call(
            namesrv,
            &RemotingCommand::request(RequestCode::GetBrokerClusterInfo),
        );
        if response.code == 0 {
            let info: ClusterInfo =
                ringmq_wire::json::parse("cluster info", &response.body).expect("cluster info");
            let mut found: Vec<(String, SocketAddr)> = info
                .broker_addr_table
                .values()
                .filter_map(|b| {
                    let addr = b.master_addr()?.parse().ok()?;
                    Some((b.broker_name.clone(), addr))
                })
                .collect();
            found.sort();
            if found.len() >= shards {
                return found;
            }
        }
        assert!(
            Instant::now() < deadline,
            "shards never registered: {} {:?}",
            response.code,
            String::from_utf8_lossy(&response.body)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shards_register_serve_and_share_admin_changes() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("ringmq=debug"))
        .with_test_writer()
        .try_init();
    let namesrv_dir = tempfile::tempdir().expect("tempdir");
    let namesrv = NameServer::start_in_background(NameServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kv_config_path: namesrv_dir.path().join("kv.json"),
        ..NameServerConfig::default()
    })
    .expect("namesrv starts");
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::standalone();
    config.broker.base_port = 0;
    config.broker.namesrv_addrs = vec![namesrv.local_addr().to_string()];
    config.broker.shards = Some(ringmq_broker::config::allowed_cpus().min(2));
    config.store.path = data.path().to_owned();
    config.store.segment_bytes = 64 << 20;
    let shards = config.broker.shards.unwrap_or(1);
    let restart_config = config.clone();
    let broker = match Broker::start(config) {
        Ok(broker) => broker,
        Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable: {error}");
            return;
        }
        Err(error) => panic!("broker failed to start: {error}"),
    };
    let addrs = broker_addrs(namesrv.local_addr(), shards);
    assert_eq!(addrs[0].0, "broker-a-s0");
    let shard0 = addrs[0].1;

    let send = request(
        RequestCode::SendMessageV2,
        &SendMessageRequestHeaderV2 {
            a: "PG".into(),
            b: "E2E".into(),
            c: "TBW102".into(),
            d: 4,
            e: 0,
            f: 0,
            g: 1,
            h: 0,
            i: None,
            j: None,
            k: None,
            l: None,
            m: None,
            n: None,
            rpc: Default::default(),
        },
    )
    .with_body(&b"hello ringmq"[..]);
    let sent = call(shard0, &send);
    assert_eq!(sent.code, 0, "{:?}", sent.remark);

    let pull = request(
        RequestCode::PullMessage,
        &PullMessageRequestHeader {
            consumer_group: "G".into(),
            topic: "E2E".into(),
            queue_id: 0,
            queue_offset: 0,
            max_msg_nums: 32,
            sys_flag: pull_sys_flag::SUBSCRIPTION,
            commit_offset: 0,
            suspend_timeout_millis: 1_000,
            subscription: Some("*".into()),
            sub_version: 0,
            expression_type: None,
            max_msg_bytes: None,
            request_source: None,
            proxy_forward_client_id: None,
            rpc: Default::default(),
        },
    );
    let pulled = call(shard0, &pull);
    assert_eq!(pulled.code, 0, "{:?}", pulled.remark);
    let messages = ringmq_wire::record::decode_records(&pulled.body, true, 10).expect("records");
    assert_eq!(&messages[0].body()[..], b"hello ringmq");

    if shards > 1 {
        let create = request(
            RequestCode::UpdateAndCreateTopic,
            &CreateTopicRequestHeader {
                topic: "Shared".into(),
                default_topic: "TBW102".into(),
                read_queue_nums: 2,
                write_queue_nums: 2,
                perm: 6,
                topic_filter_type: "SINGLE_TAG".into(),
                topic_sys_flag: None,
                order: false,
                attributes: None,
                force: None,
                rpc: Default::default(),
            },
        );
        assert_eq!(call(shard0, &create).code, 0);
        let get = request(
            RequestCode::GetTopicConfig,
            &GetTopicConfigRequestHeader {
                topic: "Shared".into(),
                rpc: Default::default(),
            },
        );
        let deadline = Instant::now() + NETWORK_WAIT;
        while call(addrs[1].1, &get).code != 0 {
            assert!(Instant::now() < deadline, "topic never reached shard 1");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    broker.shutdown().expect("clean shutdown");

    // Restart on the same data: the auto-created topic and the message are still there.
    let broker = Broker::start(restart_config).expect("broker restarts");
    let old = addrs;
    let deadline = Instant::now() + NETWORK_WAIT;
    let addrs = loop {
        // The new shards listen on new OS-assigned ports; wait until they re-registered.
        let now = broker_addrs(namesrv.local_addr(), shards);
        if now.iter().all(|a| !old.contains(a)) {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "restarted shards never registered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let get = request(
        RequestCode::GetTopicConfig,
        &GetTopicConfigRequestHeader {
            topic: "E2E".into(),
            rpc: Default::default(),
        },
    );
    assert_eq!(call(addrs[0].1, &get).code, 0, "topic survived the restart");
    let pulled = call(addrs[0].1, &pull);
    assert_eq!(pulled.code, 0, "{:?}", pulled.remark);
    let messages = ringmq_wire::record::decode_records(&pulled.body, true, 10).expect("records");
    assert_eq!(&messages[0].body()[..], b"hello ringmq");
    broker.shutdown().expect("clean shutdown");
    namesrv.shutdown();
}
