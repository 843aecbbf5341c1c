//! Cluster and broker commands: `clusterList`, `brokerStatus`, `getBrokerConfig`.

use std::time::Duration;

use ringmq_client::admin::Admin;
use serde_json::json;

use super::AdminCommand;
use super::common::{AdminError, Common, Report, Target, describe};
use super::format::{self, ClusterRow};

/// `clusterList`: every broker of every cluster with its runtime figures.
#[derive(Debug, clap::Parser)]
#[command(about = "List cluster infos.")]
pub struct ClusterList {
    #[command(flatten)]
    common: Common,
    /// Print yesterday's and today's message totals instead.
    #[arg(short = 'm', long = "moreStats")]
    more_stats: bool,
    /// Print again every this many seconds, until interrupted.
    #[arg(short = 'i', long = "interval")]
    interval: Option<u64>,
    /// Only this cluster.
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
}

impl AdminCommand for ClusterList {
    fn common(&self) -> &Common {
        &self.common
    }

    fn repeat_every(&self) -> Option<Duration> {
        self.interval.map(|s| Duration::from_secs(s.max(1)))
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let info = admin.cluster_info().await?;
        if let Some(cluster) = &self.cluster
            && !info.cluster_addr_table.contains_key(cluster.trim())
        {
            return Err(AdminError::failed(format!(
                "cluster {:?} is unknown to the NameServer (known: {})",
                cluster.trim(),
                info.cluster_addr_table
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut rows = Vec::new();
        for (cluster, broker_names) in &info.cluster_addr_table {
            if self.cluster.as_deref().is_some_and(|c| c.trim() != cluster) {
                continue;
            }
            for name in broker_names {
                let Some(broker) = info.broker_addr_table.get(name) else {
                    continue;
                };
                for (id, addr) in &broker.broker_addrs {
                    // mqadmin prints the row even when the broker does not answer; so do
                    // we, and say why on stderr.
                    let runtime = match admin.broker_runtime_info(addr).await {
                        Ok(table) => table,
                        Err(error) => {
                            eprintln!(
                                "warning: no runtime info from broker {name} ({addr}): {}",
                                describe(&error)
                            );
                            Default::default()
                        }
                    };
                    rows.push(ClusterRow {
                        cluster: cluster.clone(),
                        broker_name: name.clone(),
                        broker_id: *id,
                        addr: addr.clone(),
                        runtime,
                    });
                }
            }
        }
        let text = if self.more_stats {
            format::cluster_more_stats_table(&rows)
        } else {
            format::cluster_list_table(&rows, now_ms())
        };
        Ok(Report::new(text, json!({ "brokers": rows })))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `brokerStatus`: a broker's runtime statistics table.
#[derive(Debug, clap::Parser)]
#[command(about = "Fetch broker runtime status data.")]
pub struct BrokerStatus {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
}

impl AdminCommand for BrokerStatus {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let addrs = self.target.brokers(admin).await?;
        let many = !self.target.is_one_broker();
        let (mut text, mut all) = (String::new(), serde_json::Map::new());
        for addr in addrs {
            let table = admin.broker_runtime_info(&addr).await?;
            text.push_str(&format::broker_status(
                many.then_some(addr.as_str()),
                &table,
            ));
            all.insert(addr, json!(table));
        }
        Ok(Report::new(text, serde_json::Value::Object(all)))
    }
}

/// `getBrokerConfig`: a broker's configuration.
#[derive(Debug, clap::Parser)]
#[command(about = "Get broker config by cluster or special broker.")]
pub struct GetBrokerConfig {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
}

impl AdminCommand for GetBrokerConfig {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let addrs = self.target.brokers(admin).await?;
        let (mut text, mut all) = (String::new(), serde_json::Map::new());
        for addr in addrs {
            let config = admin.broker_config(&addr).await?;
            text.push_str(&format::broker_config(&addr, &config));
            all.insert(addr, json!(config));
        }
        Ok(Report::new(text, serde_json::Value::Object(all)))
    }
}

/// `updateBrokerConfig`: set one configuration key on one broker or a cluster's masters.
#[derive(Debug, clap::Parser)]
#[command(about = "Update broker's config.")]
pub struct UpdateBrokerConfig {
    #[command(flatten)]
    common: Common,
    /// `-b brokerAddr` or `-c clusterName`.
    #[command(flatten)]
    target: Target,
    /// Configuration key.
    #[arg(short = 'k', long = "key")]
    key: String,
    /// New value.
    #[arg(short = 'v', long = "value")]
    value: String,
}

impl AdminCommand for UpdateBrokerConfig {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let addrs = self.target.brokers(admin).await?;
        let entries = std::collections::BTreeMap::from([(
            self.key.trim().to_owned(),
            self.value.trim().to_owned(),
        )]);
        let mut text = String::new();
        for addr in &addrs {
            admin.update_broker_config(addr, &entries).await?;
            text.push_str(&format!("update broker config success, {addr}\n"));
        }
        Ok(Report::new(
            text,
            json!({ "brokers": addrs, "key": self.key.trim(), "value": self.value.trim() }),
        ))
    }
}

/// `wipeWritePerm` / `addWritePerm`: stop or restore writes to a broker on every NameServer.
#[derive(Debug, clap::Args)]
pub struct WritePerm {
    #[command(flatten)]
    common: Common,
    /// Broker name.
    #[arg(short = 'b', long = "brokerName")]
    broker_name: String,
}

/// `wipeWritePerm`: producers stop sending to a broker (drain before maintenance).
#[derive(Debug, clap::Parser)]
#[command(about = "Wipe write perm of broker in all name server you defined in the -n param.")]
pub struct WipeWritePerm {
    #[command(flatten)]
    inner: WritePerm,
}

/// `addWritePerm`: undoes `wipeWritePerm`.
#[derive(Debug, clap::Parser)]
#[command(about = "Add write perm of broker in all name server you defined in the -n param.")]
pub struct AddWritePerm {
    #[command(flatten)]
    inner: WritePerm,
}

fn write_perm_report(verb: &str, broker: &str, counts: &[(String, i32)]) -> Report {
    let text = counts
        .iter()
        .map(|(ns, n)| {
            format!("{verb} write perm of broker[{broker}] in name server[{ns}] OK, {n}\n")
        })
        .collect();
    let rows: Vec<_> = counts
        .iter()
        .map(|(ns, n)| json!({ "nameServer": ns, "topics": n }))
        .collect();
    Report::new(text, json!({ "brokerName": broker, "nameServers": rows }))
}

impl AdminCommand for WipeWritePerm {
    fn common(&self) -> &Common {
        &self.inner.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let broker = self.inner.broker_name.trim();
        let counts = admin.wipe_write_perm(broker).await?;
        Ok(write_perm_report("wipe", broker, &counts))
    }
}

impl AdminCommand for AddWritePerm {
    fn common(&self) -> &Common {
        &self.inner.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let broker = self.inner.broker_name.trim();
        let counts = admin.add_write_perm(broker).await?;
        Ok(write_perm_report("add", broker, &counts))
    }
}
