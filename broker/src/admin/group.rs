//! Consumer group commands: `updateSubGroup`, `deleteSubGroup`, `consumerProgress`,
//! `consumerConnection`.

use ringmq_client::admin::Admin;
use ringmq_wire::body::subscription::{GroupRetryPolicy, SubscriptionGroupConfig};
use serde_json::json;

use super::common::{AdminError, Common, Report, Target, parse_bool};
use super::{AdminCommand, format};

/// `updateSubGroup`: create or change a subscription group on one broker or a cluster.
#[derive(Debug, clap::Parser)]
#[command(about = "Update or create subscription group.")]
pub struct UpdateSubGroup {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
    /// Group name.
    #[arg(short = 'g', long = "groupName")]
    group: String,
    /// Consume enabled (true/false).
    #[arg(short = 's', long = "consumeEnable", value_parser = parse_bool)]
    consume_enable: Option<bool>,
    /// Consume from the queue's minimum offset when new (true/false).
    #[arg(short = 'm', long = "consumeFromMinEnable", value_parser = parse_bool)]
    consume_from_min_enable: Option<bool>,
    /// Broadcast consumption allowed (true/false).
    #[arg(short = 'd', long = "consumeBroadcastEnable", value_parser = parse_bool)]
    consume_broadcast_enable: Option<bool>,
    /// Orderly consumption (true/false).
    #[arg(short = 'o', long = "consumeMessageOrderly", value_parser = parse_bool)]
    consume_message_orderly: Option<bool>,
    /// Retry queue count.
    #[arg(short = 'q', long = "retryQueueNums")]
    retry_queue_nums: Option<i32>,
    /// Maximum redeliveries before the dead-letter queue.
    #[arg(short = 'r', long = "retryMaxTimes")]
    retry_max_times: Option<i32>,
    /// Group retry policy, as JSON (5.x `GroupRetryPolicy`).
    #[arg(short = 'p', long = "groupRetryPolicy")]
    group_retry_policy: Option<String>,
    /// Broker id to consume from.
    #[arg(short = 'i', long = "brokerId")]
    broker_id: Option<i64>,
    /// Broker id to consume from when consumption is slow.
    #[arg(short = 'w', long = "whichBrokerWhenConsumeSlowly")]
    which_broker_when_consume_slowly: Option<i64>,
    /// Notify consumers when the group's members change (true/false).
    #[arg(short = 'a', long = "notifyConsumerIdsChanged", value_parser = parse_bool)]
    notify_consumer_ids_changed: Option<bool>,
}

impl UpdateSubGroup {
    /// The config to send: mqadmin's defaults (consumeFromMinEnable=false,
    /// broadcast=false) overridden by the options given.
    fn config(&self) -> Result<SubscriptionGroupConfig, AdminError> {
        let mut c = SubscriptionGroupConfig::new(self.group.trim());
        c.consume_from_min_enable = false;
        c.consume_broadcast_enable = false;
        if let Some(v) = self.consume_enable {
            c.consume_enable = v;
        }
        if let Some(v) = self.consume_from_min_enable {
            c.consume_from_min_enable = v;
        }
        if let Some(v) = self.consume_broadcast_enable {
            c.consume_broadcast_enable = v;
        }
        if let Some(v) = self.consume_message_orderly {
            c.consume_message_orderly = v;
        }
        if let Some(v) = self.retry_queue_nums {
            c.retry_queue_nums = v;
        }
        if let Some(v) = self.retry_max_times {
            c.retry_max_times = v;
        }
        if let Some(v) = self.broker_id {
            c.broker_id = v;
        }
        if let Some(v) = self.which_broker_when_consume_slowly {
            c.which_broker_when_consume_slowly = v;
        }
        if let Some(v) = self.notify_consumer_ids_changed {
            c.notify_consumer_ids_changed_enable = v;
        }
        if let Some(policy) = &self.group_retry_policy {
            c.group_retry_policy =
                serde_json::from_str::<GroupRetryPolicy>(policy).map_err(|e| {
                    AdminError::Usage(format!("-p is not a GroupRetryPolicy JSON document: {e}"))
                })?;
        }
        Ok(c)
    }
}

impl AdminCommand for UpdateSubGroup {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let config = self.config()?;
        let addrs = self.target.brokers(admin).await?;
        for addr in &addrs {
            admin.create_subscription_group(addr, &config).await?;
        }
        let mut text = String::new();
        for addr in &addrs {
            text.push_str(&format!("create subscription group to {addr} success.\n"));
        }
        text.push_str(&format::subscription_group(&config));
        text.push('\n');
        Ok(Report::new(
            text,
            json!({ "brokers": addrs, "subscriptionGroupConfig": config }),
        ))
    }
}

/// `deleteSubGroup`: delete a subscription group from one broker or a cluster.
#[derive(Debug, clap::Parser)]
#[command(about = "Delete subscription group from broker.")]
pub struct DeleteSubGroup {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
    /// Group name.
    #[arg(short = 'g', long = "groupName")]
    group: String,
    /// Also remove the group's committed offsets (true/false).
    #[arg(short = 'r', long = "removeOffset", value_parser = parse_bool, default_value = "false")]
    remove_offset: bool,
}

impl AdminCommand for DeleteSubGroup {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let group = self.group.trim();
        let mut text = String::new();
        for addr in self.target.brokers(admin).await? {
            admin
                .delete_subscription_group(&addr, group, self.remove_offset)
                .await?;
            match self
                .target
                .cluster
                .as_deref()
                .filter(|_| !self.target.is_one_broker())
            {
                Some(cluster) => text.push_str(&format!(
                    "delete subscription group [{group}] from broker [{addr}] in cluster [{}] \
                     success.\n",
                    cluster.trim()
                )),
                None => text.push_str(&format!(
                    "delete subscription group [{group}] from broker [{addr}] success.\n"
                )),
            }
        }
        Ok(Report::new(
            text,
            json!({ "group": group, "deleted": true, "removeOffset": self.remove_offset }),
        ))
    }
}

