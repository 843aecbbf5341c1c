//! Consumes a topic with a push consumer until Ctrl-C.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example push_consumer -- TopicTest
//! ```

use ringmq_client::{
    ClientConfig, ClientInstance, ConsumeFromWhere, ConsumeResult, MessageListener, PushConsumer,
    PushConsumerConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "TopicTest".into());
    let client = ClientInstance::new(ClientConfig::new(namesrv))?;
    let mut consumer = PushConsumer::new(
        client,
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            ..PushConsumerConfig::new("example-consumer")
        },
    )?;
    consumer.subscribe(&topic, "*")?;
    consumer
        .start(MessageListener::concurrently(|messages| async move {
            for message in messages {
                println!(
                    "{} queue={} offset={} tags={:?} body={}",
                    message.msg_id(),
                    message.queue_id,
                    message.queue_offset,
                    message.tags(),
                    String::from_utf8_lossy(&message.body)
                );
            }
            ConsumeResult::Success
        }))
        .await?;
    tokio::signal::ctrl_c().await?;
    consumer.shutdown().await;
    Ok(())
}
