//! Polls a topic with a lite pull consumer, committing after each batch, until it has been
//! idle for five seconds.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example lite_pull_consumer -- TopicTest
//! ```

use std::time::Duration;

use ringmq_client::{
    ClientConfig, ClientInstance, ConsumeFromWhere, LitePullConsumer, LitePullConsumerConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "TopicTest".into());
    let client = ClientInstance::new(ClientConfig::new(namesrv))?;
    let mut consumer = LitePullConsumer::new(
        client,
        LitePullConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            auto_commit: false,
            ..LitePullConsumerConfig::new("example-lite-consumer")
        },
    )?;
    consumer.subscribe(&topic, "*")?;
    consumer.start().await?;
    let mut idle = 0;
    while idle < 5 {
        let messages = consumer.poll(Duration::from_secs(1)).await?;
        if messages.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for message in &messages {
            println!(
                "{}:{} {}",
                message.queue_id,
                message.queue_offset,
                String::from_utf8_lossy(&message.body)
            );
        }
        consumer.commit().await?;
    }
    consumer.shutdown().await;
    Ok(())
}
