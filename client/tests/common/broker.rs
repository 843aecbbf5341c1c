//! An in-process broker shard for tests and examples: the broker's I/O-free
//! `ShardService` over a `MemStore`, driven over tokio sockets on a thread of its own (the
//! service is single-threaded), registered with a NameServer using the broker's own
//! `REGISTER_BROKER` request (re-sent whenever the shard's topics change).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::ConnId;
use ringmq_broker::server::mem_store::MemStore;
use ringmq_broker::server::net::now_ms;
use ringmq_broker::server::register::register_request;
use ringmq_broker::server::service::{Outbound, ShardService};
use ringmq_broker::server::state::{ShardIdentity, ShardState};
use ringmq_client::{RemotingClient, RemotingConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

type Service = Rc<RefCell<ShardService<MemStore>>>;
type Writers = Rc<RefCell<HashMap<ConnId, mpsc::UnboundedSender<BytesMut>>>>;

fn flush(service: &Service, writers: &Writers) {
    let mut service = service.borrow_mut();
    for conn in service.writable() {
        // A MemStore keeps records in memory: its pull bodies are never file spans.
        if let Some(Outbound::Bytes(bytes)) = service.take_writes(conn)
            && let Some(writer) = writers.borrow().get(&conn)
        {
            let _ = writer.send(bytes);
        }
    }
}

/// Runs one broker shard on its own thread; returns its address.
pub fn start_broker(namesrv: String) -> String {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr: SocketAddr = listener.local_addr().expect("addr");
            let mut config = BrokerConfig::standalone();
            config.broker.namesrv_addrs = vec![namesrv.clone()];
            let identity = ShardIdentity::of(&config, 0, addr);
            let state = ShardState::new(identity, Arc::new(config), MemStore::new(), now_ms());
            let service: Service = Rc::new(RefCell::new(ShardService::new(state)));
            let writers: Writers = Rc::default();
            // Registration keeps its connection open: the NameServer drops a broker whose
            // connection closes.
            let registrar = RemotingClient::new(RemotingConfig::default());
            let register = {
                let request = register_request(&service.borrow().state);
                registrar.invoke_ok(&namesrv, request, WAIT)
            };
            register.await.expect("registered");
            addr_tx.send(addr.to_string()).expect("report addr");

            // Ticks: long-poll expiry, deferred acks, re-registration after topic changes.
            {
                let service = service.clone();
                let writers = writers.clone();
                tokio::task::spawn_local(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        let closed = service.borrow_mut().tick(now_ms());
                        for (conn, _) in closed {
                            service.borrow_mut().close(conn);
                            writers.borrow_mut().remove(&conn);
                        }
                        flush(&service, &writers);
                        let reregister = service.borrow_mut().state.take_register_request();
                        if reregister {
                            let request = register_request(&service.borrow().state);
                            let _ = registrar.invoke_ok(&namesrv, request, WAIT).await;
                        }
                    }
                });
            }
            while let Ok((stream, remote)) = listener.accept().await {
                let Some(conn) = service.borrow_mut().accept(remote) else {
                    continue;
                };
                let (mut read, mut write) = stream.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<BytesMut>();
                writers.borrow_mut().insert(conn, tx);
                tokio::task::spawn_local(async move {
                    while let Some(bytes) = rx.recv().await {
                        if write.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
                let service = service.clone();
                let writers = writers.clone();
                tokio::task::spawn_local(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let outcome = service.borrow_mut().on_read(conn, &buf[..n], now_ms());
                        flush(&service, &writers);
                        if outcome.is_err() {
                            break;
                        }
                    }
                    service.borrow_mut().close(conn);
                    writers.borrow_mut().remove(&conn);
                });
            }
        });
    });
    addr_rx.recv_timeout(WAIT).expect("broker started")
}
