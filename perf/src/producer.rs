//! `ringmq-perf producer` and `batch-producer`: RocketMQ's `benchmark/Producer.java` and
//! `BatchProducer.java`, with their options, defaults, counting and report lines, plus
//! HdrHistogram percentiles, `--duration` and `--json`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use ringmq_client::ClientError;
use ringmq_client::instance::{ClientConfig, ClientInstance};
use ringmq_client::message::Message;
use ringmq_client::producer::{Producer, ProducerConfig};
use ringmq_wire::SerializeType;
use tokio::sync::{Semaphore, watch};

use crate::args::parse_bool;
use crate::latency::{Latency, Summary};
use crate::report::{self, Sink, now_ms};
use crate::stats::{self, Counters, batch, producer};

/// Pause after a failed send, as RocketMQ's benchmark does (3 s).
const FAILURE_PAUSE: Duration = Duration::from_secs(3);
/// Async sends outstanding before the sender pauses (RocketMQ: executor queue > 10 000).
const ASYNC_IN_FLIGHT_MAX: usize = 10_000;

/// Options shared by every tool beyond RocketMQ's own.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// NameServer address list, `host:port;host:port` (env NAMESRV_ADDR).
    #[arg(
        short = 'n',
        long = "namesrvAddr",
        env = "NAMESRV_ADDR",
        default_value = "127.0.0.1:9876"
    )]
    pub namesrv: String,
    /// Milliseconds between report lines.
    #[arg(long = "reportInterval", default_value_t = 10_000)]
    pub report_interval_ms: u64,
    /// Stop after this many seconds (ringmq extension; RocketMQ runs until killed).
    #[arg(long = "duration")]
    pub duration_s: Option<u64>,
    /// Print a JSON summary on stdout at the end (report lines then go to stderr).
    #[arg(long = "json")]
    pub json: bool,
    /// Header encoding: `rocketmq` (binary, what RocketMQ's benchmark tools use) or `json`.
    #[arg(long = "serializeType", default_value = "rocketmq", value_parser = parse_serialize_type)]
    pub serialize_type: SerializeType,
    /// Enable message trace (not supported by ringmq-perf yet: refused if true).
    #[arg(short = 'm', long = "msgTraceEnable", default_value = "false", value_parser = parse_bool)]
    pub trace: bool,
    /// Enable ACL (not supported by ringmq-perf yet: refused if true).
    #[arg(short = 'a', long = "aclEnable", default_value = "false", value_parser = parse_bool)]
    pub acl: bool,
    /// ACL access key (with -a).
    #[arg(long = "accessKey", default_value = "rocketmq2")]
    pub access_key: String,
    /// ACL secret key (with -a).
    #[arg(long = "secretKey", default_value = "12345678")]
    pub secret_key: String,
}

fn parse_serialize_type(value: &str) -> Result<SerializeType, String> {
    match value.to_ascii_lowercase().as_str() {
        "rocketmq" | "binary" => Ok(SerializeType::RocketMq),
        "json" => Ok(SerializeType::Json),
        _ => Err(format!("expected rocketmq or json, got {value:?}")),
    }
}

impl CommonArgs {
    /// Refuses options this tool accepts for compatibility but cannot honour.
    pub fn check_supported(&self) -> anyhow::Result<()> {
        if self.trace {
            bail!("-m true (message trace) is not supported by ringmq-perf yet; run without it");
        }
        if self.acl {
            bail!("-a true (ACL) is not supported by ringmq-perf yet; run without it");
        }
        Ok(())
    }

    /// A client instance for these options.
    pub fn client(&self, instance_name: &str) -> anyhow::Result<ClientInstance> {
        let mut config = ClientConfig::new(self.namesrv.clone());
        config.instance_name = Some(instance_name.to_owned());
        config.remoting.serialize_type = self.serialize_type;
        ClientInstance::new(config)
            .with_context(|| format!("cannot start a client for NameServer {}", self.namesrv))
    }

    /// Where report lines go.
    pub fn sink(&self) -> Sink {
        if self.json {
            Sink::Stderr
        } else {
            Sink::Stdout
        }
    }
}

