//! Cross-module tests of the runtime: executor basics, cancellation safety, shutdown with
//! operations in flight, multi-shard messaging, driver selection.
//!
//! Tests written with [`on_both_drivers!`] run once on io_uring and once on the fallback
//! driver (`<name>::io_uring`, `<name>::fallback`), from the same body.

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::rc::Rc;
use std::time::Duration;

use super::*;

/// Generous bound for anything that should take milliseconds: the test machine is shared and
/// oversubscribed, so only a hang should trip it.
const HANG: Duration = Duration::from_secs(60);

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// The test configuration ([`RuntimeConfig::for_tests`]) on `driver`.
pub(crate) fn config_on(driver: DriverChoice) -> RuntimeConfig {
    RuntimeConfig {
        driver,
        ..RuntimeConfig::for_tests()
    }
}

/// Defines a test whose body runs on each driver: `fn name(cfg) { .. }` becomes the tests
/// `name::io_uring` and `name::fallback`, each passing its [`config_on`] as `cfg`.
macro_rules! on_both_drivers {
    ($(#[$meta:meta])* fn $name:ident($cfg:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($cfg: $crate::runtime::RuntimeConfig) $body

            #[test]
            fn io_uring() {
                run($crate::runtime::tests::config_on($crate::runtime::DriverChoice::IoUring))
            }

            #[test]
            fn fallback() {
                run($crate::runtime::tests::config_on($crate::runtime::DriverChoice::Fallback))
            }
        }
    };
}
pub(crate) use on_both_drivers;

fn shard_on(cfg: &RuntimeConfig) -> Shard {
    let shard = Shard::new(cfg).expect("shard");
    let expect = match cfg.driver {
        DriverChoice::Fallback => DriverKind::Fallback,
        _ => DriverKind::IoUring,
    };
    assert_eq!(shard.driver(), expect);
    shard
}

fn shard() -> Shard {
    shard_on(&config_on(DriverChoice::IoUring))
}

/// When the storm drops an operation's future.
#[derive(Clone, Copy)]
enum Stop {
    /// After this many polls.
    Polls(u32),
    /// When this deadline passes.
    After(Duration),
}

impl Stop {
    /// Runs `fut` until it finishes or `self` says stop; true if it was dropped unfinished.
    async fn run<F: std::future::Future>(self, fut: F) -> bool {
        match self {
            Stop::After(d) => timeout(d, fut).await.is_err(),
            Stop::Polls(n) => {
                let mut fut = std::pin::pin!(fut);
                let mut polls = 0;
                std::future::poll_fn(|cx| {
                    if fut.as_mut().poll(cx).is_ready() {
                        return std::task::Poll::Ready(false);
                    }
                    polls += 1;
                    if polls >= n {
                        return std::task::Poll::Ready(true);
                    }
                    std::task::Poll::Pending
                })
                .await
            }
        }
    }
}

/// xorshift64*: deterministic randomness for the cancellation storm.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

on_both_drivers! {
fn spawn_join_yield_sleep_timeout(cfg) {
    shard_on(&cfg).block_on(async {
        let counter = Rc::new(Cell::new(0));
        let mut handles = Vec::new();
        for i in 0..50u64 {
            let c = counter.clone();
            handles.push(spawn_local(async move {
                yield_now().await;
                c.set(c.get() + 1);
                i * 2
            }));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        assert_eq!(sum, (0..50u64).map(|i| i * 2).sum::<u64>());
        assert_eq!(counter.get(), 50);
        sleep(Duration::from_millis(5)).await;
        assert_eq!(timeout(HANG, async { 7 }).await, Ok(7));
        let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600))).await;
        assert_eq!(slow, Err(Elapsed));
    });
}
}

on_both_drivers! {
fn nested_spawn_and_wake_from_other_thread(cfg) {
    shard_on(&cfg).block_on(async {
        let (tx, rx) = channel::<u32>(4);
        let t = std::thread::spawn(move || {
            for i in 0..100 {
                loop {
                    match tx.try_send(i) {
                        Ok(()) => break,
                        Err(TrySendError::Full(_)) => std::thread::yield_now(),
                        Err(TrySendError::Closed(_)) => panic!("receiver gone"),
                    }
                }
            }
        });
        let got = timeout(HANG, async {
            let mut v = Vec::new();
            while let Some(x) = rx.recv().await {
                v.push(x);
            }
            v
        })
        .await
        .expect("messages arrive");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        t.join().expect("sender thread");
    });
}
}

