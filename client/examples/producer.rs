//! Sends messages to a topic and prints where each was stored.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example producer -- TopicTest 10
//! ```

use std::time::Instant;

use ringmq_client::{ClientConfig, ClientInstance, Message, Producer, ProducerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "TopicTest".into());
    let count: usize = args.next().map_or(Ok(10), |n| n.parse())?;

    let client = ClientInstance::new(ClientConfig::new(namesrv))?;
    let producer = Producer::new(client, ProducerConfig::new("example-producer"))?;

    // Awaited one by one: synchronous sends.
    for i in 0..count {
        let message = Message::new(&topic, format!("hello #{i}"))
            .with_tags("TagA")
            .with_keys([format!("key-{i}")]);
        let result = producer.send(message).await?;
        println!(
            "{:?} msgId={} offsetMsgId={} queue={} offset={}",
            result.status, result.msg_id, result.offset_msg_id, result.queue, result.queue_offset
        );
    }

    // Spawned: asynchronous sends, bounded by the producer's in-flight window.
    let started = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let producer = producer.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                producer
                    .send(Message::new(topic, format!("async #{i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let stats = producer.stats();
    println!(
        "{count} async sends in {:?}; sent={} failed={} p99<={:?}us",
        started.elapsed(),
        stats.sent,
        stats.failed,
        stats.latency_us_quantile(0.99)
    );
    Ok(())
}