/// `producer` options (RocketMQ's `benchmarkProducer`).
#[derive(Debug, Clone, Args)]
pub struct ProducerArgs {
    /// Topic.
    #[arg(short = 't', long = "topic", default_value = "BenchmarkTest")]
    pub topic: String,
    /// Sender threads (forced to 1 with -y true, as RocketMQ does).
    #[arg(short = 'w', long = "threadCount", default_value_t = 64)]
    pub threads: usize,
    /// Body bytes.
    #[arg(short = 's', long = "messageSize", default_value_t = 128)]
    pub message_size: usize,
    /// Set a key (send time in seconds) on every message.
    #[arg(short = 'k', long = "keyEnable", default_value = "false", value_parser = parse_bool)]
    pub key_enable: bool,
    /// Tags `tag<now_ms % n>`; 0 sends no tag.
    #[arg(short = 'l', long = "tagCount", default_value_t = 0)]
    pub tag_count: u64,
    /// Messages to send in total (0 = until stopped).
    #[arg(short = 'q', long = "messageQuantity", default_value_t = 0)]
    pub quantity: u64,
    /// Set a delay level on every message.
    #[arg(short = 'd', long = "delayEnable", default_value = "false", value_parser = parse_bool)]
    pub delay_enable: bool,
    /// The delay level used with -d.
    #[arg(short = 'e', long = "delayLevel", default_value_t = 1)]
    pub delay_level: u32,
    /// Send asynchronously (up to 10 000 outstanding).
    #[arg(short = 'y', long = "asyncEnable", default_value = "false", value_parser = parse_bool)]
    pub async_enable: bool,
    /// Compress bodies larger than --compressOverHowMuch.
    #[arg(short = 'c', long = "compressEnable", default_value = "false", value_parser = parse_bool)]
    pub compress: bool,
    /// Compression type (ZLIB only).
    #[arg(long = "compressType", default_value = "ZLIB")]
    pub compress_type: String,
    /// Compression level.
    #[arg(long = "compressLevel", default_value_t = 5)]
    pub compress_level: u32,
    /// Compress bodies over this many bytes (with -c true).
    #[arg(long = "compressOverHowMuch", default_value_t = 4096)]
    pub compress_over: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `batch-producer` options (RocketMQ's `benchmarkBatchProducer`).
#[derive(Debug, Clone, Args)]
pub struct BatchProducerArgs {
    /// Topic.
    #[arg(short = 't', long = "topic", default_value = "BenchmarkTest")]
    pub topic: String,
    /// Sender threads.
    #[arg(short = 'w', long = "threadCount", default_value_t = 64)]
    pub threads: usize,
    /// Body bytes.
    #[arg(short = 's', long = "messageSize", default_value_t = 128)]
    pub message_size: usize,
    /// Messages per batch request.
    #[arg(short = 'b', long = "batchSize", default_value_t = 16)]
    pub batch_size: usize,
    /// Set a key on every message.
    #[arg(short = 'k', long = "keyEnable", default_value = "false", value_parser = parse_bool)]
    pub key_enable: bool,
    /// Add user properties `propN=helloV` until their total length passes this.
    #[arg(short = 'p', long = "propertySize", default_value_t = 0)]
    pub property_size: usize,
    /// Tags `tag<k>` with k consecutive from the success count % n; 0 sends no tag.
    #[arg(short = 'l', long = "tagCount", default_value_t = 0)]
    pub tag_count: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A random alphanumeric body, generated once and reused, as RocketMQ does.
pub fn random_body(bytes: usize) -> Bytes {
    use rand::Rng;
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())])
        .collect()
}

/// RocketMQ's `propN=helloV` user properties, added until their total length passes `size`.
pub fn benchmark_properties(size: usize) -> Vec<(String, String)> {
    let mut properties = Vec::new();
    let mut total = 0;
    let mut n = 0;
    while size > 0 && total <= size {
        let name = format!("prop{n}");
        let value = format!("hello{n}");
        total += name.len() + value.len();
        properties.push((name, value));
        n += 1;
    }
    properties
}

/// Whether the broker answered with an error (RocketMQ's "response failed") rather than the
/// send failing on the way ("send failed").
fn is_broker_error(error: &ClientError) -> bool {
    match error {
        ClientError::Broker { .. } => true,
        ClientError::SendFailed { last, .. } => is_broker_error(last),
        _ => false,
    }
}

