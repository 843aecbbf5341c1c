//! mqadmin's output formats (spec §C.3.3), as pure functions from the client's answers to
//! text, so that they can be checked against hand-written expected strings.
//!
//! Java's `%-Ns` is Rust's `{:<N}` and `%Ns` is `{:>N}` (both pad by characters). Times are
//! printed like `UtilAll.timeMillisToHumanString2` (`yyyy-MM-dd HH:mm:ss,SSS`), in UTC
//! (mqadmin uses the JVM's local zone).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ringmq_client::consumer::MessageExt;
use ringmq_wire::body::consumer::ConsumerConnection;
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::stats::{ConsumeStats, TopicStatsTable};
use ringmq_wire::body::subscription::SubscriptionGroupConfig;
use ringmq_wire::body::topic::{TopicConfig, perm};

/// `yyyy-MM-dd HH:mm:ss,SSS` in UTC for a millisecond timestamp.
pub fn human_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02},{millis:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Java's `AbstractMap.toString`: `{k=v, k=v}`.
pub fn java_map<K: std::fmt::Display, V: std::fmt::Display>(
    entries: impl IntoIterator<Item = (K, V)>,
) -> String {
    let inner: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// `topicList`: one topic per line.
pub fn topic_list(topics: &[String]) -> String {
    topics.iter().map(|t| format!("{t}\n")).collect()
}

/// `topicList -c`: `%-20s  %-48s  %-48s` rows of (cluster, topic, consumer group).
pub fn topic_list_by_cluster(rows: &[(String, String, String)]) -> String {
    let mut out = format!(
        "{:<20}  {:<48}  {:<48}\n",
        "#Cluster Name", "#Topic", "#Consumer Group"
    );
    for (cluster, topic, group) in rows {
        let _ = writeln!(out, "{cluster:<20}  {topic:<48}  {group:<48}");
    }
    out
}

/// One row of `consumerProgress` without `-g`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupProgressRow {
    /// The group.
    pub group: String,
    /// Online consumers (0 when none answered).
    pub count: usize,
    /// Lowest client version ordinal among them.
    pub version: i32,
    /// How they consume (meaningful when `count > 0`).
    pub consume_type: ringmq_wire::body::heartbeat::ConsumeType,
    /// Their message model (meaningful when `count > 0`).
    pub message_model: ringmq_wire::body::heartbeat::MessageModel,
    /// Consume TPS, truncated as mqadmin prints it.
    pub tps: i64,
    /// Sum over queues of broker offset − consumer offset.
    pub diff_total: i64,
}

/// `consumerProgress` without `-g`: `%-64s  %-6s  %-24s %-5s  %-14s  %-7s  %s` headers, one
/// row per group (mqadmin's columns; the version is the numeric ordinal, `OFFLINE` when no
/// consumer is online).
pub fn group_progress_table(rows: &[GroupProgressRow]) -> String {
    use ringmq_wire::body::heartbeat::ConsumeType;
    let mut out = format!(
        "{:<64}  {:<6}  {:<24} {:<5}  {:<14}  {:<7}  {}\n",
        "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total"
    );
    for row in rows {
        let online = row.count > 0;
        let version = if online {
            row.version.to_string()
        } else {
            "OFFLINE".to_owned()
        };
        let kind = match (online, row.consume_type) {
            (false, _) => "",
            (true, ConsumeType::ConsumeActively) => "PULL",
            (true, _) => "PUSH",
        };
        let model = if online && row.consume_type == ConsumeType::ConsumePassively {
            row.message_model.name()
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<64}  {:<6}  {:<24} {:<5}  {:<14}  {:<7}  {}",
            row.group, row.count, version, kind, model, row.tps, row.diff_total
        );
    }
    out
}

