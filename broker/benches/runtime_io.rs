//! Shard runtime benchmarks, each measured next to its baseline in the same run:
//!
//! - `echo`: 1 KiB loopback echo round trip over one connection; a blocking `std::net` client
//!   against (a) a blocking `std::net` echo server thread and (b) an echo server on our
//!   runtime; plus (c) client and server both on our runtime (two shard threads).
//! - `write`: sequential 1 MiB `WriteFixed` `O_DIRECT` writes at queue depth 8 into a
//!   preallocated file, next to `fio --ioengine=io_uring --direct=1 --fixedbufs --bs=1M
//!   --iodepth=8` on a fresh preallocated file.
//! - `splice`: a page-cached file sent to a loopback socket with linked splices, vs read+write
//!   on our runtime, vs blocking pread+write.
//!
//! Run: `cargo bench -p ringmq-broker --bench runtime_io -- [echo|write|splice|all]`.
//! Sizes: `RINGMQ_BENCH_ECHO_ITERS` (20000), `RINGMQ_BENCH_WRITE_MB` (512),
//! `RINGMQ_BENCH_SPLICE_MB` (512), `RINGMQ_BENCH_DIR` (/tmp), `RINGMQ_BENCH_ROUNDS` (2).

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_broker::runtime::{
    File, RuntimeConfig, Shard, TcpListener, TcpStream, buf_pool, spawn_local,
};

const ECHO_BYTES: usize = 1024;
const MIB: usize = 1 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> PathBuf {
    PathBuf::from(std::env::var("RINGMQ_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn shard_config() -> RuntimeConfig {
    RuntimeConfig {
        shards: Some(1),
        pin_threads: false,
        poison_buffers: false,
        ..RuntimeConfig::default()
    }
}

fn main() {
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "all".into());
    let rounds = env_usize("RINGMQ_BENCH_ROUNDS", 2);
    println!(
        "ringmq runtime benchmarks ({which}), {rounds} round(s); load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if which == "echo" || which == "all" {
        echo(rounds);
    }
    if which == "write" || which == "all" {
        write(rounds);
    }
    if which == "splice" || which == "all" {
        splice(rounds);
    }
}

// ---------------------------------------------------------------------------------------
// echo

fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn report_latency(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let p50 = percentile_us(&samples, 0.50);
    println!(
        "  {name:<44} p50 {p50:>7.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us  (n={})",
        percentile_us(&samples, 0.99),
        percentile_us(&samples, 0.999),
        samples.len()
    );
    p50
}

/// Blocking client: sends 1 KiB, reads 1 KiB back, `iters` times after a warm-up.
fn std_client(addr: SocketAddr, iters: usize) -> Vec<Duration> {
    let mut s = StdStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let msg = [7u8; ECHO_BYTES];
    let mut back = [0u8; ECHO_BYTES];
    let warmup = iters / 10;
    let mut samples = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let t = Instant::now();
        s.write_all(&msg).expect("send");
        s.read_exact(&mut back).expect("recv");
        if i >= warmup {
            samples.push(t.elapsed());
        }
    }
    samples
}

fn std_echo_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = StdListener::bind(localhost()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut buf = [0u8; ECHO_BYTES];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => s.write_all(&buf[..n]).expect("echo"),
            }
        }
    });
    (addr, t)
}

async fn ring_echo_conn(s: TcpStream) {
    s.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::with_capacity(ECHO_BYTES);
    loop {
        let (n, b) = s.recv(buf).await;
        match n {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let (r, mut b) = s.send_all(b).await;
                r.expect("echo");
                b.clear();
                buf = b;
            }
        }
    }
}

fn ring_echo_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let shard = Shard::new(&shard_config()).expect("shard");
        shard.block_on(async move {
            let l = TcpListener::bind(localhost()).expect("bind");
            tx.send(l.local_addr()).expect("addr");
            let (s, _) = l.accept().await.expect("accept");
            ring_echo_conn(s).await;
        });
    });
    (rx.recv().expect("server addr"), t)
}

