//! Sends orders whose messages must be consumed in order: every message of one order id goes
//! to the same queue (`send_ordered` hashes the key, as RocketMQ's
//! `SelectMessageQueueByHash` does), and a queue is consumed in offset order by an orderly
//! consumer (see the `orderly_consumer` example).
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example ordered_producer -- TopicOrder
//! ```

use ringmq_client::{ClientConfig, ClientInstance, Message, Producer, ProducerConfig};

const STEPS: [&str; 4] = ["created", "paid", "shipped", "delivered"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "TopicOrder".into());
    let producer = Producer::new(
        ClientInstance::new(ClientConfig::new(namesrv))?,
        ProducerConfig::new("example-ordered-producer"),
    )?;
    for step in STEPS {
        for order in 0..8 {
            let order_id = format!("order-{order}");
            let message = Message::new(topic.clone(), format!("{order_id} {step}"))
                .with_tags(step)
                .with_keys([order_id.clone()]);
            let result = producer.send_ordered(message, &order_id).await?;
            println!(
                "{order_id} {step:<9} -> {} queue {} offset {}",
                result.queue.broker_name, result.queue.queue_id, result.queue_offset
            );
        }
    }
    producer.shutdown();
    Ok(())
}
