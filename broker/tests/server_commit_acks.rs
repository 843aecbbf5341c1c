//! Send acknowledgements on the real runtime and store: the group commit starts from the
//! shard's progress step and a completed write releases its acknowledgements in the same
//! turn. Checked from outside, over a real socket: every acknowledgement arrives, in append
//! order, and the acknowledged record is already in its CommitLog segment file when the
//! acknowledgement is read (async flush acknowledges once the write completed, never
//! earlier), for one send at a time and for pipelined bursts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ringmq_broker::config::{BrokerConfig, FlushMode};
use ringmq_broker::server::broker::{Broker, BrokerError};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::{SendMessageRequestHeaderV2, SendMessageResponseHeader};
use ringmq_wire::record::StoredMessage;
use ringmq_wire::{RemotingCommand, RequestCode};

const NETWORK_WAIT: Duration = Duration::from_secs(20);

fn send(body: &[u8]) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PG".into(),
        b: "Acks".into(),
        c: "TBW102".into(),
        d: 1,
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
    };
    let mut request = RemotingCommand::request(RequestCode::SendMessageV2);
    header.encode_into(&mut request);
    request.with_body(body.to_vec())
}

fn read_frame(stream: &mut TcpStream) -> RemotingCommand {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("read length");
    let mut content = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut content).expect("read frame");
    RemotingCommand::decode(content.into()).expect("decode")
}

/// The record an acknowledgement names, read from the segment file right now.
fn stored_now(segment: &Path, response: &RemotingCommand) -> StoredMessage {
    let header = SendMessageResponseHeader::decode(response).expect("send response header");
    let (_, offset) = ringmq_wire::msgid::parse_offset_msg_id(&header.msg_id).expect("msg id");
    let file = std::fs::File::open(segment).expect("segment opens");
    let mut size = [0u8; 4];
    file.read_exact_at(&mut size, offset as u64)
        .expect("size readable");
    let size = i32::from_be_bytes(size);
    assert!(
        size > 0,
        "record at {offset} not in the file when its acknowledgement arrived (size {size})"
    );
    let mut record = vec![0u8; size as usize];
    file.read_exact_at(&mut record, offset as u64)
        .expect("record readable");
    StoredMessage::decode(&Bytes::from(record), true)
        .unwrap_or_else(|e| panic!("acknowledged record at {offset} not whole on disk: {e}"))
}

/// Checks one acknowledgement: success, the next queue offset, the body on disk.
fn check_ack(segment: &Path, response: &RemotingCommand, expected_offset: i64, body: &[u8]) {
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let header = SendMessageResponseHeader::decode(response).expect("header");
    assert_eq!(
        header.queue_offset, expected_offset,
        "acknowledgements in append order"
    );
    let stored = stored_now(segment, response);
    assert_eq!(&stored.body()[..], body);
}

#[test]
fn async_acks_follow_the_completed_write_in_append_order() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::standalone();
    config.broker.base_port = 0;
    config.broker.namesrv_addrs = Vec::new();
    config.broker.shards = Some(1);
    config.store.path = data.path().to_owned();
    config.store.segment_bytes = 16 << 20;
    config.store.flush_mode = FlushMode::Async;
    let broker = match Broker::start(config) {
        Ok(broker) => broker,
        Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable: {error}");
            return;
        }
        Err(error) => panic!("broker failed to start: {error}"),
    };
    let addr: SocketAddr = broker.shard_addrs()[0];
    let segment = data
        .path()
        .join("shard-0")
        .join("commitlog")
        .join("00000000000000000000");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(NETWORK_WAIT))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");

    let mut next_offset = 0;
    // One send at a time: each is written at once and acknowledged once on disk.
    for i in 0..40 {
        let body = format!("single {i}");
        stream
            .write_all(&send(body.as_bytes()).encode_frame().expect("encode"))
            .expect("write");
        let response = read_frame(&mut stream);
        check_ack(&segment, &response, next_offset, body.as_bytes());
        next_offset += 1;
    }
    // Pipelined bursts: several group commits, acknowledgements still in order.
    for burst in 0..5 {
        let bodies: Vec<String> = (0..100)
            .map(|i| format!("burst {burst} message {i} {}", "x".repeat(i * 13)))
            .collect();
        let mut frames = Vec::new();
        for body in &bodies {
            frames.extend_from_slice(&send(body.as_bytes()).encode_frame().expect("encode"));
        }
        stream.write_all(&frames).expect("write burst");
        for body in &bodies {
            let response = read_frame(&mut stream);
            check_ack(&segment, &response, next_offset, body.as_bytes());
            next_offset += 1;
        }
    }
    drop(stream);
    broker.shutdown().expect("clean shutdown");
}
