//! The shard's connection loop on the real runtime, over real sockets: replies matched by
//! opaque in any order (a parked pull does not hold up later requests on its socket), a send
//! on one connection waking a pull parked on another, oneway requests unanswered, and a bad
//! frame closing only its own connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::runtime::{RuntimeConfig, Shard, TcpListener, channel, spawn_local};
use ringmq_broker::server::mem_store::MemStore;
use ringmq_broker::server::net::{ShardServer, now_ms};
use ringmq_broker::server::service::ShardService;
use ringmq_broker::server::state::{ShardIdentity, ShardState};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::offset::{
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use ringmq_wire::header::pull::{PullMessageRequestHeader, pull_sys_flag};
use ringmq_wire::header::send::SendMessageRequestHeaderV2;
use ringmq_wire::{RemotingCommand, RequestCode};

const NETWORK_WAIT: Duration = Duration::from_secs(20);

fn request<H: CommandHeader>(code: RequestCode, header: &H) -> RemotingCommand {
    let mut request = RemotingCommand::request(code);
    header.encode_into(&mut request);
    request
}

fn send(topic: &str, body: &[u8]) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PG".into(),
        b: topic.into(),
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
    };
    request(RequestCode::SendMessageV2, &header).with_body(body.to_vec())
}

fn pull(offset: i64) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: "G".into(),
        topic: "T".into(),
        queue_id: 0,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION,
        commit_offset: 0,
        suspend_timeout_millis: 15_000,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        request_source: None,
        proxy_forward_client_id: None,
        rpc: Default::default(),
    };
    request(RequestCode::PullMessage, &header)
}

fn query_offset() -> RemotingCommand {
    request(
        RequestCode::QueryConsumerOffset,
        &QueryConsumerOffsetRequestHeader {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            set_zero_if_not_found: None,
            rpc: Default::default(),
        },
    )
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(NETWORK_WAIT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

fn write(stream: &mut TcpStream, command: &RemotingCommand) -> Result<(), String> {
    let bytes = command.encode_frame().map_err(|e| e.to_string())?;
    stream.write_all(&bytes).map_err(|e| format!("write: {e}"))
}

fn read(stream: &mut TcpStream) -> Result<RemotingCommand, String> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("read length: {e}"))?;
    let mut content = vec![0u8; u32::from_be_bytes(len) as usize];
    stream
        .read_exact(&mut content)
        .map_err(|e| format!("read frame: {e}"))?;
    RemotingCommand::decode(content.into()).map_err(|e| format!("decode: {e}"))
}

fn check(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

/// The client side, on a plain thread with blocking sockets.
fn client_script(addr: SocketAddr) -> Result<(), String> {
    let mut a = connect(addr)?;
    let first = send("T", b"first");
    write(&mut a, &first)?;
    let answer = read(&mut a)?;
    check(
        answer.opaque == first.opaque && answer.code == 0,
        "first send answered",
    )?;

    // A pull with nothing new parks; the query behind it on the same socket is answered.
    let parked = pull(1);
    let query = query_offset();
    write(&mut a, &parked)?;
    write(&mut a, &query)?;
    let answer = read(&mut a)?;
    check(
        answer.opaque == query.opaque,
        "query answered while the pull is parked",
    )?;

    // A send on another connection wakes the parked pull.
    let mut b = connect(addr)?;
    let second = send("T", b"second");
    write(&mut b, &second)?;
    check(read(&mut b)?.code == 0, "second send answered")?;
    let woken = read(&mut a)?;
    check(
        woken.opaque == parked.opaque && woken.code == 0 && !woken.body.is_empty(),
        "parked pull answered with the new message",
    )?;

    // A oneway offset update gets no reply: the next frame is the query's answer.
    let mut update = request(
        RequestCode::UpdateConsumerOffset,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            commit_offset: 2,
            rpc: Default::default(),
        },
    );
    update.set_oneway();
    let query = query_offset();
    write(&mut a, &update)?;
    write(&mut a, &query)?;
    let answer = read(&mut a)?;
    check(answer.opaque == query.opaque, "oneway request not answered")?;
    let offset = QueryConsumerOffsetResponseHeader::decode(&answer)
        .map_err(|e| e.to_string())?
        .offset;
    check(offset == 2, "oneway update applied")?;

    // A bad frame closes only its own connection.
    let mut c = connect(addr)?;
    c.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1];
    let closed = matches!(c.read(&mut buf), Ok(0) | Err(_));
    check(closed, "bad frame closed its connection")?;
    let query = query_offset();
    write(&mut b, &query)?;
    check(
        read(&mut b)?.opaque == query.opaque,
        "other connection still served",
    )?;
    Ok(())
}

#[test]
fn connection_loop_serves_real_sockets() {
    let shard = match Shard::new(&RuntimeConfig::for_tests()) {
        Ok(shard) => shard,
        Err(error) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable here: {error}");
            return;
        }
        Err(error) => panic!("runtime failed to start: {error}"),
    };
    let outcome = shard.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr();
        let config = BrokerConfig::standalone();
        let identity = ShardIdentity::of(&config, 0, addr);
        let state = ShardState::new(identity, Arc::new(config), MemStore::new(), now_ms());
        let server = ShardServer::new(ShardService::new(state));
        let serving = {
            let server = server.clone();
            spawn_local(async move { server.serve(vec![listener]).await })
        };
        let (tx, rx) = channel(1);
        std::thread::spawn(move || {
            let _ = tx.send_blocking(client_script(addr));
        });
        let outcome = rx.recv().await;
        server.stop();
        let _ = serving.await;
        outcome
    });
    match outcome {
        Some(Ok(())) => {}
        Some(Err(failure)) => panic!("client script failed: {failure}"),
        None => panic!("client thread vanished"),
    }
}