/// `consumerProgress`: with `-g`, per-queue broker offset, consumer offset and lag of a
/// group; without, one summary row per group (found from the `%RETRY%` topics, as mqadmin).
#[derive(Debug, clap::Parser)]
#[command(about = "Query consumer's progress, speed.")]
pub struct ConsumerProgress {
    #[command(flatten)]
    common: Common,
    /// Consumer group (default: every group, one summary row each).
    #[arg(short = 'g', long = "groupName")]
    group: Option<String>,
    /// Only this topic.
    #[arg(short = 't', long = "topicName")]
    topic: Option<String>,
    /// Cluster name (accepted for compatibility; the group's brokers are found from its
    /// retry topic).
    #[arg(short = 'c', long = "cluster")]
    cluster: Option<String>,
}

impl ConsumerProgress {
    async fn one_group(&self, admin: &Admin, group: &str) -> Result<Report, AdminError> {
        let stats = admin
            .consume_stats(group, self.topic.as_deref().map(str::trim))
            .await?;
        let queues: Vec<_> = stats
            .offset_table
            .iter()
            .map(|(q, o)| {
                json!({
                    "topic": q.topic,
                    "brokerName": q.broker_name,
                    "queueId": q.queue_id,
                    "brokerOffset": o.broker_offset,
                    "consumerOffset": o.consumer_offset,
                    "pullOffset": o.pull_offset,
                    "diff": o.broker_offset - o.consumer_offset,
                    "inflight": o.pull_offset - o.consumer_offset,
                    "lastTimestamp": o.last_timestamp,
                })
            })
            .collect();
        let diff_total: i64 = stats
            .offset_table
            .values()
            .map(|o| o.broker_offset - o.consumer_offset)
            .sum();
        Ok(Report::new(
            format::consumer_progress_table(&stats),
            json!({
                "group": group,
                "queues": queues,
                "consumeTps": stats.consume_tps,
                "diffTotal": diff_total,
            }),
        ))
    }

    /// Every group with a retry topic, as mqadmin lists them: a group whose stats or
    /// connections cannot be read is shown offline / with no lag rather than failing the
    /// whole listing (a warning names it on stderr).
    async fn all_groups(&self, admin: &Admin) -> Result<Report, AdminError> {
        let groups: Vec<String> = admin
            .topic_list()
            .await?
            .into_iter()
            .filter_map(|t| t.strip_prefix(RETRY_PREFIX).map(str::to_owned))
            .collect();
        let mut rows = Vec::with_capacity(groups.len());
        for group in groups {
            let mut row = format::GroupProgressRow {
                group: group.clone(),
                count: 0,
                version: 0,
                consume_type: Default::default(),
                message_model: Default::default(),
                tps: 0,
                diff_total: 0,
            };
            match admin.consume_stats(&group, None).await {
                Ok(stats) => {
                    row.tps = stats.consume_tps as i64;
                    row.diff_total = stats
                        .offset_table
                        .values()
                        .map(|o| o.broker_offset - o.consumer_offset)
                        .sum();
                }
                Err(error) => eprintln!("warning: no consume stats for group {group}: {error}"),
            }
            // No consumer online is the common reason this fails: the row says OFFLINE.
            if let Ok(cc) = admin.consumer_connection(&group).await {
                row.count = cc.connection_set.len();
                row.version = cc
                    .connection_set
                    .iter()
                    .map(|c| c.version)
                    .min()
                    .unwrap_or(0);
                row.consume_type = cc.consume_type;
                row.message_model = cc.message_model;
            }
            rows.push(row);
        }
        // mqadmin's order: most consumers first, then largest lag.
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.diff_total.cmp(&a.diff_total))
                .then(a.group.cmp(&b.group))
        });
        let json_rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "group": r.group,
                    "count": r.count,
                    "version": r.version,
                    "consumeType": r.consume_type.name(),
                    "messageModel": r.message_model.name(),
                    "consumeTps": r.tps,
                    "diffTotal": r.diff_total,
                })
            })
            .collect();
        Ok(Report::new(
            format::group_progress_table(&rows),
            json!({ "groups": json_rows }),
        ))
    }
}

/// Prefix of a group's retry topic (`%RETRY%<group>`).
const RETRY_PREFIX: &str = "%RETRY%";

impl AdminCommand for ConsumerProgress {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        match self.group.as_deref().map(str::trim) {
            Some(group) => self.one_group(admin, group).await,
            None => self.all_groups(admin).await,
        }
    }
}

/// `consumerConnection`: the online consumers of a group and their subscriptions.
#[derive(Debug, clap::Parser)]
#[command(about = "Query consumer's socket connection, client version and subscription.")]
pub struct ConsumerConnection {
    #[command(flatten)]
    common: Common,
    /// Consumer group.
    #[arg(short = 'g', long = "consumerGroup")]
    group: String,
    /// Ask only this broker (host:port); default: the group's brokers in turn.
    #[arg(short = 'b', long = "brokerAddr")]
    broker: Option<String>,
}

impl AdminCommand for ConsumerConnection {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let group = self.group.trim();
        let cc = match self.broker.as_deref().map(str::trim) {
            Some(addr) => admin.consumer_connection_on(addr, group).await?,
            None => admin.consumer_connection(group).await?,
        };
        let value = serde_json::to_value(&cc).map_err(|e| {
            AdminError::failed(format!("cannot render the connections as JSON: {e}"))
        })?;
        Ok(Report::new(format::consumer_connection(&cc), value))
    }
}
