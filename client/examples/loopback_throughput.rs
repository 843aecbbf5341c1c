//! Producer throughput and latency against an in-process broker shard (memory store) and
//! NameServer on loopback: measures the client and the broker's request path, not a disk.
//!
//! ```text
//! cargo run --release -p ringmq-client --example loopback_throughput -- 50000 128 1024
//! #                                                      messages ─┘ window ┘ body bytes ┘
//! ```

#[path = "../tests/common/broker.rs"]
mod broker;

use std::time::{Duration, Instant};

use ringmq_client::{Admin, ClientConfig, ClientInstance, Message, Producer, ProducerConfig};
use ringmq_namesrv::{NameServer, NameServerConfig};
use ringmq_wire::body::topic::TopicConfig;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(50_000), |a| a.parse())?;
    let window: usize = args.next().map_or(Ok(128), |a| a.parse())?;
    let body_bytes: usize = args.next().map_or(Ok(1024), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("ringmq-loopback-{}", std::process::id()));
    let namesrv = NameServer::start(NameServerConfig {
        listen: "127.0.0.1:0".parse()?,
        kv_config_path: dir.join("kvConfig.json"),
        ..NameServerConfig::default()
    })
    .await?;
    let namesrv_addr = namesrv.local_addr().to_string();
    let broker_addr = broker::start_broker(namesrv_addr.clone());
    let client = ClientInstance::new(ClientConfig::new(namesrv_addr))?;
    Admin::new(client.clone())
        .create_topic(&broker_addr, &TopicConfig::new("Bench", 8))
        .await?;
    while client.nameserver().topic_route("Bench").await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let producer = Producer::new(
        client,
        ProducerConfig {
            max_in_flight: window,
            ..ProducerConfig::new("bench")
        },
    )?;
    let body = bytes::Bytes::from(vec![b'x'; body_bytes]);

    // Sequential: one send at a time.
    let sequential = (total / 10).max(1);
    let started = Instant::now();
    for _ in 0..sequential {
        producer.send(Message::new("Bench", body.clone())).await?;
    }
    let elapsed = started.elapsed();
    println!(
        "sequential: {sequential} sends in {elapsed:?} = {:.0} msg/s, mean {:?}",
        sequential as f64 / elapsed.as_secs_f64(),
        elapsed / sequential as u32
    );

    // Windowed: `window` sends in flight (spawned sends; the producer's window bounds them).
    let before = producer.stats();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for _ in 0..total {
        let producer = producer.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            producer.send(Message::new("Bench", body)).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let stats = producer.stats();
    println!(
        "windowed ({window} in flight): {total} sends in {elapsed:?} = {:.0} msg/s ({:.1} MiB/s); failed {}, p50 <= {:?} us, p99 <= {:?} us",
        total as f64 / elapsed.as_secs_f64(),
        (total * body_bytes) as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
        stats.failed - before.failed,
        stats.latency_us_quantile(0.5),
        stats.latency_us_quantile(0.99),
    );
    namesrv.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