on_both_drivers! {
/// Drops hundreds of in-flight reads, recvs and splices at random points, then proves no
/// pool buffer was touched after release: the pool poisons returned buffers and checks the
/// poison before reuse, and the driver checks each pool buffer's generation on every CQE
/// (on the fallback driver: each helper result).
fn cancellation_storm_never_touches_released_buffers(cfg) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("storm");
    let data: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 253) as u8).collect();
    std::fs::File::create(&path)
        .expect("create")
        .write_all(&data)
        .expect("fill");
    let mut cfg = cfg;
    cfg.pool_buffers = 32;
    cfg.pool_buf_bytes = 16 << 10;
    let shard = shard_on(&cfg);
    shard.block_on(async move {
        let pool = buf_pool();
        let file = Rc::new(File::open(&path).expect("open"));
        let listener = TcpListener::bind(localhost()).expect("bind");
        // Connections whose peers trickle data (recvs sometimes complete) or drain (splices).
        let mut conns = Vec::new();
        for _ in 0..4 {
            let c = TcpStream::connect(listener.local_addr())
                .await
                .expect("connect");
            let (s, _) = listener.accept().await.expect("accept");
            conns.push((Rc::new(c), Rc::new(s)));
        }
        let mut peers = Vec::new();
        for (i, (c, s)) in conns.iter().enumerate() {
            let (c, s) = (c.clone(), s.clone());
            peers.push(spawn_local(async move {
                // Trickle into `s` so recvs on `c` complete sometimes; drain what `s` receives.
                let mut k = 0u32;
                loop {
                    if k % 4 == i as u32 % 4 {
                        let (_, _) = s.send(vec![k as u8; 512]).await;
                    }
                    let r = timeout(
                        Duration::from_millis(1),
                        s.recv(Vec::with_capacity(1 << 16)),
                    );
                    if let Ok((Ok(0), _)) = r.await {
                        break;
                    }
                    k = k.wrapping_add(1);
                    let _ = &c;
                }
            }));
        }
        let mut direct = std::fs::OpenOptions::new();
        direct.read(true).custom_flags(libc::O_DIRECT);
        let direct = Rc::new(File::open_with(&path, &direct).expect("open O_DIRECT"));
        let dropped = Rc::new([Cell::new(0u32), Cell::new(0), Cell::new(0), Cell::new(0)]);
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut tasks = Vec::new();
        for round in 0..400u64 {
            let kind = rng.below(4) as usize;
            // Half the operations are dropped after a random number of polls (their SQE may
            // not even have reached the kernel), half by a random deadline (mid-flight).
            let stop = if rng.below(2) == 0 {
                Stop::Polls(1 + rng.below(3) as u32)
            } else {
                Stop::After(Duration::from_micros(rng.below(2000)))
            };
            let pool = pool.clone();
            let (file, direct) = (file.clone(), direct.clone());
            let conn = conns[(round % 4) as usize].0.clone();
            let off = rng.below(4 << 20) & !4095;
            let dropped = dropped.clone();
            tasks.push(spawn_local(async move {
                let was_dropped = match kind {
                    0 => {
                        let buf = pool.take().await;
                        stop.run(file.read_at(buf, off)).await
                    }
                    1 => {
                        let buf = pool.take().await;
                        stop.run(direct.read_at(buf, off)).await
                    }
                    2 => {
                        let buf = pool.take().await;
                        stop.run(conn.recv(buf)).await
                    }
                    _ => stop.run(conn.splice_from(&file, off, 256 << 10)).await,
                };
                if was_dropped {
                    dropped[kind].set(dropped[kind].get() + 1);
                }
            }));
            if round % 16 == 0 {
                sleep(Duration::from_micros(rng.below(500))).await;
            }
        }
        for t in tasks {
            timeout(HANG, t).await.expect("storm task finishes");
        }
        // Reuse every buffer once more so the poison of each is checked.
        let mut all = Vec::new();
        for _ in 0..pool.stats().buffers {
            all.push(timeout(HANG, pool.take()).await.expect("buffer comes back"));
        }
        drop(all);
        let stats = pool.stats();
        assert_eq!(stats.violations, 0, "a buffer was touched after release");
        assert_eq!(stats.lent, 0);
        let dropped: Vec<u32> = dropped.iter().map(Cell::get).collect();
        assert!(
            dropped.iter().all(|&d| d >= 10),
            "too few drops per kind: {dropped:?}"
        );
        assert!(
            current_stats().cancellations > 0,
            "the storm cancelled nothing"
        );
        // The runtime still works: a full splice of known content on a fresh connection.
        let c = TcpStream::connect(listener.local_addr())
            .await
            .expect("connect");
        let (s, _) = listener.accept().await.expect("accept");
        let reader = spawn_local(async move {
            let mut got = Vec::new();
            while got.len() < 100_000 {
                let (n, b) = s.recv(Vec::with_capacity(1 << 16)).await;
                assert!(n.expect("recv") > 0);
                got.extend_from_slice(&b);
            }
            got
        });
        assert_eq!(
            c.splice_from(&file, 4096, 100_000).await.expect("splice"),
            100_000
        );
        let got = timeout(HANG, reader).await.expect("reader");
        assert_eq!(&got[..], &data[4096..4096 + 100_000]);
        drop(conns);
        drop(peers);
    });
    let s = shard.stats();
    assert!(s.ops_completed > 0);
}
}

