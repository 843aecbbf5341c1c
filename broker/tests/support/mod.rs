//! End-to-end harness: starts the real `ringmq-namesrv` and `ringmq-broker` binaries on
//! free loopback ports with temporary data directories, and stops them.
//!
//! The NameServer binary is found next to the broker binary (both are built by
//! `cargo nextest run --workspace`); a test run without it fails with how to build it.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod client;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the test machine is shared and oversubscribed.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a workspace binary built next to `ringmq-broker`.
pub fn binary(name: &str) -> PathBuf {
    let broker = PathBuf::from(env!("CARGO_BIN_EXE_ringmq-broker"));
    let path = broker.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p {name}` (the workspace test command builds it)",
        path.display()
    );
    path
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `ringmq-namesrv`, killed on drop.
pub struct Namesrv {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl Namesrv {
    /// Starts one on an OS-assigned port and waits until it listens.
    pub fn start() -> Self {
        let mut child = Command::new(binary("ringmq-namesrv"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ringmq-namesrv");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("ringmq-namesrv listening on ") {
                        break addr.trim().to_owned();
                    }
                }
                other => panic!("ringmq-namesrv exited before listening: {other:?}"),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Namesrv { child, addr }
    }
}

impl Drop for Namesrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lowest and highest base port handed out: below Linux's ephemeral range (32768–60999), so
/// that no outgoing connection of a test running in parallel can take a broker's port
/// between a stop and a restart (which happened with ports probed through port 0).
const BASE_PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Finds a base port P such that every port a broker of `shards` shards uses
/// (`P + 4i - 2 ..= P + 4i + 1`) is free right now, outside the ephemeral port range.
pub fn free_base_port(shards: u16) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let span = BASE_PORT_RANGE.end - BASE_PORT_RANGE.start - 4 * shards - 4;
    for attempt in 0..500u32 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u32(attempt);
        let base = BASE_PORT_RANGE.start + 2 + (hasher.finish() % u64::from(span)) as u16;
        let ports: Vec<u16> = (0..shards)
            .flat_map(|i| {
                let shard = base + 4 * i;
                [shard - 2, shard, shard + 1]
            })
            .collect();
        let held: Vec<_> = ports
            .iter()
            .filter_map(|p| TcpListener::bind(("127.0.0.1", *p)).ok())
            .collect();
        if held.len() == ports.len() {
            return base;
        }
    }
    panic!("no free block of ports found for {shards} shards in {BASE_PORT_RANGE:?}");
}

/// How a test broker is configured.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Broker name (shards register as `<name>-s<i>`).
    pub name: String,
    /// Shard count.
    pub shards: u16,
    /// `async`, `sync` or `memory`.
    pub flush_mode: String,
    /// Auto-create topics on first send.
    pub auto_create_topic: bool,
    /// Segment size (small in tests).
    pub segment_bytes: u64,
    /// More TOML appended to the config (whole sections, e.g. `[schedule]`).
    pub extra_config: String,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            name: "e2e".into(),
            shards: 2,
            flush_mode: "async".into(),
            auto_create_topic: true,
            segment_bytes: 64 * 1024 * 1024,
            extra_config: String::new(),
        }
    }
}

/// A running `ringmq-broker start`, killed on drop; its data directory lives as long as
/// this value, across restarts.
pub struct Broker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Shard 0's client port; shard i listens on `base_port + 4i`.
    pub base_port: u16,
    /// The options it was started with.
    pub options: BrokerOptions,
    namesrv: String,
}

impl Broker {
    /// Writes a config for `options` and starts the broker; returns once it runs (use
    /// [`Broker::wait_registered`] to wait for its routes).
    pub fn start(namesrv: &str, options: BrokerOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base_port = free_base_port(options.shards);
        let mut broker = Broker {
            child: None,
            dir,
            base_port,
            options,
            namesrv: namesrv.to_owned(),
        };
        broker.spawn();
        broker
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:<port>` of shard `i`.
    pub fn shard_addr(&self, i: u16) -> String {
        format!("127.0.0.1:{}", self.base_port + 4 * i)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("broker.toml")
    }

    fn spawn(&mut self) {
        let options = &self.options;
        let config = format!(
            r#"[broker]
cluster_name = "E2eCluster"
broker_name = "{name}"
namesrv_addrs = ["{namesrv}"]
listen_addr = "127.0.0.1"
base_port = {port}
shards = {shards}
register_period_ms = 10000

[store]
path = "{data}"
flush_mode = "{flush}"
segment_bytes = {segment}

[topics]
auto_create_topic = {auto}
{extra}
"#,
            name = options.name,
            namesrv = self.namesrv,
            port = self.base_port,
            shards = options.shards,
            data = self.dir.path().join("store").display(),
            flush = options.flush_mode,
            segment = options.segment_bytes,
            auto = options.auto_create_topic,
            extra = options.extra_config,
        );
        std::fs::write(self.config_path(), config).expect("write broker.toml");
        let child = Command::new(binary("ringmq-broker"))
            .arg("start")
            .arg("-c")
            .arg(self.config_path())
            .env(
                "RUST_LOG",
                std::env::var("E2E_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ringmq-broker");
        self.child = Some(child);
        let addr = self.shard_addr(self.options.shards - 1);
        wait_for("the broker's last shard to listen", START_TIMEOUT, || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("ringmq-broker exited during startup: {status}");
            }
            std::net::TcpStream::connect(&addr).ok()
        });
    }

    /// Stops it with SIGTERM and waits for a clean exit (status 0).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "ringmq-broker did not stop cleanly: {status}"
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ringmq-broker did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL (no shutdown at all).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data directory.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop or kill the broker before restarting it"
        );
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