/// `topicRoute -l`: `%-45s %-32s %-50s %-10s %-11s %-5s`, one row per queue data, then a
/// `Total:` row (number of brokers, total read and write queues).
pub fn topic_route_table(route: &TopicRouteData) -> String {
    let mut out = format!(
        "{:<45} {:<32} {:<50} {:<10} {:<11} {:<5}\n",
        "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm"
    );
    let (mut brokers, mut read, mut write) = (0, 0i64, 0i64);
    for queue in &route.queue_datas {
        let Some(broker) = route
            .broker_datas
            .iter()
            .find(|b| b.broker_name == queue.broker_name)
        else {
            continue;
        };
        brokers += 1;
        read += i64::from(queue.read_queue_nums);
        write += i64::from(queue.write_queue_nums);
        let _ = writeln!(
            out,
            "{:<45} {:<32} {:<50} {:<10} {:<11} {:<5}",
            broker.cluster,
            broker.broker_name,
            java_map(&broker.broker_addrs),
            queue.read_queue_nums,
            queue.write_queue_nums,
            queue.perm
        );
    }
    let _ = writeln!(
        out,
        "{:<45} {:<32} {:<50} {:<10} {:<11} {:<5}",
        "Total:", brokers, "", read, write, ""
    );
    out
}

/// `topicStatus`: `%-32s  %-4s  %-20s  %-20s    %s` per queue, then `Topic Put TPS: %s`.
pub fn topic_status_table(stats: &TopicStatsTable) -> String {
    let mut out = format!(
        "{:<32}  {:<4}  {:<20}  {:<20}    {}\n",
        "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated"
    );
    for (queue, offset) in &stats.offset_table {
        let updated = if offset.last_update_timestamp > 0 {
            human_time(offset.last_update_timestamp)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<32}  {:<4}  {:<20}  {:<20}    {}",
            queue.broker_name, queue.queue_id, offset.min_offset, offset.max_offset, updated
        );
    }
    let _ = writeln!(out, "Topic Put TPS: {}", java_double(stats.topic_put_tps));
    out
}

/// Java's `Double.toString` for the values admin tables print (`0.0`, `12.5`).
fn java_double(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e7 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// `consumerProgress -g` (5.x, without client IPs):
/// `%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s%s` per queue, then the TPS and totals.
pub fn consumer_progress_table(stats: &ConsumeStats) -> String {
    let mut out = format!(
        "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}{}\n",
        "#Topic",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#Inflight",
        "#LastTime"
    );
    let (mut diff_total, mut inflight_total) = (0i64, 0i64);
    for (queue, offset) in &stats.offset_table {
        let diff = offset.broker_offset - offset.consumer_offset;
        let inflight = offset.pull_offset - offset.consumer_offset;
        diff_total += diff;
        inflight_total += inflight;
        let last = if offset.last_timestamp > 0 {
            human_time(offset.last_timestamp)
        } else {
            "N/A".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}{}",
            queue.topic,
            queue.broker_name,
            queue.queue_id,
            offset.broker_offset,
            offset.consumer_offset,
            diff,
            inflight,
            last
        );
    }
    out.push('\n');
    let _ = writeln!(out, "Consume TPS: {:.2}", stats.consume_tps);
    let _ = writeln!(out, "Consume Diff Total: {diff_total}");
    let _ = writeln!(out, "Consume Inflight Total: {inflight_total}");
    out
}

/// One broker row of `clusterList` (5.x), from the NameServer's cluster map and the
/// broker's runtime info (empty when the broker did not answer).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Broker id (0 = master).
    pub broker_id: i64,
    /// Broker address.
    pub addr: String,
    /// `GET_BROKER_RUNTIME_INFO` table; empty if the broker did not answer.
    pub runtime: BTreeMap<String, String>,
}

impl ClusterRow {
    fn value(&self, key: &str) -> &str {
        self.runtime.get(key).map_or("", String::as_str)
    }

