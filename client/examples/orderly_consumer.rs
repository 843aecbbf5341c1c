//! Consumes a topic in order, one queue at a time: the consumer locks each of its queues on
//! the broker (`LOCK_BATCH_MQ`, renewed every 20 s) and hands each queue's messages to the
//! listener one batch at a time, in offset order. Pair it with the `ordered_producer`
//! example. Runs until Ctrl-C.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example orderly_consumer -- TopicOrder
//! ```

use ringmq_client::{
    ClientConfig, ClientInstance, ConsumeFromWhere, MessageListener, OrderlyResult, PushConsumer,
    PushConsumerConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "TopicOrder".into());
    let mut consumer = PushConsumer::new(
        ClientInstance::new(ClientConfig::new(namesrv))?,
        PushConsumerConfig {
            consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
            ..PushConsumerConfig::new("example-orderly-consumer")
        },
    )?;
    consumer.subscribe(&topic, "*")?;
    consumer
        .start(MessageListener::orderly(|messages| async move {
            for message in messages {
                println!(
                    "{}:{} offset {} {}",
                    message.broker_name,
                    message.queue_id,
                    message.queue_offset,
                    String::from_utf8_lossy(&message.body)
                );
            }
            // `SuspendCurrentQueueAMoment` would retry these messages after a pause,
            // holding back the rest of the queue so that order is kept.
            OrderlyResult::Success
        }))
        .await?;
    tokio::signal::ctrl_c().await?;
    consumer.shutdown().await;
    Ok(())
}
