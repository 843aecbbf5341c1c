//! A rough throughput figure for the send path through the real connection loop and the
//! real store (async flush), one client connection, pipelined. Ignored by default: run with
//! `cargo test -p ringmq-broker --release --test server_throughput -- --ignored --nocapture`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::runtime::{RuntimeConfig, Shard, TcpListener, channel, spawn_local};
use ringmq_broker::server::net::{ShardServer, now_ms};
use ringmq_broker::server::service::ShardService;
use ringmq_broker::server::state::{ShardIdentity, ShardState};
use ringmq_broker::server::store_adapter::RealStore;
use ringmq_broker::store::StoreConfig;
use ringmq_broker::store::io::StdFs;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageRequestHeaderV2;
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode};

const MESSAGES: usize = 50_000;
const WINDOW: usize = 128;
const BODY_BYTES: usize = 1024;

fn send_frame(body: &[u8]) -> Vec<u8> {
    let header = SendMessageRequestHeaderV2 {
        a: "PG".into(),
        b: "Bench".into(),
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
    let mut request = RemotingCommand::request(RequestCode::SendMessageV2);
    header.encode_into(&mut request);
    request
        .with_body(body.to_vec())
        .encode_frame()
        .expect("encode")
        .to_vec()
}

fn client(addr: std::net::SocketAddr) -> Result<(usize, Duration), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let frame = send_frame(&[b'x'; BODY_BYTES]);
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut ok) = (0, 0);
    let start = Instant::now();
    while ok < MESSAGES {
        while sent < MESSAGES && sent - ok < WINDOW {
            stream.write_all(&frame).map_err(|e| e.to_string())?;
            sent += 1;
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        decoder.extend(&buf[..n]);
        while let Some(response) = decoder.next_command().map_err(|e| e.to_string())? {
            if response.code != 0 {
                return Err(format!("send failed: {:?}", response.remark));
            }
            ok += 1;
        }
    }
    Ok((ok, start.elapsed()))
}

#[test]
#[ignore = "measurement; run explicitly"]
fn pipelined_sends_per_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = match Shard::new(&RuntimeConfig::for_tests()) {
        Ok(shard) => shard,
        Err(error) => {
            eprintln!("skipping: {error}");
            return;
        }
    };
    let result = shard.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr();
        let config = BrokerConfig::standalone();
        let mut store_config = StoreConfig::new(dir.path());
        store_config.segment_bytes = 256 << 20;
        store_config.store_host = addr;
        let store = RealStore::open(StdFs, store_config).expect("store");
        let identity = ShardIdentity::of(&config, 0, addr);
        let state = ShardState::new(identity, Arc::new(config), store, now_ms());
        let server = ShardServer::new(ShardService::new(state));
        let serving = {
            let server = server.clone();
            spawn_local(async move { server.serve(vec![listener]).await })
        };
        let (tx, rx) = channel(1);
        std::thread::spawn(move || {
            let _ = tx.send_blocking(client(addr));
        });
        let result = rx.recv().await;
        server.stop();
        let _ = serving.await;
        result
    });
    let (count, elapsed) = result.expect("client ran").expect("client succeeded");
    assert_eq!(count, MESSAGES);
    println!(
        "{count} sends of {BODY_BYTES} B, window {WINDOW}: {:.0} msg/s ({:.1} MB/s) in {:.2?}",
        count as f64 / elapsed.as_secs_f64(),
        (count * BODY_BYTES) as f64 / elapsed.as_secs_f64() / 1e6,
        elapsed
    );
}
