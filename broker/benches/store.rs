//! Store benchmarks on the real disk (`O_DIRECT` where accepted), printed as Markdown table
//! rows for `docs/benchmarks.md`:
//!
//! * raw `O_DIRECT` write bandwidth with fio (io_uring, 1 MiB blocks, depth 8), same run;
//! * append of 1 KiB messages, async flush, one shard: records/s and MB/s, with the group
//!   commit blocking (`StdFs`, "before") and on the shard's io_uring (`UringFs`, commit jobs
//!   in flight while appends go on, "after");
//! * sync flush with 1 / 16 / 256 appenders waiting for their ack: records/s and p50/p99
//!   ack latency, next to the latency of a 4 KiB write + `fdatasync`;
//! * cold read of a queue (page cache dropped with `posix_fadvise`): MB/s.
//!
//! `cargo bench -p ringmq-broker --bench store`. Sizes: `RINGMQ_BENCH_APPEND_MB` (512),
//! `RINGMQ_BENCH_READ_MB` (1024), `RINGMQ_BENCH_SYNC_SECS` (2); directory
//! `RINGMQ_BENCH_DIR` (the system temp dir; it must be on the disk to measure).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq_broker::runtime::{JoinHandle, RuntimeConfig, Shard, spawn_local, yield_now};
use ringmq_broker::store::io::{StdFs, StoreFs, block_on};
use ringmq_broker::store::uring::UringFs;
use ringmq_broker::store::{
    AppendMessage, CommitDone, FlushMode, GetMessage, GetStatus, Store, StoreConfig, StoreError,
    SyncWrite,
};
use ringmq_wire::record::{Properties, property};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(dir: &Path, mode: FlushMode) -> StoreConfig {
    StoreConfig {
        flush_mode: mode,
        ..StoreConfig::new(dir)
    }
}

/// Encoded properties (`TAGS`, `UNIQ_KEY`) as a producer sends them. Built once; each message
/// patches its own unique key in place, so the benchmark measures the store, not string
/// formatting.
struct Props {
    bytes: Vec<u8>,
    key_at: usize,
}

impl Props {
    fn new() -> Self {
        let mut p = Properties::new();
        p.insert(property::TAGS, "TagA");
        p.insert(property::UNIQ_KEY, "7F000001".to_owned() + &"0".repeat(24));
        let bytes = p.encode().unwrap().into_bytes();
        let key_at = bytes.len() - 1 - 24;
        Props { bytes, key_at }
    }

    fn for_message(&mut self, i: u64) -> &[u8] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for (n, b) in self.bytes[self.key_at..self.key_at + 24]
            .iter_mut()
            .enumerate()
        {
            let shift = (23 - n) * 4;
            *b = if shift < 64 {
                HEX[((i >> shift) & 0xF) as usize]
            } else {
                b'0'
            };
        }
        &self.bytes
    }
}

fn fio(dir: &Path) {
    let file = dir.join("fio.dat");
    let out = std::process::Command::new("fio")
        .args([
            "--name=raw",
            "--rw=write",
            "--ioengine=io_uring",
            "--direct=1",
            "--bs=1M",
            "--iodepth=8",
            "--size=1G",
            "--output-format=terse",
            "--terse-version=3",
        ])
        .arg(format!("--filename={}", file.display()))
        .output();
    let _ = std::fs::remove_file(&file);
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            // terse v3: field 48 (1-based) is the write bandwidth in KiB/s.
            let bw = text
                .lines()
                .last()
                .and_then(|l| l.split(';').nth(47))
                .and_then(|v| v.parse::<f64>().ok());
            match bw {
                Some(kib) => println!(
                    "| raw O_DIRECT write (fio io_uring, bs 1M, depth 8, 1 GiB) | {:.0} MB/s | |",
                    kib * 1024.0 / 1e6
                ),
                None => println!("| raw O_DIRECT write (fio) | output not understood | |"),
            }
        }
        _ => println!("| raw O_DIRECT write (fio) | fio not available | |"),
    }
}