    /// The first number of a `putTps`-style value (`"12.5 11.0 10.2"`), or 0.
    fn first_f64(&self, key: &str) -> f64 {
        self.value(key)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn i64_of(&self, key: &str) -> i64 {
        self.value(key).trim().parse().unwrap_or(0)
    }
}

/// `clusterList` (5.x): the header and one row per broker, with
/// `%-22s  %-22s  %-4s  %-22s %-16s  %16s  %30s  %-22s  %-11s  %-12s  %-8s  %-10s`.
/// `now_ms` is used for the `#Hour` column (hours since the earliest stored message).
pub fn cluster_list_table(rows: &[ClusterRow], now_ms: i64) -> String {
    let mut out = format!(
        "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:<11}  {:<12}  {:<8}  {:<10}\n",
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTPS(LOAD)",
        "#OutTPS(LOAD)",
        "#Timer(Progress)",
        "#PCWait(ms)",
        "#Hour",
        "#SPACE",
        "#ACTIVATED"
    );
    for row in rows {
        let in_tps = format!(
            "{:9.2}({},{}ms)",
            row.first_f64("putTps"),
            row.i64_of("sendThreadPoolQueueSize"),
            row.i64_of("sendThreadPoolQueueHeadWaitTimeMills")
        );
        let out_tps = format!(
            "{:9.2}({},{}ms)",
            row.first_f64("getTransferredTps"),
            row.i64_of("pullThreadPoolQueueSize"),
            row.i64_of("pullThreadPoolQueueHeadWaitTimeMills")
        );
        let timer = format!(
            "{}-{}({:.1}w, {:.1}, {:.1})",
            row.i64_of("timerReadBehind"),
            row.i64_of("timerOffsetBehind"),
            row.i64_of("timerCongestNum") as f64 / 10_000.0,
            row.first_f64("timerEnqueueTps"),
            row.first_f64("timerDequeueTps")
        );
        let earliest = row.i64_of("earliestMessageTimeStamp");
        let hours = if earliest > 0 {
            (now_ms - earliest) as f64 / 3_600_000.0
        } else {
            0.0
        };
        let space = row
            .value("commitLogDiskRatio")
            .trim()
            .parse::<f64>()
            .unwrap_or(0.0);
        let active = row
            .runtime
            .get("brokerActive")
            .map_or("false", String::as_str);
        let _ = writeln!(
            out,
            "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:<11}  {:<12}  {:<8}  {:<10}",
            row.cluster,
            row.broker_name,
            row.broker_id,
            row.addr,
            row.value("brokerVersionDesc"),
            in_tps,
            out_tps,
            timer,
            row.i64_of("pageCacheLockTimeMills"),
            format!("{hours:2.2}"),
            format!("{space:.4}"),
            active
        );
    }
    out
}

/// `clusterList -m`: yesterday's and today's in/out message totals per broker,
/// `%-30s  %-32s  %14s  %14s  %14s  %14s`.
pub fn cluster_more_stats_table(rows: &[ClusterRow]) -> String {
    let mut out = format!(
        "{:<30}  {:<32}  {:>14}  {:>14}  {:>14}  {:>14}\n",
        "#Cluster Name",
        "#Broker Name",
        "#InTotalYest",
        "#OutTotalYest",
        "#InTotalToday",
        "#OutTotalToday"
    );
    for row in rows {
        let in_yest =
            row.i64_of("msgPutTotalTodayMorning") - row.i64_of("msgPutTotalYesterdayMorning");
        let out_yest =
            row.i64_of("msgGetTotalTodayMorning") - row.i64_of("msgGetTotalYesterdayMorning");
        let in_today = row.i64_of("msgPutTotalTodayNow") - row.i64_of("msgPutTotalTodayMorning");
        let out_today = row.i64_of("msgGetTotalTodayNow") - row.i64_of("msgGetTotalTodayMorning");
        let _ = writeln!(
            out,
            "{:<30}  {:<32}  {in_yest:>14}  {out_yest:>14}  {in_today:>14}  {out_today:>14}",
            row.cluster, row.broker_name
        );
    }
    out
}

/// `brokerStatus`: `%-32s: %s` per key (sorted); with `addr` (cluster mode)
/// `%-24s %-32s: %s`.
pub fn broker_status(addr: Option<&str>, table: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (key, value) in table {
        let _ = match addr {
            Some(addr) => writeln!(out, "{addr:<24} {key:<32}: {value}"),
            None => writeln!(out, "{key:<32}: {value}"),
        };
    }
    out
}

/// `getBrokerConfig`: `============<addr>============` then `%-50s=  %s` per key.
pub fn broker_config(addr: &str, config: &BTreeMap<String, String>) -> String {
    let mut out = format!("============{addr}============\n");
    for (key, value) in config {
        let _ = writeln!(out, "{key:<50}=  {value}");
    }
    out
}

/// Java's `TopicConfig.toString`, printed by `updateTopic`.
pub fn topic_config(config: &TopicConfig) -> String {
    format!(
        "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={}, \
         topicFilterType={}, topicSysFlag={}, order={}, attributes={}]",
        config.topic_name,
        config.read_queue_nums,
        config.write_queue_nums,
        perm::to_display(config.perm),
        config.topic_filter_type.name(),
        config.topic_sys_flag,
        config.order,
        java_map(&config.attributes)
    )
}

/// Java's `SubscriptionGroupConfig.toString`, printed by `updateSubGroup`.
pub fn subscription_group(config: &SubscriptionGroupConfig) -> String {
    format!(
        "SubscriptionGroupConfig [groupName={}, consumeEnable={}, consumeFromMinEnable={}, \
         consumeBroadcastEnable={}, consumeMessageOrderly={}, retryQueueNums={}, \
         retryMaxTimes={}, brokerId={}, whichBrokerWhenConsumeSlowly={}, \
         notifyConsumerIdsChangedEnable={}, groupSysFlag={}, consumeTimeoutMinute={}, \
         attributes={}]",
        config.group_name,
        config.consume_enable,
        config.consume_from_min_enable,
        config.consume_broadcast_enable,
        config.consume_message_orderly,
        config.retry_queue_nums,
        config.retry_max_times,
        config.broker_id,
        config.which_broker_when_consume_slowly,
        config.notify_consumer_ids_changed_enable,
        config.group_sys_flag,
        config.consume_timeout_minute,
        java_map(&config.attributes)
    )
}

/// `consumerConnection`: `%03d  %-32s %-22s %-8s %s` per client, the subscriptions
/// (`%03d  Topic: %-40s SubExpression: %s`), then consume type, model and from-where.
/// The version column is the numeric `MQVersion` ordinal (ringmq has no version-name table).
pub fn consumer_connection(cc: &ConsumerConnection) -> String {
    let mut out = String::new();
    for (i, conn) in cc.connection_set.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:03}  {:<32} {:<22} {:<8} {}",
            i + 1,
            conn.client_id,
            conn.client_addr,
            conn.language.name(),
            conn.version
        );
    }
    out.push_str("\nBelow is subscription:\n");
    for (i, sub) in cc.subscription_table.values().enumerate() {
        let _ = writeln!(
            out,
            "{:03}  Topic: {:<40} SubExpression: {}",
            i + 1,
            sub.topic,
            sub.sub_string
        );
    }
    out.push('\n');
    let _ = writeln!(out, "ConsumeType: {}", cc.consume_type.name());
    let _ = writeln!(out, "MessageModel: {}", cc.message_model.name());
    let _ = writeln!(out, "ConsumeFromWhere: {}", cc.consume_from_where.name());
    out
}