on_both_drivers! {
/// Dropping a shard with operations in flight cancels them and waits for every CQE.
fn shard_drop_drains_in_flight_operations(cfg) {
    let shard = shard_on(&cfg);
    let listener = shard.block_on(async {
        let l = TcpListener::bind(localhost()).expect("bind");
        let c = TcpStream::connect(l.local_addr()).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        let pool = buf_pool();
        for _ in 0..4 {
            let b = pool.take().await;
            let c2 = Rc::new(
                TcpStream::from_std(std::net::TcpStream::connect(l.local_addr()).expect("connect"))
                    .expect("wrap"),
            );
            spawn_local(async move {
                let _ = c2.recv(b).await;
            });
        }
        spawn_local(async move {
            let _ = s.recv(Vec::with_capacity(64)).await;
        });
        spawn_local(async move {
            sleep(Duration::from_secs(3600)).await;
            drop(c);
        });
        // Let the tasks submit.
        for _ in 0..4 {
            yield_now().await;
        }
        sleep(Duration::from_millis(1)).await;
        l
    });
    let before = shard.stats();
    assert!(before.ops_in_flight >= 6, "{before:?}");
    drop(shard);
    drop(listener);
}
}

on_both_drivers! {
fn runtime_runs_shards_messages_and_shuts_down_with_ops_in_flight(cfg) {
    let cpus = super::sys::affinity_cpus().expect("affinity").len();
    let n = cpus.min(2);
    let mut cfg = cfg;
    cfg.shards = Some(n);
    let driver = cfg.driver;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let done_tx = std::sync::Mutex::new(done_tx);
    let rt = Runtime::start(&cfg, move |ctx: ShardContext| {
        let done_tx = done_tx.lock().expect("lock").clone();
        async move {
            // Keep operations in flight until shutdown.
            let l = TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
            spawn_local(async move {
                let _ = l.accept().await;
            });
            spawn_local(sleep(Duration::from_secs(3600)));
            let target = (ctx.id + 1) % ctx.shards.len();
            let seen = ctx.shards[target]
                .run(|| async { current_shard() })
                .await
                .expect("remote run");
            let _ = done_tx.send((ctx.id, seen));
            std::future::pending::<()>().await;
        }
    })
    .expect("runtime starts");
    let mut results: Vec<(usize, usize)> = (0..n)
        .map(|_| done_rx.recv_timeout(HANG).expect("shard reports"))
        .collect();
    results.sort();
    for (id, seen) in &results {
        assert_eq!(*seen, (id + 1) % n);
    }
    for h in rt.shards() {
        let id = h
            .run_blocking(|| async { current_shard() })
            .expect("run_blocking");
        assert_eq!(id, h.id());
    }
    let handles: Vec<ShardHandle> = rt.shards().to_vec();
    assert!(rt.stats().iter().all(|s| s.ops_in_flight >= 2));
    let expect = match driver {
        DriverChoice::Fallback => DriverKind::Fallback,
        _ => DriverKind::IoUring,
    };
    assert!(rt.stats().iter().all(|s| s.driver == expect));
    rt.shutdown().expect("clean shutdown");
    for h in handles {
        let s = h.stats();
        assert_eq!(s.ops_in_flight, 0, "{s:?}");
        assert!(s.cancellations >= 2, "{s:?}");
        assert_eq!(
            h.try_run(|| async {}).map(|_| ()),
            Err(RunError::Gone(h.id()))
        );
    }
}
}