/// Appends, committing on `Busy` (the disk is behind) and every 256 records.
fn append_one(
    store: &mut Store<StdFs>,
    m: &AppendMessage<'_>,
) -> ringmq_broker::store::AppendTicket {
    loop {
        match store.append(m) {
            Ok(t) => return t,
            Err(StoreError::Busy { .. }) => {
                block_on(store.commit_step()).unwrap();
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }
}

fn append_run(dir: &Path, total_mb: u64, mode: FlushMode, tick_records: u64) {
    let mut store = block_on(Store::open(StdFs, config(dir, mode))).unwrap();
    let direct = store
        .commit_log()
        .segments()
        .next()
        .is_some_and(|s| s.is_direct());
    let body = vec![b'x'; 1024];
    let n = total_mb * 1024;
    let start = Instant::now();
    let mut last_persist = Instant::now();
    let mut bytes = 0u64;
    let mut last = None;
    let mut props = Props::new();
    for i in 0..n {
        let mut m = AppendMessage::new("BenchTopic", (i % 8) as i32, &body);
        m.properties = props.for_message(i);
        let t = append_one(&mut store, &m);
        bytes += u64::from(t.size);
        last = Some(t);
        if i % tick_records == tick_records - 1 {
            block_on(store.commit_step()).unwrap();
        }
        if last_persist.elapsed() > Duration::from_millis(500) {
            block_on(store.persist_step()).unwrap();
            last_persist = Instant::now();
        }
    }
    block_on(store.commit_step()).unwrap();
    assert!(store.is_acknowledged(&last.unwrap()));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "| append 1 KiB body (~1.1 KiB record), {mode:?} flush, 1 shard, {total_mb} Ki records, commit every {tick_records} records, O_DIRECT {direct} | {:.0} records/s | {:.0} MB/s |",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    block_on(store.close()).unwrap();
}

/// The broker's commit loop on the ring: at most one job in flight; every `tick_records`
/// appends (a "batch of requests") the finished job is handed back and the next one started.
struct RingCommits {
    job: Option<JoinHandle<CommitDone>>,
}

impl RingCommits {
    async fn tick<F: StoreFs + 'static>(&mut self, store: &mut Store<F>, wait: bool) {
        if let Some(job) = self.job.take() {
            if wait || job.is_finished() {
                store.finish_commit(job.await).unwrap();
            } else {
                self.job = Some(job);
            }
        }
        if self.job.is_none() {
            self.job = store
                .begin_commit(true)
                .unwrap()
                .map(|j| spawn_local(j.run()));
        }
        // One executor turn: the job's SQEs are submitted, completions harvested.
        yield_now().await;
    }

    async fn append<F: StoreFs + 'static>(
        &mut self,
        store: &mut Store<F>,
        m: &AppendMessage<'_>,
    ) -> ringmq_broker::store::AppendTicket {
        loop {
            match store.append(m) {
                Ok(t) => return t,
                Err(StoreError::Busy { .. }) => self.tick(store, true).await,
                Err(e) => panic!("append failed: {e}"),
            }
        }
    }

    async fn drain<F: StoreFs + 'static>(&mut self, store: &mut Store<F>) {
        if let Some(job) = self.job.take() {
            store.finish_commit(job.await).unwrap();
        }
    }
}