/// `sendMessage`: `%-32s  %-4s  %-20s    %s` header and the result row.
pub fn send_result(broker_name: &str, queue_id: i32, status: &str, msg_id: &str) -> String {
    format!(
        "{:<32}  {:<4}  {:<20}    {}\n{broker_name:<32}  {queue_id:<4}  {status:<20}    {msg_id}\n",
        "#Broker Name", "#QID", "#Send Result", "#MsgId"
    )
}

/// `queryMsgByKey`: `%-50s %4s %40s` (message id, queue id, queue offset).
pub fn query_by_key(messages: &[MessageExt]) -> String {
    let mut out = format!("{:<50} {:>4} {:>40}\n", "#Message ID", "#QID", "#Offset");
    for m in messages {
        let _ = writeln!(
            out,
            "{:<50} {:>4} {:>40}",
            m.msg_id(),
            m.queue_id,
            m.queue_offset
        );
    }
    out
}

/// The body as text (invalid UTF-8 replaced).
fn body_text(m: &MessageExt) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

/// mqadmin's message detail (`queryMsgById`, `queryMsgByOffset`): `%-20s %s` lines. The body
/// is printed inline as `Message Body:` (mqadmin writes it to a file under /tmp instead).
pub fn message_detail(m: &MessageExt) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<20} {value}");
    };
    line("OffsetID:", m.offset_msg_id.clone());
    line("Topic:", m.topic.clone());
    line("Tags:", format!("[{}]", m.tags().unwrap_or("null")));
    line("Keys:", format!("[{}]", m.keys().join(" ")));
    line("Queue ID:", m.queue_id.to_string());
    line("Queue Offset:", m.queue_offset.to_string());
    line("CommitLog Offset:", m.commit_log_offset.to_string());
    line("Reconsume Times:", m.reconsume_times.to_string());
    line("Born Timestamp:", human_time(m.born_timestamp));
    line("Store Timestamp:", human_time(m.store_timestamp));
    line("Born Host:", m.born_host.to_string());
    line("Store Host:", m.store_host.to_string());
    line("System Flag:", m.sys_flag.to_string());
    line("Properties:", java_map(&m.properties));
    line("Message Body:", body_text(m));
    out
}

