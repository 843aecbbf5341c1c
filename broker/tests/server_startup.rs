//! `Broker::start` waits for every shard and fails, naming the shard and the reason, when a
//! shard cannot bind its ports or open its store; the shards that did start are stopped.

use std::net::TcpListener;

use ringmq_broker::config::BrokerConfig;
use ringmq_broker::server::broker::{Broker, BrokerError};

fn config(data: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig::standalone();
    config.broker.listen_addr = "127.0.0.1".parse().expect("ip");
    config.broker.base_port = 0;
    // Nobody listens there: registration fails quietly, which these tests do not need.
    config.broker.namesrv_addrs = vec!["127.0.0.1:1".into()];
    config.broker.shards = Some(1);
    config.store.path = data.to_owned();
    config.store.segment_bytes = 64 << 20;
    config
}

/// `None` when io_uring is unavailable here (the test is skipped).
fn start(config: BrokerConfig) -> Option<Result<Broker, BrokerError>> {
    match Broker::start(config) {
        Err(BrokerError::Runtime(error)) if error.io_uring_unavailable() => {
            eprintln!("skipping: io_uring unavailable: {error}");
            None
        }
        other => Some(other),
    }
}

#[test]
fn an_occupied_port_fails_the_start_naming_the_port() {
    let data = tempfile::tempdir().expect("tempdir");
    // A port of our own, held for the whole test; its VIP neighbour (−2) must be free for
    // the configuration to be valid, which any port ≥ 1026 satisfies syntactically.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let mut config = config(data.path());
    config.broker.base_port = port;
    let Some(outcome) = start(config) else { return };
    match outcome {
        Ok(broker) => {
            broker.shutdown().expect("shutdown");
            panic!("the broker started on an occupied port {port}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                matches!(error, BrokerError::Shard { shard: 0, .. }),
                "{message}"
            );
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        }
    }
    // The store was opened before the bind and closed cleanly after it failed.
    assert!(
        !data.path().join("shard-0").join("abort").exists(),
        "crash marker left behind"
    );
}

#[test]
fn an_unopenable_store_fails_the_start_naming_the_path() {
    let data = tempfile::tempdir().expect("tempdir");
    // The shard's directory is a plain file: the store cannot be opened.
    let shard_dir = data.path().join("shard-0");
    std::fs::write(&shard_dir, b"not a directory").expect("write");
    let Some(outcome) = start(config(data.path())) else {
        return;
    };
    match outcome {
        Ok(broker) => {
            broker.shutdown().expect("shutdown");
            panic!("the broker started on an unusable store");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                matches!(error, BrokerError::Shard { shard: 0, .. }),
                "{message}"
            );
            assert!(
                message.contains(&shard_dir.display().to_string()),
                "{message}"
            );
        }
    }
}

#[test]
fn a_started_broker_reports_every_shard_address() {
    let data = tempfile::tempdir().expect("tempdir");
    let Some(outcome) = start(config(data.path())) else {
        return;
    };
    let broker = outcome.expect("broker starts");
    let addrs = broker.shard_addrs().to_vec();
    assert_eq!(addrs.len(), 1);
    assert_ne!(addrs[0].port(), 0);
    // The shard accepts connections as soon as `start` returned.
    std::net::TcpStream::connect(addrs[0]).expect("shard accepts");
    broker.shutdown().expect("clean shutdown");
    assert!(!data.path().join("shard-0").join("abort").exists());
}
