//! Pull bodies that are no longer in the tail cache are spliced from the CommitLog files:
//! over a real socket, on one long-lived connection mixing spliced and in-memory responses,
//! every frame decodes and every record is the exact stored bytes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::broker::{Broker, BrokerError};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::admin::GetTopicConfigRequestHeader;
use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag};
use ringmq_wire::header::send::SendMessageRequestHeaderV2;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

const NETWORK_WAIT: Duration = Duration::from_secs(20);
/// A multiple of the 32 messages each round pulls.
const MESSAGES: usize = 192;

fn request<H: CommandHeader>(code: RequestCode, header: &H, opaque: i32) -> RemotingCommand {
    let mut request = RemotingCommand::request(code);
    header.encode_into(&mut request);
    request.opaque = opaque;
    request
}

fn send(i: usize) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PG".into(),
        b: "Cold".into(),
        c: "TBW102".into(),
        d: 1,
        e: 0,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: None,
        j: None,
        k: None,
        l: None,
        m: None,
        n: None,
        rpc: Default::default(),
    };
    request(RequestCode::SendMessageV2, &header, i as i32)
        .with_body(format!("cold {i:04} {}", "y".repeat(i % 97)).into_bytes())
}

fn pull(offset: i64, max: i32, opaque: i32) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: "ColdGroup".into(),
        topic: "Cold".into(),
        queue_id: 0,
        queue_offset: offset,
        max_msg_nums: max,
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
    };
    request(RequestCode::PullMessage, &header, opaque)
}

fn read_frame(stream: &mut TcpStream) -> RemotingCommand {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("read length");
    let mut content = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut content).expect("read frame");
    RemotingCommand::decode(content.into()).expect("decode")
}

/// Writes every request at once, then reads as many responses, keyed by opaque.
fn exchange(stream: &mut TcpStream, requests: &[RemotingCommand]) -> HashMap<i32, RemotingCommand> {
    let mut bytes = Vec::new();
    for request in requests {
        bytes.extend_from_slice(&request.encode_frame().expect("encode"));
    }
    stream.write_all(&bytes).expect("write");
    (0..requests.len())
        .map(|_| {
            let response = read_frame(stream);
            (response.opaque, response)
        })
        .collect()
}

#[test]
fn cold_pulls_are_spliced_exactly_on_a_connection_shared_with_memory_responses() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::standalone();
    config.broker.listen_addr = "127.0.0.1".parse().expect("ip");
    config.broker.base_port = 0;
    config.broker.namesrv_addrs = vec!["127.0.0.1:1".into()];
    config.broker.shards = Some(1);
    config.store.path = data.path().to_owned();
    config.store.segment_bytes = 64 << 20;
    // No tail cache: every record on disk is served from the file.
    config.store.tail_cache_bytes = 0;
    config.store.splice_pulls = true;
    let broker = match Broker::start(config) {
        Ok(broker) => broker,
        Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable: {error}");
            return;
        }
        Err(error) => panic!("broker failed to start: {error}"),
    };
    let addr: SocketAddr = broker.shard_addrs()[0];
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(NETWORK_WAIT))
        .expect("timeout");

    let sends: Vec<RemotingCommand> = (0..MESSAGES).map(send).collect();
    let acks = exchange(&mut stream, &sends);
    assert!(
        acks.values().all(|a| a.code == 0),
        "every send acknowledged"
    );

    let topic = request(
        RequestCode::GetTopicConfig,
        &GetTopicConfigRequestHeader {
            topic: "Cold".into(),
            rpc: Default::default(),
        },
        9_000,
    );
    let segment = std::fs::File::open(
        data.path()
            .join("shard-0")
            .join("commitlog")
            .join("00000000000000000000"),
    )
    .expect("segment");
    let mut next = 0i64;
    let mut seen = 0usize;
    let mut round = 0;
    while seen < MESSAGES {
        round += 1;
        assert!(round < 100, "pulls do not progress");
        // A spliced pull, an in-memory answer, another spliced pull, in one write.
        let mut topic = topic.clone();
        topic.opaque = 9_000 + round;
        let answers = exchange(
            &mut stream,
            &[pull(next, 16, 1), topic, pull(next + 16, 16, 2)],
        );
        assert_eq!(answers[&(9_000 + round)].code, 0, "topic config answered");
        for opaque in [1, 2] {
            let answer = &answers[&opaque];
            if answer.response_code() == Some(ResponseCode::PullNotFound) {
                continue;
            }
            assert_eq!(answer.code, 0, "{:?}", answer.remark);
            let messages = ringmq_wire::record::decode_records(&answer.body, true, 64)
                .expect("records with good CRCs");
            for message in &messages {
                let i = message.layout.queue_offset as usize;
                let expected = format!("cold {i:04} {}", "y".repeat(i % 97));
                assert_eq!(&message.body()[..], expected.as_bytes());
                let mut stored = vec![0u8; message.raw.len()];
                segment
                    .read_exact_at(&mut stored, message.layout.physical_offset as u64)
                    .expect("stored bytes");
                assert_eq!(&stored[..], &message.raw[..], "the exact stored bytes");
            }
            seen += messages.len();
        }
        next += 32;
    }
    assert_eq!(seen, MESSAGES);
    broker.shutdown().expect("clean shutdown");
}
