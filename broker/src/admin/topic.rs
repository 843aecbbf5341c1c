//! Topic commands: `updateTopic`, `deleteTopic`, `topicList`, `topicRoute`, `topicStatus`.

use std::collections::BTreeMap;

use ringmq_client::admin::Admin;
use ringmq_wire::body::topic::{TopicConfig, perm};
use serde_json::json;

use super::common::{AdminError, Common, Report, Target, parse_bool};
use super::{AdminCommand, format};

/// `updateTopic`: create or update a topic on one broker (`-b`) or every master of a
/// cluster (`-c`).
#[derive(Debug, clap::Parser)]
#[command(about = "Update or create topic.")]
pub struct UpdateTopic {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Read queue count.
    #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
    read_queue_nums: i32,
    /// Write queue count.
    #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
    write_queue_nums: i32,
    /// Permission: 2 (W), 4 (R), 6 (RW).
    #[arg(short = 'p', long = "perm", default_value_t = perm::READ_WRITE)]
    perm: i32,
    /// Ordered topic (true/false).
    #[arg(short = 'o', long = "order", value_parser = parse_bool)]
    order: Option<bool>,
    /// Attributes, `+key=value,+key2=value2` (5.x).
    #[arg(short = 'a', long = "attributes")]
    attributes: Option<String>,
}

/// Parses `+k=v,+k2=v2` into the attributes map (keys keep their `+`/`-` prefix, as
/// RocketMQ sends them).
pub(crate) fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, AdminError> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        if !(key.starts_with('+') || key.starts_with('-')) || key.len() < 2 {
            return Err(AdminError::Usage(format!(
                "attribute {item:?} must look like +key=value (add) or -key (delete)"
            )));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

impl AdminCommand for UpdateTopic {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        if ![perm::WRITE, perm::READ, perm::READ_WRITE].contains(&self.perm) {
            return Err(AdminError::Usage(format!(
                "-p {} is not a permission: use 2 (write), 4 (read) or 6 (read and write)",
                self.perm
            )));
        }
        let mut config = TopicConfig::new(self.topic.trim(), self.read_queue_nums);
        config.write_queue_nums = self.write_queue_nums;
        config.perm = self.perm;
        config.order = self.order.unwrap_or(false);
        if let Some(attributes) = &self.attributes {
            config.attributes = parse_attributes(attributes)?;
        }
        let addrs = self.target.brokers(admin).await?;
        for addr in &addrs {
            admin.create_topic(addr, &config).await?;
        }
        let mut text = String::new();
        for addr in &addrs {
            text.push_str(&format!("create topic to {addr} success.\n"));
        }
        text.push_str(&format::topic_config(&config));
        text.push('\n');
        Ok(Report::new(
            text,
            json!({ "brokers": addrs, "topicConfig": config }),
        ))
    }
}

/// `deleteTopic`: delete a topic from every master of a cluster and from every NameServer.
#[derive(Debug, clap::Parser)]
#[command(about = "Delete topic from broker and NameServer.")]
pub struct DeleteTopic {
    #[command(flatten)]
    common: Common,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Cluster name.
    #[arg(short = 'c', long = "clusterName")]
    cluster: String,
}

impl AdminCommand for DeleteTopic {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let (topic, cluster) = (self.topic.trim(), self.cluster.trim());
        admin.delete_topic(cluster, topic).await?;
        let text = format!(
            "delete topic [{topic}] from cluster [{cluster}] success.\n\
             delete topic [{topic}] from NameServer success.\n"
        );
        Ok(Report::new(
            text,
            json!({ "topic": topic, "cluster": cluster, "deleted": true }),
        ))
    }
}

/// `topicList`: every topic the NameServer knows; `-c` adds the cluster of each.
#[derive(Debug, clap::Parser)]
#[command(about = "Fetch all topic list from name server.")]
pub struct TopicList {
    #[command(flatten)]
    common: Common,
    /// Show the cluster of each topic and the groups consuming it (one row per group).
    #[arg(short = 'c', long = "clusterModel")]
    cluster_model: bool,
}