fn ring_shard() -> Shard {
    Shard::new(&RuntimeConfig {
        shards: Some(1),
        pin_threads: false,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn append_run_ring(dir: &Path, total_mb: u64, mode: FlushMode, tick_records: u64) {
    let shard = ring_shard();
    shard.block_on(async {
        let fs = UringFs::new();
        let mut store = block_on(Store::open(fs.clone(), config(dir, mode))).unwrap();
        store.set_ring_mode(true);
        let body = vec![b'x'; 1024];
        let n = total_mb * 1024;
        let mut ring = RingCommits { job: None };
        let start = Instant::now();
        let mut last_persist = Instant::now();
        let mut bytes = 0u64;
        let mut last = None;
        let mut props = Props::new();
        for i in 0..n {
            let mut m = AppendMessage::new("BenchTopic", (i % 8) as i32, &body);
            m.properties = props.for_message(i);
            let t = ring.append(&mut store, &m).await;
            bytes += u64::from(t.size);
            last = Some(t);
            if i % tick_records == tick_records - 1 {
                ring.tick(&mut store, false).await;
            }
            if last_persist.elapsed() > Duration::from_millis(500) {
                block_on(store.persist_step()).unwrap();
                last_persist = Instant::now();
            }
        }
        let last = last.unwrap();
        while !store.is_acknowledged(&last) {
            ring.tick(&mut store, true).await;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| append 1 KiB body (~1.1 KiB record), {mode:?} flush, 1 shard, io_uring commits ({} write buffers registered), {total_mb} Ki records, tick every {tick_records} records | {:.0} records/s | {:.0} MB/s |",
            fs.registered_buffers(),
            n as f64 / secs,
            bytes as f64 / secs / 1e6
        );
        ring.drain(&mut store).await;
        block_on(store.close()).unwrap();
    });
}

fn fdatasync_latency(dir: &Path) {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let path = dir.join("sync.dat");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .unwrap();
    f.set_len(1 << 20).unwrap();
    let buf = ringmq_broker::store::io::AlignedBuf::zeroed(4096);
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..300u64 {
        let t = Instant::now();
        f.write_all_at(&buf, (i % 256) * 4096).unwrap();
        f.sync_data().unwrap();
        h.record(t.elapsed().as_micros() as u64).unwrap();
    }
    let _ = std::fs::remove_file(&path);
    println!(
        "| 4 KiB O_DIRECT write + fdatasync (raw) | p50 {} µs | p99 {} µs |",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99)
    );
}

fn sync_appenders(dir: &Path, appenders: usize, secs: u64) {
    let sub = dir.join(format!("sync-{appenders}"));
    let mut store = block_on(Store::open(StdFs, config(&sub, FlushMode::Sync))).unwrap();
    let body = vec![b's'; 1024];
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut props = Props::new();
    let start = Instant::now();
    let mut acked = 0u64;
    let mut i = 0u64;
    // Each appender has one message in flight: a tick appends one per appender, then one
    // group commit (write + fdatasync) acknowledges them all.
    while start.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        let mut tickets = Vec::with_capacity(appenders);
        for a in 0..appenders {
            let mut m = AppendMessage::new("SyncTopic", (a % 8) as i32, &body);
            m.properties = props.for_message(i);
            tickets.push(append_one(&mut store, &m));
            i += 1;
        }
        block_on(store.commit_step()).unwrap();
        let lat = tick.elapsed().as_micros() as u64;
        for t in &tickets {
            assert!(store.is_acknowledged(t));
            h.record(lat).unwrap();
        }
        acked += tickets.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "| sync flush, {appenders} appenders, 1 KiB | {:.0} records/s | ack p50 {} µs, p99 {} µs |",
        acked as f64 / elapsed,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99)
    );
    block_on(store.close()).unwrap();
    let _ = std::fs::remove_dir_all(&sub);
}

fn sync_appenders_ring(dir: &Path, appenders: usize, secs: u64, sync_write: SyncWrite) {
    let sub = dir.join(format!("sync-ring-{appenders}"));
    let shard = ring_shard();
    shard.block_on(async {
        let mut store = block_on(Store::open(UringFs::new(), config(&sub, FlushMode::Sync))).unwrap();
        store.set_ring_mode(true);
        store.set_sync_write(sync_write);
        let body = vec![b's'; 1024];
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut props = Props::new();
        let mut ring = RingCommits { job: None };
        let start = Instant::now();
        let mut acked = 0u64;
        let mut i = 0u64;
        while start.elapsed() < Duration::from_secs(secs) {
            let tick = Instant::now();
            let mut tickets = Vec::with_capacity(appenders);
            for a in 0..appenders {
                let mut m = AppendMessage::new("SyncTopic", (a % 8) as i32, &body);
                m.properties = props.for_message(i);
                tickets.push(ring.append(&mut store, &m).await);
                i += 1;
            }
            let last = tickets[tickets.len() - 1];
            while !store.is_acknowledged(&last) {
                ring.tick(&mut store, true).await;
            }
            let lat = tick.elapsed().as_micros() as u64;
            for _ in &tickets {
                h.record(lat).unwrap();
            }
            acked += tickets.len() as u64;
        }
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "| sync flush, {appenders} appenders, 1 KiB, io_uring commits ({sync_write:?}) | {:.0} records/s | ack p50 {} µs, p99 {} µs |",
            acked as f64 / elapsed,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
        ring.drain(&mut store).await;
        block_on(store.close()).unwrap();
    });
    let _ = std::fs::remove_dir_all(&sub);
}