fn ring_client(addr: SocketAddr, iters: usize) -> Vec<Duration> {
    let shard = Shard::new(&shard_config()).expect("shard");
    shard.block_on(async move {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let warmup = iters / 10;
        let mut samples = Vec::with_capacity(iters);
        let mut msg = vec![7u8; ECHO_BYTES];
        let mut back = Vec::with_capacity(ECHO_BYTES);
        for i in 0..warmup + iters {
            let t = Instant::now();
            let (r, m) = s.send_all(msg).await;
            r.expect("send");
            msg = m;
            let mut got = 0;
            while got < ECHO_BYTES {
                back.clear();
                let (n, b) = s.recv(back).await;
                back = b;
                let n = n.expect("recv");
                assert!(n > 0, "server closed");
                got += n;
            }
            if i >= warmup {
                samples.push(t.elapsed());
            }
        }
        samples
    })
}

fn echo(rounds: usize) {
    let iters = env_usize("RINGMQ_BENCH_ECHO_ITERS", 20_000);
    println!("echo: 1 KiB round trips over one loopback connection, {iters} per case");
    for round in 1..=rounds {
        println!(" round {round}");
        let (addr, t) = std_echo_server();
        let std_p50 = report_latency(
            "blocking client -> blocking std server",
            std_client(addr, iters),
        );
        t.join().expect("server");
        let (addr, t) = ring_echo_server();
        let ring_p50 = report_latency(
            "blocking client -> ringmq runtime server",
            std_client(addr, iters),
        );
        t.join().expect("server");
        let (addr, t) = ring_echo_server();
        report_latency(
            "ringmq client -> ringmq server (2 shards)",
            ring_client(addr, iters),
        );
        t.join().expect("server");
        println!(
            "  ratio runtime server p50 / blocking p50: {:.2}",
            ring_p50 / std_p50
        );
    }
}

// ---------------------------------------------------------------------------------------
// write