impl AdminCommand for TopicList {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        if !self.cluster_model {
            let topics: Vec<String> = admin.topic_list().await?.into_iter().collect();
            let text = format::topic_list(&topics);
            return Ok(Report::new(text, json!({ "topics": topics })));
        }
        let info = admin.cluster_info().await?;
        let mut rows = Vec::new();
        for cluster in info.cluster_addr_table.keys() {
            for topic in admin.topics_by_cluster(cluster).await? {
                // mqadmin skips retry and dead-letter topics in this view.
                if topic.starts_with("%RETRY%") || topic.starts_with("%DLQ%") {
                    continue;
                }
                // As mqadmin: a topic whose consumers cannot be asked still gets its row.
                let groups = admin
                    .topic_consumed_by(&topic)
                    .await
                    .unwrap_or_else(|error| {
                        eprintln!("warning: cannot list the consumer groups of {topic}: {error}");
                        Default::default()
                    });
                if groups.is_empty() {
                    rows.push((cluster.clone(), topic.clone(), String::new()));
                }
                for group in groups {
                    rows.push((cluster.clone(), topic.clone(), group));
                }
            }
        }
        let text = format::topic_list_by_cluster(&rows);
        let json_rows: Vec<_> = rows
            .iter()
            .map(|(c, t, g)| json!({ "cluster": c, "topic": t, "consumerGroup": g }))
            .collect();
        Ok(Report::new(text, json!({ "topics": json_rows })))
    }
}

/// `topicRoute`: the route the NameServer holds for a topic, as JSON or (`-l`) a table.
#[derive(Debug, clap::Parser)]
#[command(about = "Examine topic route info.")]
pub struct TopicRoute {
    #[command(flatten)]
    common: Common,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Print a table instead of JSON.
    #[arg(short = 'l', long = "list")]
    list: bool,
}

impl AdminCommand for TopicRoute {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let route = admin.topic_route(self.topic.trim()).await?;
        let value = serde_json::to_value(&route)
            .map_err(|e| AdminError::failed(format!("cannot render the route as JSON: {e}")))?;
        let text = if self.list {
            format::topic_route_table(&route)
        } else {
            let pretty = serde_json::to_string_pretty(&value)
                .map_err(|e| AdminError::failed(format!("cannot render the route: {e}")))?;
            format!("{pretty}\n")
        };
        Ok(Report::new(text, value))
    }
}

/// `topicStatus`: per-queue min/max offset and last update time.
#[derive(Debug, clap::Parser)]
#[command(about = "Examine topic Status info.")]
pub struct TopicStatus {
    #[command(flatten)]
    common: Common,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// Cluster name (accepted for compatibility; the topic's route decides the brokers).
    #[arg(short = 'c', long = "cluster")]
    cluster: Option<String>,
}

impl AdminCommand for TopicStatus {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let stats = admin.topic_stats(self.topic.trim()).await?;
        let queues: Vec<_> = stats
            .offset_table
            .iter()
            .map(|(q, o)| {
                json!({
                    "brokerName": q.broker_name,
                    "queueId": q.queue_id,
                    "minOffset": o.min_offset,
                    "maxOffset": o.max_offset,
                    "lastUpdateTimestamp": o.last_update_timestamp,
                })
            })
            .collect();
        Ok(Report::new(
            format::topic_status_table(&stats),
            json!({ "topic": self.topic.trim(), "queues": queues, "topicPutTps": stats.topic_put_tps }),
        ))
    }
}

/// `updateTopicPerm`: change only a topic's permission, on one broker or a cluster.
#[derive(Debug, clap::Parser)]
#[command(about = "Update topic perm.")]
pub struct UpdateTopicPerm {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// New permission: 2 (W), 4 (R), 6 (RW).
    #[arg(short = 'p', long = "perm")]
    perm: i32,
}

impl AdminCommand for UpdateTopicPerm {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        if ![perm::WRITE, perm::READ, perm::READ_WRITE].contains(&self.perm) {
            return Err(AdminError::Usage(format!(
                "-p {} is not a permission: use 2 (write), 4 (read) or 6 (read and write)",
                self.perm
            )));
        }
        let topic = self.topic.trim();
        let addrs = self.target.brokers(admin).await?;
        let (mut text, mut changed) = (String::new(), Vec::new());
        for addr in addrs {
            let mut config = admin.topic_config(&addr, topic).await?;
            let old = config.perm;
            if old == self.perm {
                text.push_str("new perm equals to the old one!\n");
                continue;
            }
            config.perm = self.perm;
            admin.create_topic(&addr, &config).await?;
            text.push_str(&format!(
                "update topic perm from {old} to {} in {addr} success.\n",
                self.perm
            ));
            changed.push(json!({ "broker": addr, "oldPerm": old, "perm": self.perm }));
        }
        Ok(Report::new(
            text,
            json!({ "topic": topic, "changed": changed }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_like_mqadmin() {
        let parsed = parse_attributes("+message.type=FIFO, -old").expect("valid");
        assert_eq!(parsed["+message.type"], "FIFO");
        assert_eq!(parsed["-old"], "");
        assert!(parse_attributes("message.type=FIFO").is_err());
    }
}