fn drop_cache(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(entries) = std::fs::read_dir(dir.join("commitlog")) else {
        return;
    };
    for e in entries.flatten() {
        if let Ok(f) = std::fs::File::open(e.path()) {
            f.sync_all().ok();
            // SAFETY: valid fd; an advisory call with plain integers.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

fn cold_read(dir: &Path, total_mb: u64) {
    let sub = dir.join("read");
    let mut cfg = config(&sub, FlushMode::Async);
    cfg.index_enabled = false;
    cfg.pull_messages_max = 1024;
    {
        let mut store = block_on(Store::open(StdFs, cfg.clone())).unwrap();
        let body = vec![b'r'; 1024];
        for i in 0..total_mb * 1024 {
            append_one(&mut store, &AppendMessage::new("ReadTopic", 0, &body));
            if i % 256 == 255 {
                block_on(store.commit_step()).unwrap();
            }
        }
        block_on(store.close()).unwrap();
    }
    for (batch, max_bytes) in [(32usize, 256 * 1024usize), (1024, 1 << 20)] {
        drop_cache(&sub);
        let store = block_on(Store::open(StdFs, cfg.clone())).unwrap();
        let start = Instant::now();
        let mut offset = 0;
        let mut bytes = 0usize;
        loop {
            let res = block_on(store.get_message(&GetMessage {
                topic: "ReadTopic",
                queue_id: 0,
                offset,
                max_count: batch,
                max_bytes,
                tag_codes: None,
                file_ranges: false,
            }))
            .unwrap();
            if res.status != GetStatus::Found {
                break;
            }
            bytes += res.total_bytes;
            offset = res.next_offset;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| cold read by queue, {total_mb} Ki records, up to {batch} msgs / {} KiB per read | {:.0} MB/s | {offset} messages |",
            max_bytes / 1024,
            bytes as f64 / secs / 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&sub);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let base: PathBuf = std::env::var_os("RINGMQ_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let (append_mb, read_mb, sync_secs) = if quick {
        (4, 4, 1)
    } else {
        (
            env_u64("RINGMQ_BENCH_APPEND_MB", 512),
            env_u64("RINGMQ_BENCH_READ_MB", 1024),
            env_u64("RINGMQ_BENCH_SYNC_SECS", 2),
        )
    };
    println!("| benchmark | result | detail |");
    println!("|---|---|---|");
    if !quick {
        fio(dir.path());
    }
    let only = std::env::var("RINGMQ_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    if run("append") {
        for (mode, tick) in [(FlushMode::Async, 256), (FlushMode::Async, 4096)] {
            let sub = dir.path().join("append");
            append_run(&sub, append_mb, mode, tick);
            let _ = std::fs::remove_dir_all(&sub);
        }
    }
    if run("append-ring") || run("append") {
        for (mode, tick) in [
            (FlushMode::Async, 256),
            (FlushMode::Async, 4096),
            (FlushMode::Memory, 4096),
        ] {
            let sub = dir.path().join("append-ring");
            append_run_ring(&sub, append_mb, mode, tick);
            let _ = std::fs::remove_dir_all(&sub);
        }
    }
    if run("sync") {
        fdatasync_latency(dir.path());
        for n in [1, 16, 256] {
            sync_appenders(dir.path(), n, sync_secs);
            sync_appenders_ring(dir.path(), n, sync_secs, SyncWrite::Linked);
            sync_appenders_ring(dir.path(), n, sync_secs, SyncWrite::Dsync);
        }
    }
    if run("sync1") {
        // 1 appender, A/B alternated in the same window: blocking, linked, RWF_DSYNC.
        fdatasync_latency(dir.path());
        for _ in 0..env_u64("RINGMQ_BENCH_ROUNDS", 3) {
            sync_appenders(dir.path(), 1, sync_secs);
            sync_appenders_ring(dir.path(), 1, sync_secs, SyncWrite::Linked);
            sync_appenders_ring(dir.path(), 1, sync_secs, SyncWrite::Dsync);
        }
    }
    if !run("read") {
        return;
    }
    cold_read(dir.path(), read_mb);
}
