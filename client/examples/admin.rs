//! A few `mqadmin`-style commands over the client's `Admin`.
//!
//! ```text
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example admin -- clusterList
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example admin -- updateTopic DefaultCluster TopicTest 8
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example admin -- topicStatus TopicTest
//! NAMESRV_ADDR=127.0.0.1:9876 cargo run -p ringmq-client --example admin -- consumerProgress example-consumer
//! ```

use ringmq_client::{Admin, ClientConfig, ClientInstance};
use ringmq_wire::body::topic::TopicConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let admin = Admin::new(ClientInstance::new(ClientConfig::new(namesrv))?);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["clusterList"] | [] => {
            let info = admin.cluster_info().await?;
            println!(
                "{:<22}  {:<22}  {:<4}  {:<22}",
                "#Cluster Name", "#Broker Name", "#BID", "#Addr"
            );
            for (cluster, names) in &info.cluster_addr_table {
                for name in names {
                    if let Some(broker) = info.broker_addr_table.get(name) {
                        for (id, addr) in &broker.broker_addrs {
                            println!("{cluster:<22}  {name:<22}  {id:<4}  {addr:<22}");
                        }
                    }
                }
            }
        }
        ["updateTopic", cluster, topic, queues] => {
            let config = TopicConfig::new(*topic, queues.parse()?);
            for addr in admin.create_topic_in_cluster(cluster, &config).await? {
                println!("create topic to {addr} success.");
            }
        }
        ["topicList"] => {
            for topic in admin.topic_list().await? {
                println!("{topic}");
            }
        }
        ["topicStatus", topic] => {
            let stats = admin.topic_stats(topic).await?;
            println!(
                "{:<32}  {:<4}  {:<20}  {:<20}",
                "#Broker Name", "#QID", "#Min Offset", "#Max Offset"
            );
            for (queue, offsets) in &stats.offset_table {
                println!(
                    "{:<32}  {:<4}  {:<20}  {:<20}",
                    queue.broker_name, queue.queue_id, offsets.min_offset, offsets.max_offset
                );
            }
        }
        ["consumerProgress", group] => {
            let stats = admin.consume_stats(group, None).await?;
            for (queue, offsets) in &stats.offset_table {
                println!(
                    "{:<32}  {:<32}  {:<4}  {:<20}  {:<20}  {}",
                    queue.topic,
                    queue.broker_name,
                    queue.queue_id,
                    offsets.broker_offset,
                    offsets.consumer_offset,
                    offsets.broker_offset - offsets.consumer_offset
                );
            }
            println!("Consume Diff Total: {}", stats.total_diff());
        }
        other => {
            eprintln!(
                "unknown command {other:?}: clusterList | updateTopic <cluster> <topic> <queues> | topicList | topicStatus <topic> | consumerProgress <group>"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
