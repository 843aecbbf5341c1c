//! `ringmq-perf scenario`: runs a matrix of benchmark cells (sender threads × message
//! sizes × flush modes × shard counts × batch sizes) and writes a report directory.
//!
//! Each cell runs this same binary's `producer` (or `batch-producer`) tool as a child
//! process with `--duration` and `--json`, so every cell starts with a fresh client. With a
//! local broker (the default) every cell also gets its own `ringmq-broker standalone` on
//! free loopback ports with a fresh data directory, stopped with SIGTERM afterwards; with
//! `-n`/`--target` all cells run against that existing RocketMQ-compatible cluster and the
//! flush-mode and shard axes are not varied (they are the cluster's).
//!
//! The report directory holds `report.md` (a Markdown table), `results.csv` and two SVG
//! plots (see [`crate::plot`]).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Most cells one scenario may hold (a guard against a typo exploding the matrix).
pub const MAX_CELLS: usize = 1_000;
/// How long a started broker may take to say it is serving.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cell may run past its duration before it is killed.
const CELL_GRACE: Duration = Duration::from_secs(60);
/// How long a broker may take to stop after SIGTERM before it is killed.
const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of a scenario run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file cannot be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The scenario file is not valid.
    #[error("invalid scenario {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The broker binary is not where it was looked for.
    #[error(
        "broker binary not found at {0} (build it with `cargo build --release -p ringmq-broker`, or pass --broker-bin)"
    )]
    BrokerMissing(PathBuf),
    /// A process could not be started or watched.
    #[error("{what}: {source}")]
    Process {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The broker did not come up.
    #[error("broker did not start: {0}")]
    BrokerStart(String),
    /// A cell's tool failed or printed no result.
    #[error("cell {cell} failed: {reason}")]
    Cell {
        /// The cell's label.
        cell: String,
        /// Why.
        reason: String,
    },
    /// Writing the report failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("cannot draw {path}: {reason}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Which tool each cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `producer` (one message per request).
    #[default]
    Producer,
    /// `batch-producer` (`batch_sizes` messages per request).
    BatchProducer,
}

/// A scenario file (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the report.
    pub name: String,
    /// Free text shown in the report.
    #[serde(default)]
    pub description: String,
    /// Seconds each cell sends for.
    pub duration_s: u64,
    /// The tool every cell runs.
    #[serde(default)]
    pub tool: Tool,
    /// Topic sent to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Sender threads (`-w`).
    pub threads: Vec<usize>,
    /// Message body sizes in bytes (`-s`).
    pub sizes: Vec<usize>,
    /// Broker flush modes (`async`, `sync`, `memory`); local broker only.
    #[serde(default = "default_flush")]
    pub flush_modes: Vec<String>,
    /// Broker shard counts; local broker only.
    #[serde(default = "default_shards")]
    pub shards: Vec<usize>,
    /// Messages per request (`-b`); `batch-producer` only.
    #[serde(default = "default_batch")]
    pub batch_sizes: Vec<usize>,
    /// The client's async runtime workers (`--workerThreads`); default one per CPU.
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

fn default_topic() -> String {
    "BenchmarkTest".into()
}
fn default_flush() -> Vec<String> {
    vec!["async".into()]
}
fn default_shards() -> Vec<usize> {
    vec![1]
}
fn default_batch() -> Vec<usize> {
    vec![1]
}

/// One point of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Sender threads.
    pub threads: usize,
    /// Body bytes.
    pub size: usize,
    /// Flush mode (`external` against an existing cluster).
    pub flush: String,
    /// Broker shards (0 against an existing cluster).
    pub shards: usize,
    /// Messages per request.
    pub batch: usize,
}

impl Cell {
    /// A short label such as `w64-s1024-async-sh1-b1`.
    pub fn label(&self) -> String {
        format!(
            "w{}-s{}-{}-sh{}-b{}",
            self.threads, self.size, self.flush, self.shards, self.batch
        )
    }
}

