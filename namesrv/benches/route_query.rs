//! `GET_ROUTEINFO_BY_TOPIC` throughput of the real `ringmq-namesrv` binary: 8 brokers each
//! registering the same 1 000 topics (so every route names 8 broker groups), then 64
//! connections asking for routes of random topics, one request in flight per connection,
//! for `BENCH_SECS` seconds (default 10) after a 2 s warm-up.
//!
//! ```sh
//! cargo bench -p ringmq-namesrv --bench route_query
//! BENCH_SECS=30 BENCH_CONNECTIONS=64 cargo bench -p ringmq-namesrv --bench route_query
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use ringmq_wire::body::register::{DataVersion, RegisterBrokerBody};
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::RegisterBrokerRequestHeader;
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BROKERS: usize = 8;
const TOPICS: usize = 1_000;
const WARMUP: Duration = Duration::from_secs(2);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there is nothing else to parse.
    let seconds = env_or("BENCH_SECS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 64) as usize;
    let kv_dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .args(["--listen", "127.0.0.1:0", "--kv-config-path"])
        .arg(kv_dir.path().join("kv.json"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn ringmq-namesrv")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("ringmq-namesrv listening on ")
        .context("address line")?
        .parse()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pid = child.id();
    let result = runtime.block_on(run(addr, pid, connections, Duration::from_secs(seconds)));
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// CPU time (user + system) the process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

async fn run(
    addr: SocketAddr,
    pid: u32,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    // Brokers stay connected for the whole run: a closed connection unregisters its broker.
    let mut broker_connections = Vec::new();
    for broker in 0..BROKERS {
        let mut conn = Conn::connect(addr).await?;
        let response = conn.call(&register_request(broker)).await?;
        if response.code != ResponseCode::Success.as_i32() {
            bail!("register failed: {:?}", response.remark);
        }
        broker_connections.push(conn);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for seed in 0..connections {
        let stop = stop.clone();
        let measuring = measuring.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64 + 1);
            let mut bytes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let topic = format!("Topic{:04}", rng % TOPICS as u64);
                let mut request = RemotingCommand::request(RequestCode::GetRouteinfoByTopic);
                request.ext_fields.insert("topic".into(), topic.into());
                let start = Instant::now();
                let response = conn.call(&request).await?;
                let micros = start.elapsed().as_micros() as u64;
                if response.code != ResponseCode::Success.as_i32() {
                    bail!("route query failed: {:?}", response.remark);
                }
                if measuring.load(Ordering::Relaxed) {
                    histogram.record(micros.max(1))?;
                    bytes += response.body.len() as u64;
                }
            }
            anyhow::Ok((histogram, bytes))
        }));
    }
    tokio::time::sleep(WARMUP).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let cpu_start = cpu_time(pid)?;
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(pid)?.saturating_sub(cpu_start);
    stop.store(true, Ordering::Relaxed);

    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut body_bytes = 0;
    for task in tasks {
        let (histogram, bytes) = task.await??;
        total.add(histogram)?;
        body_bytes += bytes;
    }
    let requests = total.len();
    println!(
        "route_query: {BROKERS} brokers x {TOPICS} topics, {connections} connections, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  {:.0} requests/s, route body {} B avg",
        requests as f64 / elapsed.as_secs_f64(),
        body_bytes / requests.max(1)
    );
    println!(
        "  server CPU {:.2} s = {:.0}% of one core, {:.1} us CPU per request",
        server_cpu.as_secs_f64(),
        100.0 * server_cpu.as_secs_f64() / elapsed.as_secs_f64(),
        server_cpu.as_secs_f64() * 1e6 / requests.max(1) as f64
    );
    println!(
        "  latency us: p50 {} p90 {} p99 {} p99.9 {} max {}",
        total.value_at_quantile(0.50),
        total.value_at_quantile(0.90),
        total.value_at_quantile(0.99),
        total.value_at_quantile(0.999),
        total.max()
    );
    drop(broker_connections);
    Ok(())
}

fn register_request(broker: usize) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    let wrapper = &mut body.topic_config_serialize_wrapper;
    wrapper.data_version = DataVersion {
        counter: 1,
        state_version: 0,
        timestamp: 1,
    };
    for topic in 0..TOPICS {
        let name = format!("Topic{topic:04}");
        wrapper
            .topic_config_table
            .insert(name.clone(), TopicConfig::new(name, 8));
    }
    let mut request = RemotingCommand::request(RequestCode::RegisterBroker);
    RegisterBrokerRequestHeader {
        broker_name: format!("broker-{broker}"),
        broker_addr: format!("127.0.0.1:{}", 10911 + broker * 10),
        cluster_name: "BenchCluster".into(),
        ha_server_addr: format!("127.0.0.1:{}", 10912 + broker * 10),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: true,
        body_crc32: None,
    }
    .encode_into(&mut request);
    request.with_body(body.encode(true))
}

/// One client connection: one request in flight at a time.
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    out: BytesMut,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            decoder: FrameDecoder::default(),
            out: BytesMut::with_capacity(4096),
        })
    }

    async fn call(&mut self, request: &RemotingCommand) -> anyhow::Result<RemotingCommand> {
        self.out.clear();
        request.encode_into(&mut self.out)?;
        self.stream.write_all(&self.out).await?;
        loop {
            if let Some(response) = self.decoder.next_command()? {
                if response.opaque != request.opaque {
                    bail!("unexpected opaque {}", response.opaque);
                }
                return Ok(response);
            }
            let buffer = self.decoder.buffer_mut();
            buffer.reserve(16 * 1024);
            if self.stream.read_buf(buffer).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }
}