fn ring_write(path: &Path, total: usize) -> (f64, u64) {
    const QD: usize = 8;
    let config = RuntimeConfig {
        ring_entries: 64,
        pool_buffers: QD,
        pool_buf_bytes: MIB,
        ..shard_config()
    };
    let shard = Shard::new(&config).expect("shard");
    let secs = shard.block_on(async move {
        let mut o = std::fs::OpenOptions::new();
        o.read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT);
        let file = Rc::new(File::open_with(path, &o).expect("open O_DIRECT"));
        file.fallocate(0, total as u64, 0).await.expect("fallocate");
        file.sync_all().await.expect("fsync after fallocate");
        let next = Rc::new(Cell::new(0usize));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..QD {
            let (file, next) = (file.clone(), next.clone());
            tasks.push(spawn_local(async move {
                let mut buf = buf_pool().take().await;
                buf.as_full_mut().fill(0x5a);
                buf.set_len(MIB);
                loop {
                    let off = next.get();
                    if off >= total {
                        break;
                    }
                    next.set(off + MIB);
                    let (r, b) = file.write_all_at(buf, off as u64).await;
                    r.expect("WriteFixed");
                    buf = b;
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        start.elapsed().as_secs_f64()
    });
    let registered = shard.stats().fixed_buffers_registered;
    (total as f64 / secs / 1e6, registered)
}

fn fio_write(path: &Path, total: usize) -> Option<f64> {
    let out = std::process::Command::new("fio")
        .args([
            "--name=ringmq-write",
            &format!("--filename={}", path.display()),
            "--ioengine=io_uring",
            "--direct=1",
            "--fixedbufs",
            "--bs=1M",
            "--iodepth=8",
            "--rw=write",
            &format!("--size={}M", total / MIB),
            "--fallocate=native",
            "--output-format=json",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let write = &text[text.find("\"write\" : {")?..];
    let bw = &write[write.find("\"bw_bytes\"")? + "\"bw_bytes\"".len()..];
    let digits: String = bw
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<f64>().ok().map(|b| b / 1e6)
}

fn write(rounds: usize) {
    let total = env_usize("RINGMQ_BENCH_WRITE_MB", 512) * MIB;
    let dir = bench_dir();
    println!(
        "write: sequential 1 MiB O_DIRECT writes, QD 8, {} MiB into a fresh preallocated file in {}",
        total / MIB,
        dir.display()
    );
    for round in 1..=rounds {
        let ours_path = dir.join(format!("ringmq-bench-write-{}", std::process::id()));
        let fio_path = dir.join(format!("ringmq-bench-fio-{}", std::process::id()));
        let (ours, registered) = ring_write(&ours_path, total);
        let _ = std::fs::remove_file(&ours_path);
        let fio = fio_write(&fio_path, total);
        let _ = std::fs::remove_file(&fio_path);
        match fio {
            Some(fio) => println!(
                " round {round}: ringmq WriteFixed {ours:>7.0} MB/s (registered buffers: {registered})   \
                 fio io_uring fixedbufs {fio:>7.0} MB/s   ratio {:.2}",
                ours / fio
            ),
            None => println!(
                " round {round}: ringmq WriteFixed {ours:>7.0} MB/s (registered buffers: {registered})   \
                 fio unavailable"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// splice

/// A receiver thread draining one connection; returns (address, handle yielding bytes).
fn drain_server() -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let l = StdListener::bind(localhost()).expect("bind");
    let addr = l.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; MIB];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    });
    (addr, t)
}

/// User + system CPU seconds of the whole process so far (every thread, including the
/// receiver and io_uring's worker threads): a load-robust cost measure next to wall time.
fn process_cpu_secs() -> f64 {
    // SAFETY: zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `send` against a fresh draining receiver; returns (GB/s, CPU seconds per GB).
fn timed_send(total: usize, send: impl FnOnce(SocketAddr)) -> (f64, f64) {
    let (addr, t) = drain_server();
    let cpu = process_cpu_secs();
    let start = Instant::now();
    send(addr);
    let got = t.join().expect("drain");
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu;
    assert_eq!(got, total, "receiver got every byte");
    let gb = total as f64 / 1e9;
    (gb / secs, cpu / gb)
}

fn splice(rounds: usize) {
    let total = env_usize("RINGMQ_BENCH_SPLICE_MB", 512) * MIB;
    let path = bench_dir().join(format!("ringmq-bench-splice-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).expect("create");
        let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
        for _ in 0..total / MIB {
            f.write_all(&chunk).expect("fill");
        }
    }
    // Read it once so it is page-cached.
    let f = std::fs::File::open(&path).expect("open");
    let mut buf = vec![0u8; MIB];
    for off in (0..total).step_by(MIB) {
        f.read_exact_at(&mut buf, off as u64).expect("warm");
    }
    println!(
        "splice: {} MiB page-cached file -> loopback socket (receiver: blocking thread)",
        total / MIB
    );
    for round in 1..=rounds {
        let splice = timed_send(total, |addr| {
            let shard = Shard::new(&shard_config()).expect("shard");
            shard.block_on(async {
                let file = File::open(&path).expect("open");
                let s = TcpStream::connect(addr).await.expect("connect");
                let n = s.splice_from(&file, 0, total).await.expect("splice");
                assert_eq!(n, total);
            });
        });
        let ring_rw = timed_send(total, |addr| {
            let shard = Shard::new(&shard_config()).expect("shard");
            shard.block_on(async {
                let file = File::open(&path).expect("open");
                let s = TcpStream::connect(addr).await.expect("connect");
                let mut buf = Vec::with_capacity(MIB);
                let mut off = 0;
                while off < total {
                    buf.clear();
                    let (n, b) = file.read_at(buf, off as u64).await;
                    let n = n.expect("read");
                    let (r, b) = s.send_all(b).await;
                    r.expect("send");
                    buf = b;
                    off += n;
                }
            });
        });
        let std_rw = timed_send(total, |addr| {
            let f = std::fs::File::open(&path).expect("open");
            let mut s = StdStream::connect(addr).expect("connect");
            let mut buf = vec![0u8; MIB];
            for off in (0..total).step_by(MIB) {
                f.read_exact_at(&mut buf, off as u64).expect("read");
                s.write_all(&buf).expect("send");
            }
        });
        println!(
            " round {round}: ringmq splice {:.2} GB/s ({:.2} CPU-s/GB)   ringmq read+send {:.2} GB/s \
             ({:.2} CPU-s/GB)   blocking pread+write {:.2} GB/s ({:.2} CPU-s/GB)",
            splice.0, splice.1, ring_rw.0, ring_rw.1, std_rw.0, std_rw.1
        );
    }
    let _ = std::fs::remove_file(&path);
}
