//! A JetStream publish-rate probe for `perf/scripts/compare-nats.sh`: one connection,
//! `--inflight` publishes awaiting their JetStream ack at any time, fixed-size bodies,
//! for `--duration` seconds. Speaks the NATS text protocol directly over tokio (no NATS
//! client crate), so it adds no dependency to the workspace.
//!
//! ```text
//! cargo run --release -p ringmq-perf --example nats_js_pub -- \
//!     --addr 127.0.0.1:4222 --size 1024 --inflight 256 --duration 10
//! ```
//!
//! Prints one JSON line: `{"acked":…,"errors":…,"elapsed_s":…,"rate":…,"avg_rt_ms":…}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Longest protocol line accepted from the server.
const MAX_LINE: usize = 64 * 1024;
/// Largest message payload accepted from the server.
const MAX_PAYLOAD: usize = 1 << 20;

struct Options {
    addr: String,
    size: usize,
    inflight: usize,
    duration: Duration,
    stream: String,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        addr: "127.0.0.1:4222".into(),
        size: 1024,
        inflight: 256,
        duration: Duration::from_secs(10),
        stream: "ringmqbench".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => options.addr = value,
            "--size" => options.size = value.parse()?,
            "--inflight" => options.inflight = value.parse()?,
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--stream" => options.stream = value,
            _ => bail!("unknown option {flag}"),
        }
    }
    if options.inflight == 0 || options.size == 0 {
        bail!("--inflight and --size must be positive");
    }
    Ok(options)
}

/// Reads one server line (without CRLF); answers PINGs; skips +OK / INFO.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut String,
) -> anyhow::Result<()> {
    line.clear();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_line(line)
        .await
        .context("read from nats-server")?;
    if n == 0 {
        bail!("nats-server closed the connection");
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let stream = TcpStream::connect(&options.addr)
        .await
        .with_context(|| format!("connect to {}", options.addr))?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(256 * 1024, read);
    let mut writer = BufWriter::with_capacity(256 * 1024, write);
    let mut line = String::new();
    read_line(&mut reader, &mut line).await?;
    if !line.starts_with("INFO") {
        bail!("expected INFO, got {line:?}");
    }
    let subject = format!("{}.data", options.stream);
    writer
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,\"name\":\"ringmq-perf\"}\r\nSUB _INBOX.rb.* 1\r\n")
        .await?;
    // Create the stream (file storage); "already in use" from an earlier run is fine.
    let config = format!(
        "{{\"name\":\"{0}\",\"subjects\":[\"{0}.>\"],\"storage\":\"file\",\"retention\":\"limits\",\"max_bytes\":4294967296,\"discard\":\"old\"}}",
        options.stream
    );
    writer
        .write_all(
            format!(
                "PUB $JS.API.STREAM.CREATE.{} _INBOX.rb.create {}\r\n{config}\r\nPING\r\n",
                options.stream,
                config.len()
            )
            .as_bytes(),
        )
        .await?;
    writer.flush().await?;
    // Wait for the create answer.
    loop {
        read_line(&mut reader, &mut line).await?;
        if line == "PING" {
            writer.write_all(b"PONG\r\n").await?;
            writer.flush().await?;
        } else if let Some(rest) = line.strip_prefix("MSG ") {
            let len: usize = rest
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .context("bad MSG line")?;
            let mut payload = vec![0; len.min(MAX_PAYLOAD) + 2];
            reader.read_exact(&mut payload).await?;
            let text = String::from_utf8_lossy(&payload);
            if text.contains("\"error\"") && !text.contains("already in use") {
                bail!("stream create failed: {text}");
            }
            break;
        } else if line.starts_with("-ERR") {
            bail!("nats-server: {line}");
        }
    }

    let permits = Arc::new(Semaphore::new(options.inflight));
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + options.duration;
    let body = vec![b'x'; options.size];

    let reader_permits = permits.clone();
    let reader_sent = sent_at.clone();
    let acks = tokio::spawn(async move {
        let mut line = String::new();
        let (mut acked, mut errors, mut rt_total) = (0u64, 0u64, Duration::ZERO);
        loop {
            if read_line(&mut reader, &mut line).await.is_err() {
                break;
            }
            let Some(rest) = line.strip_prefix("MSG ") else {
                continue;
            };
            let mut parts = rest.split(' ');
            let inbox = parts.next().unwrap_or_default().to_owned();
            let len: usize = parts.next_back().and_then(|n| n.parse().ok()).unwrap_or(0);
            let mut payload = vec![0; len.min(MAX_PAYLOAD) + 2];
            if reader.read_exact(&mut payload).await.is_err() {
                break;
            }
            let Some(seq) = inbox
                .strip_prefix("_INBOX.rb.")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let sent = reader_sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&seq);
            if payload.windows(7).any(|w| w == b"\"error\"") {
                errors += 1;
            } else {
                acked += 1;
                if let Some(sent) = sent {
                    rt_total += sent.elapsed();
                }
            }
            reader_permits.add_permits(1);
            if reader_sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty()
                && Instant::now() >= deadline
            {
                break;
            }
        }
        (acked, errors, rt_total)
    });

    let mut seq = 0u64;
    while Instant::now() < deadline {
        let permit = match permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                writer.flush().await?;
                match tokio::time::timeout_at(deadline.into(), permits.acquire()).await {
                    Ok(permit) => permit?,
                    Err(_) => break,
                }
            }
        };
        permit.forget();
        seq += 1;
        sent_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(seq, Instant::now());
        writer
            .write_all(format!("PUB {subject} _INBOX.rb.{seq} {}\r\n", body.len()).as_bytes())
            .await?;
        writer.write_all(&body).await?;
        writer.write_all(b"\r\n").await?;
    }
    writer.write_all(b"PING\r\n").await?;
    writer.flush().await?;
    let (acked, errors, rt_total) = tokio::time::timeout(Duration::from_secs(30), acks)
        .await
        .context("acks did not arrive within 30 s")??;
    let elapsed = started.elapsed().as_secs_f64();
    let avg_rt_ms = if acked > 0 {
        rt_total.as_secs_f64() * 1000.0 / acked as f64
    } else {
        0.0
    };
    println!(
        "{{\"acked\":{acked},\"errors\":{errors},\"elapsed_s\":{elapsed:.3},\"rate\":{:.0},\"avg_rt_ms\":{avg_rt_ms:.3}}}",
        acked as f64 / elapsed
    );
    Ok(())
}