/// Splits `total` over `threads`, the remainder to thread 0 (RocketMQ's split).
pub fn split_quantity(total: u64, threads: usize) -> Vec<u64> {
    let threads = threads.max(1) as u64;
    (0..threads)
        .map(|i| total / threads + if i == 0 { total % threads } else { 0 })
        .collect()
}

struct Shared {
    producer: Producer,
    counters: Arc<Counters<{ producer::N }>>,
    latency: Mutex<Latency>,
    args: ProducerArgs,
    body: Bytes,
    first_error_reported: AtomicBool,
}

/// Prints the first send error (so a misconfigured run says why at once); later ones are
/// only counted, and logged at `RUST_LOG=warn`.
fn report_first_error(reported: &AtomicBool, error: &ClientError) {
    if !reported.swap(true, Ordering::Relaxed) {
        eprintln!("send failed: {error} (further failures are counted; RUST_LOG=warn logs each)");
    } else {
        tracing::warn!(%error, "send failed");
    }
}

impl Shared {
    fn message(&self) -> Message {
        let mut message = Message::new(self.args.topic.clone(), self.body.clone());
        let now = now_ms();
        if self.args.key_enable {
            message = message.with_keys([(now / 1000).to_string()]);
        }
        if self.args.tag_count > 0 {
            message = message.with_tags(format!("tag{}", now % self.args.tag_count));
        }
        if self.args.delay_enable {
            message = message.with_delay_level(self.args.delay_level);
        }
        message
    }

    /// Sends one message and counts it; returns whether it succeeded.
    async fn send_one(&self) -> bool {
        let started = Instant::now();
        match self.producer.send(self.message()).await {
            Ok(_) => {
                let elapsed = started.elapsed();
                let rt_ms = elapsed.as_millis() as u64;
                self.counters.add(producer::SUCCESS, 1);
                self.counters.add(producer::RT_TOTAL_MS, rt_ms);
                self.counters.observe_max(rt_ms);
                if let Ok(mut latency) = self.latency.lock() {
                    latency.record_us(elapsed.as_micros() as u64);
                }
                true
            }
            Err(error) => {
                let counter = if is_broker_error(&error) {
                    producer::RESPONSE_FAILED
                } else {
                    producer::SEND_FAILED
                };
                self.counters.add(counter, 1);
                report_first_error(&self.first_error_reported, &error);
                false
            }
        }
    }
}

