//! Offset commands: `resetOffsetByTime`.
//!
//! `-s` takes `now`, milliseconds since the epoch, or `yyyy-MM-dd#HH:mm:ss:SSS`, read in UTC
//! (mqadmin reads it in the JVM's local zone; ringmq prints and reads times in UTC, see
//! [`super::format::human_time`]).

use ringmq_client::MessageQueue;
use ringmq_client::admin::{Admin, ResetPath};
use serde_json::json;

use super::AdminCommand;
use super::common::{AdminError, Common, Report, parse_bool};

/// `resetOffsetByTime`: move a consumer group's offsets on a topic to a time, while its
/// consumers run.
#[derive(Debug, clap::Parser)]
#[command(about = "Reset consumer offset by timestamp(without client restart).")]
pub struct ResetOffsetByTime {
    #[command(flatten)]
    common: Common,
    /// Consumer group.
    #[arg(short = 'g', long = "group")]
    group: String,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    topic: String,
    /// The time: now, milliseconds since the epoch, or yyyy-MM-dd#HH:mm:ss:SSS (UTC).
    #[arg(short = 's', long = "timestamp", value_parser = parse_timestamp)]
    timestamp: Timestamp,
    /// Also move offsets forward (true, the default) or only back (false).
    #[arg(
        short = 'f',
        long = "force",
        value_parser = parse_bool,
        default_value = "true",
        action = clap::ArgAction::Set
    )]
    force: bool,
    /// Cluster name (accepted for mqadmin compatibility: the topic's route names the
    /// brokers).
    #[arg(short = 'c', long = "cluster")]
    cluster: Option<String>,
    /// With -q: the broker address of the one queue to reset.
    #[arg(short = 'b', long = "broker", requires = "queue")]
    broker: Option<String>,
    /// With -b: the queue id to reset.
    #[arg(short = 'q', long = "queue", requires = "broker")]
    queue: Option<i32>,
    /// With -b and -q: the offset to reset to (instead of the one for the time).
    #[arg(short = 'o', long = "offset", requires = "queue")]
    offset: Option<i64>,
}

/// A parsed `-s`: the text given and the milliseconds it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// As given.
    pub text: String,
    /// Milliseconds since the epoch.
    pub ms: i64,
}

/// Parses `now`, a millisecond count or `yyyy-MM-dd#HH:mm:ss:SSS` (UTC).
pub fn parse_timestamp(value: &str) -> Result<Timestamp, String> {
    let text = value.trim().to_owned();
    if text == "now" {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        return Ok(Timestamp { text, ms });
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Timestamp { text, ms });
    }
    let ms = parse_date(&text).ok_or_else(|| {
        format!("expected now, milliseconds, or yyyy-MM-dd#HH:mm:ss:SSS (UTC), got {text:?}")
    })?;
    Ok(Timestamp { text, ms })
}

