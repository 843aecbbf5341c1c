//! The loopback baseline for `-w 1` RT: a tokio TCP ping-pong on 127.0.0.1 with
//! `--size`-byte requests and a 1-byte answer per round (about what a 1 KiB send and its
//! small response move), `--rounds` rounds after 1 000 warm-up rounds.
//!
//! ```text
//! cargo run --release -p ringmq-perf --example loopback_rtt -- --size 1024 --rounds 20000
//! ```
//!
//! Prints one JSON line: `{"size":…,"rounds":…,"avg_us":…,"p50_us":…,"p99_us":…}`.

use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WARMUP: usize = 1_000;
/// Largest request size accepted.
const MAX_SIZE: usize = 16 << 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut size, mut rounds) = (1024usize, 20_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--size" => size = value.parse()?,
            "--rounds" => rounds = value.parse()?,
            _ => bail!("unknown option {flag}"),
        }
    }
    if size == 0 || size > MAX_SIZE || rounds == 0 {
        bail!("--size must be 1..={MAX_SIZE} and --rounds positive");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        loop {
            if socket.read_exact(&mut buf).await.is_err() {
                return anyhow::Ok(());
            }
            socket.write_all(&[1]).await?;
        }
    });
    let mut client = TcpStream::connect(addr).await?;
    client.set_nodelay(true)?;
    let request = vec![b'x'; size];
    let mut answer = [0u8; 1];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let started = Instant::now();
        client.write_all(&request).await?;
        client.read_exact(&mut answer).await?;
        if i >= WARMUP {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    drop(client);
    server.await??;
    samples.sort_unstable();
    let avg = samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1000.0;
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "{{\"size\":{size},\"rounds\":{rounds},\"avg_us\":{avg:.1},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