/// Runs `producer`.
pub async fn run_producer(mut args: ProducerArgs) -> anyhow::Result<()> {
    args.common.check_supported()?;
    if !args.compress_type.eq_ignore_ascii_case("zlib") {
        bail!(
            "-ct {}: only ZLIB compression is supported",
            args.compress_type
        );
    }
    if args.async_enable {
        args.threads = 1;
    }
    let sink = args.common.sink();
    sink.line(&format!(
        "topic: {}, threadCount: {}, messageSize: {}, keyEnable: {}, propertySize: 0, tagCount: {}, traceEnable: {}, aclEnable: {}, messageQuantity: {}, delayEnable: {}, delayLevel: {}, asyncEnable: {}\n compressEnable: {}, reportInterval: {}",
        args.topic, args.threads, args.message_size, args.key_enable, args.tag_count, args.common.trace,
        args.common.acl, args.quantity, args.delay_enable, args.delay_level, args.async_enable,
        args.compress, args.common.report_interval_ms
    ));
    let instance = args.common.client(&format!("benchmark_{}", now_ms()))?;
    let mut config = ProducerConfig::new("benchmark_producer");
    config.compress_over_bytes = if args.compress {
        args.compress_over
    } else {
        usize::MAX
    };
    config.compress_level = args.compress_level;
    let producer = Producer::new(instance.clone(), config).context("cannot start the producer")?;
    let shared = Arc::new(Shared {
        producer,
        counters: Arc::new(Counters::default()),
        latency: Mutex::new(Latency::default()),
        body: random_body(args.message_size),
        args: args.clone(),
        first_error_reported: AtomicBool::new(false),
    });

    let (stop_tx, stop_rx) = report::stop_signal(args.common.duration_s.map(Duration::from_secs));
    let reporter = tokio::spawn(report::run(
        shared.counters.clone(),
        Duration::from_millis(args.common.report_interval_ms),
        sink,
        producer::SUCCESS,
        Box::new(
            |now: &str,
             delta: &stats::Delta<{ producer::N }>,
             counters: &Counters<{ producer::N }>| {
                stats::producer_line(now, delta, counters.maxima().0)
            },
        ),
        stop_rx.clone(),
    ));
    let started = Instant::now();
    if args.async_enable {
        send_async(&shared, args.quantity, stop_rx).await;
    } else {
        let mut senders = tokio::task::JoinSet::new();
        for quota in split_quantity(args.quantity, args.threads) {
            let shared = shared.clone();
            let stop = stop_rx.clone();
            senders.spawn(async move {
                let mut sent = 0u64;
                while !*stop.borrow() && (args.quantity == 0 || sent < quota) {
                    sent += 1;
                    if !shared.send_one().await {
                        tokio::time::sleep(FAILURE_PAUSE).await;
                    }
                }
            });
        }
        while senders.join_next().await.is_some() {}
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let window = reporter.await.context("the reporter task failed")?;
    let max_rt = shared.counters.maxima().0;
    if let Some(line) = stats::producer_complete_line(&window, max_rt) {
        sink.line(&line);
    }
    let summary = shared
        .latency
        .lock()
        .map(|l| l.summary())
        .unwrap_or_else(|e| e.into_inner().summary());
    sink.line(&summary.line());
    let totals = shared.counters.snapshot(now_ms()).values;
    if args.common.json {
        print_json(
            "producer",
            &args.topic,
            args.threads,
            args.message_size,
            totals[producer::SUCCESS],
            totals[producer::SEND_FAILED],
            totals[producer::RESPONSE_FAILED],
            totals[producer::RT_TOTAL_MS],
            max_rt,
            elapsed,
            &summary,
        );
    }
    shared.producer.shutdown();
    instance.shutdown();
    Ok(())
}

async fn send_async(shared: &Arc<Shared>, quantity: u64, stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(ASYNC_IN_FLIGHT_MAX));
    let mut issued = 0u64;
    while !*stop.borrow() && (quantity == 0 || issued < quantity) {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        issued += 1;
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.send_one().await;
            drop(permit);
        });
    }
    // Wait for the outstanding sends.
    let _ = permits.acquire_many(ASYNC_IN_FLIGHT_MAX as u32).await;
}

/// Prints a tool's `--json` summary line on stdout.
#[allow(clippy::too_many_arguments)]
pub(crate) fn print_json(
    tool: &str,
    topic: &str,
    threads: usize,
    message_size: usize,
    success: u64,
    send_failed: u64,
    response_failed: u64,
    rt_total_ms: u64,
    max_rt_ms: u64,
    elapsed: Duration,
    latency: &Summary,
) {
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let value = serde_json::json!({
        "tool": tool,
        "topic": topic,
        "threads": threads,
        "message_size": message_size,
        "success": success,
        "send_failed": send_failed,
        "response_failed": response_failed,
        "elapsed_s": seconds,
        "tps": success as f64 / seconds,
        "avg_rt_ms": if success > 0 { rt_total_ms as f64 / success as f64 } else { 0.0 },
        "max_rt_ms": max_rt_ms,
        "latency_us": latency,
    });
    println!("{value}");
}