#[test]
fn too_many_shards_is_a_config_error() {
    let mut cfg = RuntimeConfig::for_tests();
    cfg.shards = Some(100_000);
    let err = Runtime::start(&cfg, |_| async {}).expect_err("must refuse");
    assert!(matches!(err, RuntimeError::Config(_)), "{err}");
}

/// A tiny ring (4 SQEs, 8 CQEs) with hundreds of operations in flight: the submission queue
/// fills and the completion queue overflows; both are absorbed, nothing panics or is lost.
#[test]
fn tiny_ring_absorbs_sq_full_and_cq_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny");
    std::fs::write(&path, vec![3u8; 1 << 16]).expect("fill");
    let mut cfg = config_on(DriverChoice::IoUring);
    cfg.ring_entries = 4;
    let shard = Shard::new(&cfg).expect("shard");
    shard.block_on(async move {
        let file = Rc::new(File::open(&path).expect("open"));
        let mut tasks = Vec::new();
        for i in 0..300u64 {
            let file = file.clone();
            tasks.push(spawn_local(async move {
                if i % 2 == 0 {
                    sleep(Duration::from_millis(1 + i % 5)).await;
                    0
                } else {
                    let (r, b) = file
                        .read_at(Vec::with_capacity(512), (i * 64) % 60_000)
                        .await;
                    assert!(b.iter().all(|&x| x == 3));
                    r.expect("read")
                }
            }));
        }
        let mut bytes = 0;
        for t in tasks {
            bytes += timeout(HANG, t).await.expect("op completes");
        }
        assert_eq!(bytes, 150 * 512);
    });
    let s = shard.stats();
    assert!(s.ring_full_events > 0, "{s:?}");
    // Cancelled timers of `timeout` may still be on their way back; nothing else is.
    assert_eq!(s.ops_completed + s.ops_in_flight, s.ops_submitted, "{s:?}");
}