/// `consumeMessage`/`printMsg`: `MSGID: %s %s BODY: %s`, the middle part being Java's
/// `MessageExt.toString` shape.
pub fn message_line(m: &MessageExt) -> String {
    format!(
        "MSGID: {} MessageExt [brokerName={}, queueId={}, queueOffset={}, sysFlag={}, \
         bornTimestamp={}, bornHost={}, storeTimestamp={}, storeHost={}, msgId={}, \
         commitLogOffset={}, reconsumeTimes={}, topic={}, flag={}, properties={}] BODY: {}\n",
        m.msg_id(),
        m.broker_name,
        m.queue_id,
        m.queue_offset,
        m.sys_flag,
        m.born_timestamp,
        m.born_host,
        m.store_timestamp,
        m.store_host,
        m.offset_msg_id,
        m.commit_log_offset,
        m.reconsume_times,
        m.topic,
        m.flag,
        java_map(&m.properties),
        body_text(m)
    )
}

/// A message as JSON (for `--json` of the message commands).
pub fn message_json(m: &MessageExt) -> serde_json::Value {
    serde_json::json!({
        "msgId": m.msg_id(),
        "offsetMsgId": m.offset_msg_id,
        "topic": m.topic,
        "brokerName": m.broker_name,
        "queueId": m.queue_id,
        "queueOffset": m.queue_offset,
        "commitLogOffset": m.commit_log_offset,
        "tags": m.tags(),
        "keys": m.keys(),
        "reconsumeTimes": m.reconsume_times,
        "bornTimestamp": m.born_timestamp,
        "storeTimestamp": m.store_timestamp,
        "bornHost": m.born_host.to_string(),
        "storeHost": m.store_host.to_string(),
        "sysFlag": m.sys_flag,
        "flag": m.flag,
        "properties": m.properties,
        "body": body_text(m),
    })
}

#[cfg(test)]
mod tests;