/// What one cell measured.
#[derive(Debug, Clone)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// Successful messages.
    pub success: u64,
    /// Failed sends (client side).
    pub send_failed: u64,
    /// Failed responses (broker error codes).
    pub response_failed: u64,
    /// Measured seconds.
    pub elapsed_s: f64,
    /// Messages per second.
    pub tps: f64,
    /// Average RT in ms (per request; exact, from the histogram's mean).
    pub avg_rt_ms: f64,
    /// Median RT in µs.
    pub p50_us: u64,
    /// 99th percentile RT in µs.
    pub p99_us: u64,
    /// 99.9th percentile RT in µs.
    pub p999_us: u64,
    /// Largest RT in µs.
    pub max_us: u64,
    /// 1-minute load average when the cell ended.
    pub load1: f64,
}

/// The `--json` summary a tool prints.
#[derive(Debug, Deserialize)]
struct ToolJson {
    success: u64,
    send_failed: u64,
    response_failed: u64,
    elapsed_s: f64,
    tps: f64,
    latency_us: LatencyJson,
}

#[derive(Debug, Deserialize)]
struct LatencyJson {
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    mean_us: f64,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text).map_err(|reason| ScenarioError::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        if scenario.duration_s == 0 {
            return Err("duration_s must be at least 1".into());
        }
        for (name, axis) in [
            ("threads", &scenario.threads),
            ("sizes", &scenario.sizes),
            ("shards", &scenario.shards),
            ("batch_sizes", &scenario.batch_sizes),
        ] {
            if axis.is_empty() || axis.contains(&0) {
                return Err(format!(
                    "{name} must be a non-empty list of positive numbers"
                ));
            }
        }
        if scenario.flush_modes.is_empty() {
            return Err("flush_modes must not be empty".into());
        }
        for mode in &scenario.flush_modes {
            if !matches!(mode.as_str(), "async" | "sync" | "memory") {
                return Err(format!(
                    "flush mode {mode:?}: expected async, sync or memory"
                ));
            }
        }
        if scenario.tool == Tool::Producer && scenario.batch_sizes != [1] {
            return Err("batch_sizes needs tool = \"batch-producer\"".into());
        }
        let cells = scenario.threads.len()
            * scenario.sizes.len()
            * scenario.flush_modes.len()
            * scenario.shards.len()
            * scenario.batch_sizes.len();
        if cells > MAX_CELLS {
            return Err(format!("{cells} cells; at most {MAX_CELLS}"));
        }
        Ok(scenario)
    }

    /// The cells in run order. Against an existing cluster the flush and shard axes
    /// collapse to one `external` value.
    pub fn cells(&self, external: bool) -> Vec<Cell> {
        let (flushes, shards) = if external {
            (vec!["external".to_owned()], vec![0])
        } else {
            (self.flush_modes.clone(), self.shards.clone())
        };
        let mut cells = Vec::new();
        for flush in &flushes {
            for &shard in &shards {
                for &size in &self.sizes {
                    for &batch in &self.batch_sizes {
                        for &threads in &self.threads {
                            cells.push(Cell {
                                threads,
                                size,
                                flush: flush.clone(),
                                shards: shard,
                                batch,
                            });
                        }
                    }
                }
            }
        }
        cells
    }
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `ringmq-perf` binary each cell runs.
    pub perf_bin: PathBuf,
    /// The broker binary (local broker mode).
    pub broker_bin: PathBuf,
    /// An existing cluster's NameServer list; `None` starts a local broker per cell.
    pub target: Option<String>,
    /// Overrides the scenario's per-cell duration.
    pub duration_s: Option<u64>,
    /// Report directory.
    pub out: PathBuf,
}

/// A `ringmq-broker standalone` child process, stopped (SIGTERM, then kill) on drop.
struct LocalBroker {
    child: Child,
    namesrv: String,
    _data: TempDir,
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<TempDir, ScenarioError> {
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            crate::report::now_ms()
        ));
        std::fs::create_dir_all(&path).map_err(|source| ScenarioError::Process {
            what: format!("cannot create {}", path.display()),
            source,
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), %error, "cannot remove temporary directory");
        }
    }
}

/// A free loopback port (bound, read, released).
fn free_port() -> Result<u16, ScenarioError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| ScenarioError::Process {
            what: "cannot find a free port".into(),
            source,
        })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|source| ScenarioError::Process {
            what: "cannot find a free port".into(),
            source,
        })
}