#[test]
fn startup_errors_name_cause_and_fix() {
    let msg = RuntimeError::BlockedBySeccomp.to_string();
    assert!(msg.contains("EPERM") && msg.contains("seccomp="), "{msg}");
    let msg = RuntimeError::DisabledBySysctl { value: 2 }.to_string();
    assert!(
        msg.contains("io_uring_disabled = 2") && msg.contains("sysctl -w"),
        "{msg}"
    );
    let msg = RuntimeError::NotSupported.to_string();
    assert!(msg.contains("ENOSYS") && msg.contains("gVisor"), "{msg}");
    let msg = RuntimeError::MissingOpcodes {
        missing: vec!["Splice"],
    }
    .to_string();
    assert!(
        msg.contains("Splice") && msg.contains("Linux >= 6.1"),
        "{msg}"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

on_both_drivers! {
/// An accept whose future is dropped right after submission, with a connection already
/// waiting: the kernel may still complete it, and the new fd must be closed, not leaked.
fn dropped_accept_does_not_leak_the_accepted_fd(cfg) {
    shard_on(&cfg).block_on(async {
        let l = TcpListener::bind(localhost()).expect("bind");
        let mut clients = Vec::new();
        for _ in 0..50 {
            clients.push(std::net::TcpStream::connect(l.local_addr()).expect("connect"));
        }
        let before = open_fds();
        for _ in 0..50 {
            let _ = Stop::Polls(1).run(l.accept()).await;
        }
        // Let every cancelled accept come back.
        sleep(Duration::from_millis(20)).await;
        let mut settled = false;
        for _ in 0..1000 {
            if current_stats().ops_in_flight == 0 {
                settled = true;
                break;
            }
            sleep(Duration::from_millis(5)).await;
        }
        assert!(settled, "cancelled accepts never came back");
        assert_eq!(open_fds(), before, "accepted fds leaked");
        drop(clients);
    });
}
}

#[test]
fn ring_flavor_is_reported_and_oversized_rings_are_refused() {
    let shard = shard();
    // 6.1+ kernels accept SINGLE_ISSUER | DEFER_TASKRUN; older ones fall back.
    let flavor = shard.ring_flavor().expect("an io_uring shard has a ring");
    assert!(!flavor.name().is_empty());
    drop(shard);
    // Every flavor fails with EINVAL for an impossible size: the fallback chain ends in a
    // typed error, not a panic.
    let mut cfg = config_on(DriverChoice::IoUring);
    cfg.ring_entries = 1 << 30;
    let err = Shard::new(&cfg).expect_err("no kernel takes 2^30 entries");
    assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
    assert!(!err.io_uring_unavailable());
}

/// Without `CAP_IPC_LOCK`, registration is budgeted against `RLIMIT_MEMLOCK`: a 16 MiB pool
/// under the 8 MiB limit gets at most (limit − 1 MiB) worth registered, or none when the
/// kernel says `ENOMEM` (the charge is per UID and other processes share it); buffers past
/// the registered ones use plain Write on the same memory. Both outcomes must work.
#[test]
fn memlock_budget_without_cap_ipc_lock() {
    let limit = match super::sys::memlock_soft_limit_bytes().expect("getrlimit") {
        Some(l) => l,
        None => return, // unlimited memlock: nothing to budget
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("budget");
    let t = std::thread::spawn(move || {
        super::sys::drop_cap_ipc_lock_for_this_thread().expect("capset");
        assert!(!super::sys::has_cap_ipc_lock());
        let mut cfg = config_on(DriverChoice::IoUring);
        cfg.pool_buffers = 16;
        cfg.pool_buf_bytes = 1 << 20;
        cfg.poison_buffers = false;
        let shard = Shard::new(&cfg).expect("a shard starts even when registration is refused");
        let registered = shard.stats().fixed_buffers_registered;
        let budget = limit.saturating_sub(1 << 20) / (1 << 20);
        assert!(
            registered <= budget.min(16),
            "registered {registered} > budget {budget}"
        );
        shard.block_on(async move {
            let mut o = std::fs::OpenOptions::new();
            o.read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT);
            let f = File::open_with(&path, &o).expect("open");
            let pool = buf_pool();
            // Take every buffer: the last ones are certainly unregistered.
            let mut bufs = Vec::new();
            for _ in 0..16 {
                bufs.push(pool.take().await);
            }
            for (i, mut b) in bufs.into_iter().enumerate() {
                b.extend_from_slice(&[i as u8; 4096]);
                let (r, _) = f.write_all_at(b, i as u64 * 4096).await;
                r.expect("fixed or plain write");
            }
            let (r, b) = f.read_at(AlignedBuf::with_capacity(16 * 4096), 0).await;
            assert_eq!(r.expect("read back"), 16 * 4096);
            for i in 0..16 {
                assert!(b[i * 4096..(i + 1) * 4096].iter().all(|&x| x == i as u8));
            }
        });
        assert!(shard.stats().fixed_fallback_ops >= 16 - registered);
    });
    t.join().expect("budget thread");
}

/// `Auto` with io_uring refused (the test seam makes ring setup fail with `EPERM`, as
/// Docker's default seccomp profile does): the shard runs on the fallback driver, and files,
/// sockets and timers work there. `IoUring` with the same refusal fails with the error that
/// names the cause and the fix.
#[test]
fn auto_runs_on_the_fallback_when_ring_setup_is_refused() {
    let mut cfg = config_on(DriverChoice::Auto);
    cfg.simulate_ring_setup_errno = Some(libc::EPERM);
    let shard = Shard::new(&cfg).expect("auto starts without io_uring");
    assert_eq!(shard.driver(), DriverKind::Fallback);
    assert_eq!(shard.stats().driver, DriverKind::Fallback);
    assert!(shard.ring_flavor().is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auto");
    shard.block_on(async move {
        assert_eq!(current_driver(), Some(DriverKind::Fallback));
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create(true).truncate(true);
        let f = File::open_with(&path, &o).expect("open");
        let (r, _) = f.write_all_and_sync_data_at(b"fallback".to_vec(), 0).await;
        r.expect("write + fdatasync");
        let (r, b) = f.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!(r.expect("read"), 8);
        assert_eq!(&b[..], b"fallback");
        let l = TcpListener::bind(localhost()).expect("bind");
        let c = TcpStream::connect(l.local_addr()).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        let (r, _) = c.send_all(b"ping".to_vec()).await;
        r.expect("send");
        let (n, b) = timeout(HANG, s.recv(Vec::with_capacity(8)))
            .await
            .expect("recv in time");
        assert_eq!(n.expect("recv"), 4);
        assert_eq!(&b[..], b"ping");
        sleep(Duration::from_millis(2)).await;
    });
    assert_eq!(current_driver(), None, "off a shard there is no driver");

    let mut strict = config_on(DriverChoice::IoUring);
    strict.simulate_ring_setup_errno = Some(libc::EPERM);
    let err = Shard::new(&strict).expect_err("io_uring only: must refuse");
    assert!(err.io_uring_unavailable(), "{err}");
    assert!(err.fallback_applies());
    strict.simulate_ring_setup_errno = Some(libc::ENOSYS);
    let err = Shard::new(&strict).expect_err("io_uring only: must refuse");
    assert!(matches!(err, RuntimeError::NotSupported), "{err}");
    // A refusal that is not about io_uring's availability is not papered over by `auto`.
    cfg.simulate_ring_setup_errno = Some(libc::EBADF);
    let err = Shard::new(&cfg).expect_err("not an availability problem");
    assert!(!err.fallback_applies(), "{err}");
}

#[test]
fn driver_choice_parses_the_config_spellings() {
    for (text, choice) in [
        ("auto", DriverChoice::Auto),
        ("io_uring", DriverChoice::IoUring),
        ("fallback", DriverChoice::Fallback),
    ] {
        assert_eq!(text.parse::<DriverChoice>(), Ok(choice));
        assert_eq!(choice.name(), text);
    }
    let err = "kqueue".parse::<DriverChoice>().expect_err("unknown");
    assert!(err.contains("auto, io_uring or fallback"), "{err}");
}

on_both_drivers! {
/// A send far larger than the socket buffers, against a slow reader: the sender sees short
/// sends and `EAGAIN` (fallback) or kernel-side retries (io_uring); every byte arrives once,
/// in order, followed by what the same writer sends next.
fn large_sends_survive_backpressure_in_order(cfg) {
    shard_on(&cfg).block_on(async {
        let l = TcpListener::bind(localhost()).expect("bind");
        let c = Rc::new(TcpStream::connect(l.local_addr()).await.expect("connect"));
        let (s, _) = l.accept().await.expect("accept");
        let big: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
        let expect_len = big.len() + 3;
        let writer = {
            let c = c.clone();
            spawn_local(async move {
                let (r, _) = c.send_all(big).await;
                r.expect("send_all 4 MiB");
                let (r, _) = c.send_all(b"END".to_vec()).await;
                r.expect("send_all tail");
            })
        };
        let mut got = Vec::with_capacity(expect_len);
        let mut reads = 0u32;
        while got.len() < expect_len {
            let (n, b) = timeout(HANG, s.recv(Vec::with_capacity(8 << 10)))
                .await
                .expect("recv in time");
            assert!(n.expect("recv") > 0, "peer closed early");
            got.extend_from_slice(&b);
            reads += 1;
            if reads.is_multiple_of(64) {
                // A slow reader: let the sender's socket buffer fill.
                sleep(Duration::from_millis(1)).await;
            }
        }
        timeout(HANG, writer).await.expect("writer done");
        assert_eq!(got.len(), expect_len);
        assert!(
            got[..4 << 20]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8),
            "bytes reordered or corrupted"
        );
        assert_eq!(&got[4 << 20..], b"END");
    });
}
}

on_both_drivers! {
/// A connect to a port nobody listens on fails with `ECONNREFUSED`, not a hang or a success.
fn connect_to_a_closed_port_is_refused(cfg) {
    let closed = {
        let l = std::net::TcpListener::bind(localhost()).expect("bind");
        l.local_addr().expect("addr")
    };
    shard_on(&cfg).block_on(async move {
        let err = timeout(HANG, TcpStream::connect(closed))
            .await
            .expect("connect finishes")
            .expect_err("nobody listens");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    });
}
}
