//! `producerConnection` and `consumerStatus`: the clients connected to the brokers.
//!
//! `consumerStatus` asks each consumer client for its runtime state through a broker it is
//! connected to (`GET_CONSUMER_RUNNING_INFO`, which the broker relays to the client). As in
//! mqadmin: without `-i` it lists the group's clients, then checks that they subscribe the
//! same way and that no queue is held by two of them; with `-i clientId` it prints that
//! client's state (`ConsumerRunningInfo.formatString`). Unlike mqadmin it writes no
//! per-client files: the last column of the listing is the number of queues the client
//! holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ringmq_client::admin::Admin;
use ringmq_wire::body::client::ConsumerRunningInfo;
use ringmq_wire::body::consumer::ProducerConnection;
use serde_json::json;

use super::{AdminCommand, AdminError, Common, Report};

/// `producerConnection`: the live producers of a group.
#[derive(Debug, clap::Parser)]
#[command(about = "Query producer's socket connection and client version.")]
pub struct ProducerConnectionCmd {
    #[command(flatten)]
    common: Common,
    /// Producer group.
    #[arg(short = 'g', long = "producerGroup")]
    group: String,
    /// A topic the group sends to (its brokers are asked).
    #[arg(short = 't', long = "topic")]
    topic: String,
}

impl AdminCommand for ProducerConnectionCmd {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let pc = admin
            .producer_connection(self.group.trim(), self.topic.trim())
            .await?;
        let value = serde_json::to_value(&pc).map_err(|e| {
            AdminError::failed(format!("cannot render the connections as JSON: {e}"))
        })?;
        Ok(Report::new(producer_connection(&pc), value))
    }
}

/// mqadmin's `%04d  %-32s %-22s %-8s %s` per connection (the version as its ordinal).
pub fn producer_connection(pc: &ProducerConnection) -> String {
    let mut out = String::new();
    for (i, conn) in pc.connection_set.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:04}  {:<32} {:<22} {:<8} {}",
            i + 1,
            conn.client_id,
            conn.client_addr,
            conn.language.name(),
            conn.version
        );
    }
    out
}

/// `consumerStatus`: consumer clients' runtime state, asked through the broker.
#[derive(Debug, clap::Parser)]
#[command(about = "Query and display consumer's internal data structures.")]
pub struct ConsumerStatus {
    #[command(flatten)]
    common: Common,
    /// Consumer group.
    #[arg(short = 'g', long = "consumerGroup")]
    group: String,
    /// One client (its client id); default: every client of the group.
    #[arg(short = 'i', long = "clientId")]
    client_id: Option<String>,
    /// Ask through this broker (host:port); default: the group's brokers in turn.
    #[arg(short = 'b', long = "brokerAddr")]
    broker: Option<String>,
    /// Ask for the client's thread dump (Java clients).
    #[arg(short = 's', long = "jstackEnable")]
    jstack: bool,
}

impl ConsumerStatus {
    async fn running_info(
        &self,
        admin: &Admin,
        client_id: &str,
    ) -> Result<ConsumerRunningInfo, AdminError> {
        let group = self.group.trim();
        Ok(match self.broker.as_deref().map(str::trim) {
            Some(addr) => {
                admin
                    .consumer_running_info(addr, group, client_id, self.jstack)
                    .await?
            }
            None => {
                admin
                    .consumer_running_info_any(group, client_id, self.jstack)
                    .await?
                    .1
            }
        })
    }
}