/// `yyyy-MM-dd#HH:mm:ss:SSS` in UTC to milliseconds since the epoch.
fn parse_date(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('#')?;
    let date: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let time: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, d] = <[i64; 3]>::try_from(date).ok()?;
    let [h, mi, s, ms] = <[i64; 4]>::try_from(time).ok()?;
    let valid = (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s)
        && (0..1000).contains(&ms);
    if !valid {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl AdminCommand for ResetOffsetByTime {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError> {
        let (group, topic) = (self.group.trim(), self.topic.trim());
        if let (Some(addr), Some(queue_id)) = (&self.broker, self.queue) {
            return self.reset_one_queue(admin, addr.trim(), queue_id).await;
        }
        let outcome = admin
            .reset_offset_by_time_online(group, topic, self.timestamp.ms, self.force)
            .await?;
        let mut text = format!(
            "start reset consumer offset by specified, group[{group}], topic[{topic}], \
             force[{}], timestamp(string)[{}], timestamp(long)[{}]\n",
            self.force, self.timestamp.text, self.timestamp.ms
        );
        text.push_str(&format!(
            "{:<40}  {:<40}  {:<40}\n",
            "#brokerName", "#queueId", "#offset"
        ));
        for (queue, offset) in &outcome.offsets {
            text.push_str(&format!(
                "{:<40}  {:<40}  {:<40}\n",
                queue.broker_name, queue.queue_id, offset
            ));
        }
        let offline: Vec<&String> = outcome
            .brokers
            .iter()
            .filter(|(_, path)| **path == ResetPath::Offline)
            .map(|(addr, _)| addr)
            .collect();
        if !offline.is_empty() {
            text.push_str(&format!(
                "no consumer of {group} online at {}: committed offsets updated directly\n",
                offline
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let queues: Vec<serde_json::Value> = outcome
            .offsets
            .iter()
            .map(|(q, offset)| {
                json!({"brokerName": q.broker_name, "queueId": q.queue_id, "offset": offset})
            })
            .collect();
        let brokers: serde_json::Map<String, serde_json::Value> = outcome
            .brokers
            .iter()
            .map(|(addr, path)| (addr.clone(), json!(path_name(*path))))
            .collect();
        Ok(Report::new(
            text,
            json!({
                "group": group,
                "topic": topic,
                "force": self.force,
                "timestamp": self.timestamp.ms,
                "cluster": self.cluster,
                "offsets": queues,
                "brokers": brokers,
            }),
        ))
    }
}

impl ResetOffsetByTime {
    /// mqadmin's `-b -q [-o]` form: one queue, to the given offset or the one for the time.
    async fn reset_one_queue(
        &self,
        admin: &Admin,
        addr: &str,
        queue_id: i32,
    ) -> Result<Report, AdminError> {
        let (group, topic) = (self.group.trim(), self.topic.trim());
        let mut text = format!(
            "start reset consumer offset by specified, group[{group}], topic[{topic}], \
             queueId[{queue_id}], broker[{addr}], timestamp(string)[{}], timestamp(long)[{}]\n",
            self.timestamp.text, self.timestamp.ms
        );
        // The broker name only labels the queue; the address picks the broker.
        let queue = MessageQueue::new(topic, "", queue_id);
        let offset = match self.offset {
            Some(offset) => offset,
            None => {
                admin
                    .offset_for_time(addr, &queue, self.timestamp.ms)
                    .await?
            }
        };
        text.push_str(&format!("reset consumer offset to {offset}\n"));
        let path = admin
            .reset_queue_offset(addr, group, &queue, offset)
            .await?;
        Ok(Report::new(
            text,
            json!({
                "group": group,
                "topic": topic,
                "broker": addr,
                "queueId": queue_id,
                "offset": offset,
                "path": path_name(path),
            }),
        ))
    }
}

fn path_name(path: ResetPath) -> &'static str {
    match path {
        ResetPath::Online => "online",
        ResetPath::Offline => "offline",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_mqadmin_takes_them() {
        assert_eq!(
            parse_timestamp("1700000000123").map(|t| t.ms),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp("2023-11-14#22:13:20:123").map(|t| t.ms),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp("1970-01-01#00:00:00:000").map(|t| t.ms),
            Ok(0)
        );
        assert_eq!(
            parse_timestamp("2024-02-29#23:59:59:999").map(|t| t.ms),
            Ok(1_709_251_199_999)
        );
        let now = parse_timestamp("now").expect("now");
        assert!(now.ms > 1_700_000_000_000);
        assert_eq!(now.text, "now");
        for bad in [
            "yesterday",
            "2023-11-14 22:13:20",
            "2023-13-01#00:00:00:000",
            "2023-11-14#25:00:00:000",
            "2023-11-14#22:13:20",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_round_trip_through_the_printed_form() {
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_800_000] {
            let printed = super::super::format::human_time(ms);
            // `yyyy-MM-dd HH:mm:ss,SSS` → `yyyy-MM-dd#HH:mm:ss:SSS`.
            let text = printed.replacen(' ', "#", 1).replacen(',', ":", 1);
            assert_eq!(parse_timestamp(&text).map(|t| t.ms), Ok(ms), "{text}");
        }
    }
}