/// Sends SIGTERM to a child we started.
fn terminate(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Waits for `child` to exit, up to `timeout`; kills it then.
fn wait_or_kill(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

impl LocalBroker {
    fn start(bin: &Path, cell: &Cell) -> Result<LocalBroker, ScenarioError> {
        let data = TempDir::new("ringmq-perf-broker")?;
        let namesrv_port = free_port()?;
        let port = free_port()?;
        let mut child = Command::new(bin)
            .args(["standalone", "--namesrv-port"])
            .arg(namesrv_port.to_string())
            .arg("--port")
            .arg(port.to_string())
            .arg("--data")
            .arg(&data.0)
            .arg("--shards")
            .arg(cell.shards.to_string())
            .arg("--flush-mode")
            .arg(&cell.flush)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ScenarioError::Process {
                what: format!("cannot start {}", bin.display()),
                source,
            })?;
        let (tx, rx) = mpsc::channel::<String>();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    tracing::debug!(target: "broker", "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        let stderr_tail = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() > 4096 {
                            tail.clear();
                        }
                        tail.push_str(&line);
                        tail.push('\n');
                    }
                }
            });
        }
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        let mut broker = LocalBroker {
            child,
            namesrv: format!("127.0.0.1:{namesrv_port}"),
            _data: data,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if line.contains("serving") => {
                    wait_registered(&broker.namesrv, cell.shards, deadline)?;
                    return Ok(broker);
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {
                    if let Ok(Some(status)) = broker.child.try_wait() {
                        let tail = stderr_tail.lock().map(|t| t.clone()).unwrap_or_default();
                        return Err(ScenarioError::BrokerStart(format!(
                            "exited with {status}: {tail}"
                        )));
                    }
                }
                Err(_) => {
                    let tail = stderr_tail.lock().map(|t| t.clone()).unwrap_or_default();
                    broker.stop();
                    return Err(ScenarioError::BrokerStart(format!(
                        "no `serving` line within {BROKER_START_TIMEOUT:?}: {tail}"
                    )));
                }
            }
        }
    }

    fn stop(&mut self) {
        terminate(&self.child);
        wait_or_kill(&mut self.child, BROKER_STOP_TIMEOUT);
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until the NameServer at `namesrv` lists `shards` brokers (a broker prints
/// `serving` before its first registration lands; a send before that finds no route).
fn wait_registered(namesrv: &str, shards: usize, deadline: Instant) -> Result<(), ScenarioError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ScenarioError::Process {
            what: "cannot start a runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let instance =
            ringmq_client::ClientInstance::new(ringmq_client::ClientConfig::new(namesrv))
                .map_err(|e| ScenarioError::BrokerStart(format!("cannot create a client: {e}")))?;
        let admin = ringmq_client::Admin::new(instance.clone());
        let mut last: String;
        let result = loop {
            match admin.cluster_info().await {
                Ok(info) if info.broker_addr_table.len() >= shards => break Ok(()),
                Ok(info) => {
                    last = format!(
                        "{} of {shards} brokers registered",
                        info.broker_addr_table.len()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                break Err(ScenarioError::BrokerStart(format!(
                    "not registered with its NameServer in time: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        instance.shutdown();
        result
    })
}

/// The 1-minute load average (0 where /proc is absent).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Runs one cell's tool against `namesrv` and parses its JSON summary.
fn run_tool(
    options: &RunOptions,
    scenario: &Scenario,
    cell: &Cell,
    namesrv: &str,
    duration_s: u64,
) -> Result<CellResult, ScenarioError> {
    let fail = |reason: String| ScenarioError::Cell {
        cell: cell.label(),
        reason,
    };
    let mut command = Command::new(&options.perf_bin);
    if let Some(workers) = scenario.worker_threads {
        command.args(["--workerThreads", &workers.max(1).to_string()]);
    }
    match scenario.tool {
        Tool::Producer => command.arg("producer"),
        Tool::BatchProducer => command.args(["batch-producer", "-b", &cell.batch.to_string()]),
    };
    command
        .args(["-n", namesrv, "-t", &scenario.topic])
        .args(["-w", &cell.threads.to_string()])
        .args(["-s", &cell.size.to_string()])
        .args(["--duration", &duration_s.to_string(), "--json"])
        .args(["--reportInterval", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", options.perf_bin.display())))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(1 << 20).read_to_string(&mut text);
        }
        text
    });
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(err) = stderr.as_mut() {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if text.len() < 64 * 1024 {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        }
        text
    });
    wait_or_kill(&mut child, Duration::from_secs(duration_s) + CELL_GRACE);
    let status = child
        .wait()
        .map_err(|e| fail(format!("cannot wait for the tool: {e}")))?;
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!("tool exited with {status}: {stderr}")));
    }
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| fail(format!("no JSON summary; stderr: {stderr}")))?;
    let parsed: ToolJson =
        serde_json::from_str(json).map_err(|e| fail(format!("bad JSON summary {json:?}: {e}")))?;
    Ok(CellResult {
        cell: cell.clone(),
        success: parsed.success,
        send_failed: parsed.send_failed,
        response_failed: parsed.response_failed,
        elapsed_s: parsed.elapsed_s,
        tps: parsed.tps,
        avg_rt_ms: parsed.latency_us.mean_us / 1000.0,
        p50_us: parsed.latency_us.p50_us,
        p99_us: parsed.latency_us.p99_us,
        p999_us: parsed.latency_us.p999_us,
        max_us: parsed.latency_us.max_us,
        load1: load_average(),
    })
}

/// Runs every cell and writes the report; returns the results.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Vec<CellResult>, ScenarioError> {
    let external = options.target.is_some();
    if !external && !options.broker_bin.is_file() {
        return Err(ScenarioError::BrokerMissing(options.broker_bin.clone()));
    }
    let duration_s = options.duration_s.unwrap_or(scenario.duration_s).max(1);
    let cells = scenario.cells(external);
    let mut results = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} ({} s, load {:.2})",
            i + 1,
            cells.len(),
            cell.label(),
            duration_s,
            load_average()
        );
        let result = match &options.target {
            Some(namesrv) => run_tool(options, scenario, cell, namesrv, duration_s)?,
            None => {
                let broker = LocalBroker::start(&options.broker_bin, cell)?;
                let result = run_tool(options, scenario, cell, &broker.namesrv, duration_s);
                drop(broker);
                result?
            }
        };
        eprintln!(
            "    {:.0} msg/s, avg {:.3} ms, p99 {} µs, failures {}",
            result.tps,
            result.avg_rt_ms,
            result.p99_us,
            result.send_failed + result.response_failed
        );
        results.push(result);
    }
    write_report(scenario, options, duration_s, &results)?;
    Ok(results)
}