impl AdminCommand for ConsumerStatus {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        if let Some(client_id) = self.client_id.as_deref().map(str::trim) {
            let info = self.running_info(admin, client_id).await?;
            return Ok(Report::new(
                format_running_info(&info),
                running_info_json(&info),
            ));
        }
        let group = self.group.trim();
        let cc = match self.broker.as_deref().map(str::trim) {
            Some(addr) => admin.consumer_connection_on(addr, group).await?,
            None => admin.consumer_connection(group).await?,
        };
        let mut text = format!(
            "{:<10} {:<40} {:<20} {}\n",
            "#Index", "#ClientId", "#Version", "#Queues"
        );
        let mut infos = BTreeMap::new();
        let mut rows = Vec::new();
        for conn in &cc.connection_set {
            match self.running_info(admin, &conn.client_id).await {
                Ok(info) => {
                    let _ = writeln!(
                        text,
                        "{:<10} {:<40} {:<20} {}",
                        infos.len() + 1,
                        conn.client_id,
                        conn.version,
                        info.mq_table.len()
                    );
                    rows.push(json!({
                        "clientId": conn.client_id,
                        "version": conn.version,
                        "info": running_info_json(&info),
                    }));
                    infos.insert(conn.client_id.clone(), info);
                }
                Err(error) => {
                    let _ = writeln!(text, "{:<10} {:<40} ERROR {error}", "-", conn.client_id);
                    rows.push(json!({ "clientId": conn.client_id, "error": error.to_string() }));
                }
            }
        }
        let analysis = analyze(&infos);
        if let Some(analysis) = &analysis {
            text.push_str(&analysis.text);
        }
        Ok(Report::new(
            text,
            json!({
                "group": group,
                "clients": rows,
                "sameSubscription": analysis.as_ref().map(|a| a.same_subscription),
                "rebalanceOk": analysis.as_ref().map(|a| a.rebalance_ok),
            }),
        ))
    }
}

/// The group-wide checks of mqadmin's `consumerStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every client subscribes the same topics with the same expressions.
    pub same_subscription: bool,
    /// No queue is held by two clients.
    pub rebalance_ok: bool,
    /// What mqadmin prints for them.
    pub text: String,
}

/// mqadmin's `analyzeSubscription` and `analyzeRebalance`; `None` with no client answer.
pub fn analyze(infos: &BTreeMap<String, ConsumerRunningInfo>) -> Option<Analysis> {
    let first = infos.values().next()?;
    let subscriptions = |info: &ConsumerRunningInfo| -> BTreeSet<(String, String)> {
        info.subscription_set
            .iter()
            .map(|s| (s.topic.clone(), s.sub_string.clone()))
            .collect()
    };
    let reference = subscriptions(first);
    let same_subscription = infos.values().all(|i| subscriptions(i) == reference);
    let mut held = BTreeSet::new();
    let rebalance_ok = same_subscription
        && infos
            .values()
            .flat_map(|i| i.mq_table.keys())
            .all(|mq| held.insert(mq.clone()));
    let text = if same_subscription {
        format!(
            "\n\nSame subscription in the same group of consumer\n\nRebalance {}\n",
            if rebalance_ok { "OK" } else { "Failed" }
        )
    } else {
        "\n\nWARN: Different subscription in the same group of consumer!!!\n".to_owned()
    };
    Some(Analysis {
        same_subscription,
        rebalance_ok,
        text,
    })
}

/// `ConsumerRunningInfo.formatString`: properties, subscriptions, offsets, queue details,
/// rates and the thread dump when present.
pub fn format_running_info(info: &ConsumerRunningInfo) -> String {
    let mut out = String::from("#Consumer Properties#\n");
    for (k, v) in &info.properties {
        let _ = writeln!(out, "{k:<40}: {v}");
    }
    out.push_str("\n\n#Consumer Subscription#\n");
    for (i, s) in info.subscription_set.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:03} Topic: {:<40} ClassFilter: {:<8} SubExpression: {}",
            i + 1,
            s.topic,
            s.class_filter_mode,
            s.sub_string
        );
    }
    out.push_str("\n\n#Consumer Offset#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:<32}  {:<4}  {:<20}",
        "#Topic", "#Broker Name", "#QID", "#Consumer Offset"
    );
    for (mq, pq) in &info.mq_table {
        let _ = writeln!(
            out,
            "{:<64}  {:<32}  {:<4}  {:<20}",
            mq.topic, mq.broker_name, mq.queue_id, pq.commit_offset
        );
    }
    out.push_str("\n\n#Consumer MQ Detail#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:<32}  {:<4}  {:<10}  {:<10}  {:<8}  #LastPull",
        "#Topic", "#Broker Name", "#QID", "#Cached", "#MaxOffset", "#Locked"
    );
    for (mq, pq) in &info.mq_table {
        let _ = writeln!(
            out,
            "{:<64}  {:<32}  {:<4}  {:<10}  {:<10}  {:<8}  {}",
            mq.topic,
            mq.broker_name,
            mq.queue_id,
            pq.cached_msg_count,
            pq.cached_msg_max_offset,
            pq.locked,
            pq.last_pull_timestamp
        );
    }
    out.push_str("\n\n#Consumer RT&TPS#\n");
    let _ = writeln!(
        out,
        "{:<64}  {:>14} {:>14} {:>14} {:>14} {:>18} {:>25}",
        "#Topic",
        "#Pull RT",
        "#Pull TPS",
        "#Consume RT",
        "#ConsumeOK TPS",
        "#ConsumeFailed TPS",
        "#ConsumeFailedMsgsInHour"
    );
    for (topic, s) in &info.status_table {
        let _ = writeln!(
            out,
            "{:<64}  {:>14.2} {:>14.2} {:>14.2} {:>14.2} {:>18.2} {:>25}",
            topic,
            s.pull_rt,
            s.pull_tps,
            s.consume_rt,
            s.consume_ok_tps,
            s.consume_failed_tps,
            s.consume_failed_msgs
        );
    }
    if let Some(jstack) = info.jstack.as_deref().filter(|j| !j.is_empty()) {
        out.push_str("\n\n#Consumer jstack#\n");
        out.push_str(jstack);
        out.push('\n');
    }
    out
}