/// Runs `batch-producer`.
pub async fn run_batch_producer(args: BatchProducerArgs) -> anyhow::Result<()> {
    args.common.check_supported()?;
    if args.batch_size == 0 {
        bail!("-b must be at least 1");
    }
    let sink = args.common.sink();
    sink.line(&format!(
        "topic: {}, threadCount: {}, messageSize: {}, batchSize: {}, keyEnable: {}, propertySize: {}, tagCount: {}, reportInterval: {}",
        args.topic, args.threads, args.message_size, args.batch_size, args.key_enable, args.property_size, args.tag_count, args.common.report_interval_ms
    ));
    let instance = args
        .common
        .client(&format!("benchmark_batch_{}", now_ms()))?;
    let producer = Producer::new(
        instance.clone(),
        ProducerConfig::new("benchmark_batch_producer"),
    )
    .context("cannot start the producer")?;
    let counters: Arc<Counters<{ batch::N }>> = Arc::new(Counters::default());
    let latency = Arc::new(Mutex::new(Latency::default()));
    let body = random_body(args.message_size);
    let properties = benchmark_properties(args.property_size);
    let (stop_tx, stop_rx) = report::stop_signal(args.common.duration_s.map(Duration::from_secs));
    let reporter = tokio::spawn(report::run(
        counters.clone(),
        Duration::from_millis(args.common.report_interval_ms),
        sink,
        batch::MESSAGES,
        Box::new(
            |now: &str, delta: &stats::Delta<{ batch::N }>, counters: &Counters<{ batch::N }>| {
                stats::batch_line(now, delta, counters.maxima().0)
            },
        ),
        stop_rx.clone(),
    ));
    let started = Instant::now();
    let first_error = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..args.threads.max(1) {
        let first_error = first_error.clone();
        let (producer, counters, latency, body, properties, stop, args) = (
            producer.clone(),
            counters.clone(),
            latency.clone(),
            body.clone(),
            properties.clone(),
            stop_rx.clone(),
            args.clone(),
        );
        senders.spawn(async move {
            while !*stop.borrow() {
                let success_so_far = counters.snapshot(0).values[batch::SUCCESS];
                let messages: Vec<Message> = (0..args.batch_size)
                    .map(|i| {
                        let mut message = Message::new(args.topic.clone(), body.clone());
                        if args.key_enable {
                            message = message.with_keys([(now_ms() / 1000).to_string()]);
                        }
                        if args.tag_count > 0 {
                            message = message.with_tags(format!(
                                "tag{}",
                                (success_so_far + i as u64) % args.tag_count
                            ));
                        }
                        for (name, value) in &properties {
                            message = message.with_property(name.clone(), value.clone());
                        }
                        message
                    })
                    .collect();
                let count = messages.len() as u64;
                let t0 = Instant::now();
                match producer.send_batch(messages).await {
                    Ok(_) => {
                        let elapsed = t0.elapsed();
                        let rt_ms = elapsed.as_millis() as u64;
                        counters.add(batch::SUCCESS, 1);
                        counters.add(batch::MESSAGES, count);
                        counters.add(batch::RT_TOTAL_MS, rt_ms);
                        counters.observe_max(rt_ms);
                        if let Ok(mut latency) = latency.lock() {
                            latency.record_us(elapsed.as_micros() as u64);
                        }
                    }
                    Err(error) => {
                        counters.add(batch::FAILED, 1);
                        counters.add(batch::MESSAGES_FAILED, count);
                        report_first_error(&first_error, &error);
                        tokio::time::sleep(FAILURE_PAUSE).await;
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    reporter.await.context("the reporter task failed")?;
    let summary = latency
        .lock()
        .map(|l| l.summary())
        .unwrap_or_else(|e| e.into_inner().summary());
    sink.line(&summary.line());
    let totals = counters.snapshot(now_ms()).values;
    if args.common.json {
        print_json(
            "batch-producer",
            &args.topic,
            args.threads,
            args.message_size,
            totals[batch::MESSAGES],
            totals[batch::MESSAGES_FAILED],
            0,
            totals[batch::RT_TOTAL_MS],
            counters.maxima().0,
            elapsed,
            &summary,
        );
    }
    producer.shutdown();
    instance.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_split_gives_the_remainder_to_thread_zero() {
        assert_eq!(split_quantity(10, 3), vec![4, 3, 3]);
        assert_eq!(split_quantity(2, 4), vec![2, 0, 0, 0]);
        assert_eq!(split_quantity(0, 2), vec![0, 0]);
    }

    #[test]
    fn body_is_alphanumeric_of_the_requested_size() {
        let body = random_body(1024);
        assert_eq!(body.len(), 1024);
        assert!(body.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn properties_pass_the_requested_size() {
        assert!(benchmark_properties(0).is_empty());
        let props = benchmark_properties(30);
        let total: usize = props.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(total > 30);
        assert_eq!(props[0], ("prop0".to_string(), "hello0".to_string()));
    }
}