/// The CSV header of `results.csv`.
pub const CSV_HEADER: &str = "cell,tool,threads,size,flush,shards,batch,duration_s,success,send_failed,response_failed,tps,avg_rt_ms,p50_us,p99_us,p999_us,max_us,load1";

fn tool_name(tool: Tool) -> &'static str {
    match tool {
        Tool::Producer => "producer",
        Tool::BatchProducer => "batch-producer",
    }
}

/// `results.csv` text.
pub fn csv(scenario: &Scenario, results: &[CellResult]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in results {
        let c = &r.cell;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{:.3},{},{},{},{:.1},{:.3},{},{},{},{},{:.2}",
            c.label(),
            tool_name(scenario.tool),
            c.threads,
            c.size,
            c.flush,
            c.shards,
            c.batch,
            r.elapsed_s,
            r.success,
            r.send_failed,
            r.response_failed,
            r.tps,
            r.avg_rt_ms,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.max_us,
            r.load1
        );
    }
    out
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// `report.md` text.
pub fn markdown(
    scenario: &Scenario,
    options: &RunOptions,
    duration_s: u64,
    results: &[CellResult],
) -> String {
    let mut out = format!("# Scenario `{}`\n\n", scenario.name);
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "{}\n", scenario.description);
    }
    let target = match &options.target {
        Some(t) => format!("existing cluster, NameServer `{t}`"),
        None => "a local `ringmq-broker standalone` per cell (fresh data dir)".into(),
    };
    let _ = writeln!(
        out,
        "Tool `{}`, topic `{}`, {duration_s} s per cell, against {target}. \
         Generated {} by `ringmq-perf scenario`. RT is per request, in ms.\n",
        tool_name(scenario.tool),
        scenario.topic,
        crate::stats::current_time()
    );
    out.push_str("| -w | -s | flush | shards | batch | msg/s | avg RT | p50 | p99 | p99.9 | max | failures | load1 |\n");
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let c = &r.cell;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {:.2} |",
            c.threads,
            c.size,
            c.flush,
            c.shards,
            c.batch,
            r.tps,
            r.avg_rt_ms,
            ms(r.p50_us),
            ms(r.p99_us),
            ms(r.p999_us),
            ms(r.max_us),
            r.send_failed + r.response_failed,
            r.load1
        );
    }
    out.push_str("\n![throughput vs threads](throughput_vs_threads.svg)\n\n");
    out.push_str("![latency percentiles vs throughput](latency_vs_throughput.svg)\n");
    out
}