fn running_info_json(info: &ConsumerRunningInfo) -> serde_json::Value {
    let queues: Vec<_> = info
        .mq_table
        .iter()
        .map(|(mq, pq)| {
            json!({
                "topic": mq.topic,
                "brokerName": mq.broker_name,
                "queueId": mq.queue_id,
                "commitOffset": pq.commit_offset,
                "cachedMsgCount": pq.cached_msg_count,
                "locked": pq.locked,
            })
        })
        .collect();
    let subscriptions: Vec<_> = info
        .subscription_set
        .iter()
        .map(|s| json!({ "topic": s.topic, "subExpression": s.sub_string }))
        .collect();
    json!({
        "properties": info.properties,
        "subscriptions": subscriptions,
        "queues": queues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_wire::body::client::ProcessQueueInfo;
    use ringmq_wire::body::consumer::MessageQueue;
    use ringmq_wire::body::heartbeat::SubscriptionData;

    fn info(topics: &[(&str, &str)], queues: &[i32]) -> ConsumerRunningInfo {
        ConsumerRunningInfo {
            subscription_set: topics
                .iter()
                .map(|(t, e)| SubscriptionData::tags(t, e, 1))
                .collect(),
            mq_table: queues
                .iter()
                .map(|q| {
                    (
                        MessageQueue::new("T", "b-s0", *q),
                        ProcessQueueInfo::default(),
                    )
                })
                .collect(),
            properties: BTreeMap::from([("consumerGroup".into(), "G".into())]),
            ..ConsumerRunningInfo::default()
        }
    }

    #[test]
    fn analysis_finds_different_subscriptions_and_shared_queues() {
        assert_eq!(analyze(&BTreeMap::new()), None);
        let ok = BTreeMap::from([
            ("a".to_owned(), info(&[("T", "*")], &[0, 1])),
            ("b".to_owned(), info(&[("T", "*")], &[2, 3])),
        ]);
        let analysis = analyze(&ok).expect("analysis");
        assert!(analysis.same_subscription && analysis.rebalance_ok);
        assert!(analysis.text.contains("Rebalance OK"));
        let shared = BTreeMap::from([
            ("a".to_owned(), info(&[("T", "*")], &[0, 1])),
            ("b".to_owned(), info(&[("T", "*")], &[1, 2])),
        ]);
        let analysis = analyze(&shared).expect("analysis");
        assert!(analysis.same_subscription && !analysis.rebalance_ok);
        assert!(analysis.text.contains("Rebalance Failed"));
        let different = BTreeMap::from([
            ("a".to_owned(), info(&[("T", "*")], &[0])),
            ("b".to_owned(), info(&[("T", "TagA")], &[1])),
        ]);
        let analysis = analyze(&different).expect("analysis");
        assert!(!analysis.same_subscription);
        assert!(analysis.text.contains("WARN: Different subscription"));
    }

    #[test]
    fn running_info_is_formatted_like_mqadmin() {
        let text = format_running_info(&info(&[("T", "*")], &[3]));
        assert!(text.starts_with("#Consumer Properties#\n"));
        assert!(text.contains(&format!("{:<40}: G\n", "consumerGroup")));
        assert!(text.contains("001 Topic: T"));
        assert!(text.contains("#Consumer Offset#"));
        assert!(
            text.lines()
                .any(|l| l.starts_with('T') && l.contains("b-s0") && l.contains(" 3 "))
        );
        assert!(!text.contains("#Consumer jstack#"));
    }
}
