//! `ringmq-perf consumer`: RocketMQ's `benchmark/Consumer.java` — a push consumer whose
//! listener records born-to-consume (B2C, producer clock) and store-to-consume (S2C, broker
//! clock) latencies of the first message of each batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ringmq_client::consumer::push::{
    ConsumeResult, MessageListener, PushConsumer, PushConsumerConfig,
};

use crate::latency::Latency;
use crate::producer::CommonArgs;
use crate::report::{self, now_ms};
use crate::stats::{self, Counters, consumer};

/// `consumer` options (RocketMQ's `benchmarkConsumer`).
#[derive(Debug, Clone, Args)]
pub struct ConsumerArgs {
    /// Topic to subscribe.
    #[arg(short = 't', long = "topic", default_value = "BenchmarkTest")]
    pub topic: String,
    /// Consume threads.
    #[arg(short = 'w', long = "threadCount", default_value_t = 20)]
    pub threads: usize,
    /// Consumer group (prefix with -p true).
    #[arg(short = 'g', long = "group", default_value = "benchmark_consumer")]
    pub group: String,
    /// Append `_<now_ms % 100>` to the group.
    #[arg(short = 'p', long = "group prefix enable", default_value = "false", value_parser = crate::args::parse_bool)]
    pub group_suffix: bool,
    /// Filter type: TAG (SQL92 is not supported yet).
    #[arg(short = 'f', long = "filterType")]
    pub filter_type: Option<String>,
    /// Path of a file holding the filter expression.
    #[arg(short = 'e', long = "expression")]
    pub expression_file: Option<std::path::PathBuf>,
    /// Probability (0..1) of answering RECONSUME_LATER.
    #[arg(short = 'r', long = "fail rate", default_value_t = 0.0)]
    pub fail_rate: f64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `consumer`.
pub async fn run_consumer(args: ConsumerArgs) -> anyhow::Result<()> {
    args.common.check_supported()?;
    if !(0.0..=1.0).contains(&args.fail_rate) {
        bail!(
            "-r {}: the fail rate is a probability between 0 and 1",
            args.fail_rate
        );
    }
    let expression = match (&args.filter_type, &args.expression_file) {
        (None, None) => "*".to_owned(),
        (Some(kind), Some(path)) if kind.eq_ignore_ascii_case("TAG") => {
            std::fs::read_to_string(path)
                .with_context(|| {
                    format!("cannot read the filter expression file {}", path.display())
                })?
                .trim()
                .to_owned()
        }
        (Some(kind), Some(_)) if kind.eq_ignore_ascii_case("SQL92") => {
            bail!("-f SQL92: SQL92 filtering is not supported by ringmq yet; use -f TAG")
        }
        (Some(kind), Some(_)) => bail!("-f {kind}: the filter type is TAG or SQL92"),
        (Some(_), None) | (None, Some(_)) => {
            bail!("-f and -e go together: -f TAG -e <file with the tag expression>")
        }
    };
    let group = if args.group_suffix {
        format!("{}_{}", args.group, now_ms() % 100)
    } else {
        args.group.clone()
    };
    let sink = args.common.sink();
    sink.line(&format!(
        "topic: {}, threadCount {}, group: {}, suffix: {}, filterType: {}, expression: {}, msgTraceEnable: {}, aclEnable: {}, reportInterval: {}",
        args.topic, args.threads, group, args.group_suffix, args.filter_type.as_deref().unwrap_or("null"),
        expression, args.common.trace, args.common.acl, args.common.report_interval_ms
    ));

    let counters: Arc<Counters<{ consumer::N }>> = Arc::new(Counters::default());
    let b2c = Arc::new(Mutex::new(Latency::default()));
    let instance = args
        .common
        .client(&format!("benchmark_consumer_{}", now_ms()))?;
    let mut config = PushConsumerConfig::new(group);
    config.consume_threads = args.threads.max(1);
    let mut push =
        PushConsumer::new(instance.clone(), config).context("cannot create the consumer")?;
    push.subscribe(&args.topic, &expression)
        .context("cannot subscribe")?;
    let listener = {
        let counters = counters.clone();
        let b2c = b2c.clone();
        let fail_rate = args.fail_rate;
        MessageListener::concurrently(move |messages| {
            let counters = counters.clone();
            let b2c = b2c.clone();
            async move {
                let Some(first) = messages.first() else {
                    return ConsumeResult::Success;
                };
                let now = now_ms() as i64;
                let born_ms = (now - first.born_timestamp).max(0) as u64;
                let store_ms = (now - first.store_timestamp).max(0) as u64;
                counters.add(consumer::RECEIVED, 1);
                counters.add(consumer::B2C_TOTAL_MS, born_ms);
                counters.add(consumer::S2C_TOTAL_MS, store_ms);
                counters.observe_max(born_ms);
                counters.observe_max2(store_ms);
                if let Ok(mut latency) = b2c.lock() {
                    latency.record_us(born_ms * 1000);
                }
                if fail_rate > 0.0 && rand::random::<f64>() < fail_rate {
                    counters.add(consumer::FAILED, 1);
                    return ConsumeResult::ReconsumeLater;
                }
                ConsumeResult::Success
            }
        })
    };
    push.start(listener)
        .await
        .context("cannot start the consumer")?;
    sink.line("Consumer Started.");

    let (_stop_tx, stop_rx) = report::stop_signal(args.common.duration_s.map(Duration::from_secs));
    report::run(
        counters.clone(),
        Duration::from_millis(args.common.report_interval_ms),
        sink,
        consumer::RECEIVED,
        Box::new(
            |now: &str,
             delta: &stats::Delta<{ consumer::N }>,
             counters: &Counters<{ consumer::N }>| {
                let (max_b2c, max_s2c) = counters.take_maxima();
                stats::consumer_line(now, delta, max_b2c, max_s2c)
            },
        ),
        stop_rx,
    )
    .await;
    push.shutdown().await;
    instance.shutdown();
    let summary = b2c
        .lock()
        .map(|l| l.summary())
        .unwrap_or_else(|e| e.into_inner().summary());
    sink.line(&format!("B2C {}", summary.line()));
    if args.common.json {
        let totals = counters.snapshot(now_ms()).values;
        println!(
            "{}",
            serde_json::json!({
                "tool": "consumer",
                "topic": args.topic,
                "received": totals[consumer::RECEIVED],
                "failed": totals[consumer::FAILED],
                "b2c_latency_us": summary,
            })
        );
    }
    Ok(())
}