fn write_report(
    scenario: &Scenario,
    options: &RunOptions,
    duration_s: u64,
    results: &[CellResult],
) -> Result<(), ScenarioError> {
    let write = |name: &str, text: String| {
        let path = options.out.join(name);
        std::fs::write(&path, text).map_err(|source| ScenarioError::Write { path, source })
    };
    std::fs::create_dir_all(&options.out).map_err(|source| ScenarioError::Write {
        path: options.out.clone(),
        source,
    })?;
    write("results.csv", csv(scenario, results))?;
    write(
        "report.md",
        markdown(scenario, options, duration_s, results),
    )?;
    crate::plot::throughput_vs_threads(
        &options.out.join("throughput_vs_threads.svg"),
        &scenario.name,
        results,
    )?;
    crate::plot::latency_vs_throughput(
        &options.out.join("latency_vs_throughput.svg"),
        &scenario.name,
        results,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK: &str = include_str!("../scenarios/book-matrix.toml");
    const SMOKE: &str = include_str!("../scenarios/ci-smoke.toml");

    #[test]
    fn shipped_scenarios_parse() {
        let book = Scenario::parse(BOOK).unwrap();
        assert_eq!(book.cells(false).len(), 5 * 3 * 2);
        assert_eq!(book.threads, [1, 8, 32, 64, 128]);
        assert_eq!(book.sizes, [128, 1024, 4096]);
        let smoke = Scenario::parse(SMOKE).unwrap();
        let cells = smoke.cells(false).len();
        assert!((2..=3).contains(&cells), "{cells} cells");
    }

    #[test]
    fn external_collapses_broker_axes() {
        let book = Scenario::parse(BOOK).unwrap();
        let cells = book.cells(true);
        assert_eq!(cells.len(), 5 * 3);
        assert!(cells.iter().all(|c| c.flush == "external" && c.shards == 0));
    }

    #[test]
    fn rejects_bad_scenarios() {
        let base = "name = \"x\"\nduration_s = 1\nthreads = [1]\nsizes = [8]\n";
        assert!(Scenario::parse(base).is_ok());
        assert!(Scenario::parse(&format!("{base}flush_modes = [\"fast\"]\n")).is_err());
        assert!(Scenario::parse(&format!("{base}batch_sizes = [4]\n")).is_err());
        assert!(Scenario::parse(&base.replace("[1]", "[]")).is_err());
        assert!(Scenario::parse(&base.replace("duration_s = 1", "duration_s = 0")).is_err());
        assert!(Scenario::parse(&format!("{base}bogus = 1\n")).is_err());
    }

    #[test]
    fn csv_has_one_row_per_cell() {
        let scenario = Scenario::parse(SMOKE).unwrap();
        let results: Vec<CellResult> = scenario
            .cells(false)
            .into_iter()
            .map(|cell| CellResult {
                cell,
                success: 10,
                send_failed: 0,
                response_failed: 0,
                elapsed_s: 1.0,
                tps: 10.0,
                avg_rt_ms: 0.5,
                p50_us: 400,
                p99_us: 900,
                p999_us: 1000,
                max_us: 1200,
                load1: 1.0,
            })
            .collect();
        let text = csv(&scenario, &results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), results.len() + 1);
        let cols = CSV_HEADER.split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == cols));
    }
}
