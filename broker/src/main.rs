//! `ringmq-broker`: the broker binary.
//!
//! `start -c broker.toml` serves; `check -c broker.toml` validates a config without starting;
//! `standalone` serves with an embedded NameServer for a first try; `store verify|dump`
//! inspect a data directory offline. Under a systemd `Type=notify` unit the broker reports
//! `READY=1` once every shard listens and `STOPPING=1` when it begins a clean stop.

use std::path::PathBuf;
use std::process::ExitCode;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use ringmq_broker::config::{BrokerConfig, FlushMode};
use ringmq_broker::server::broker::Broker;
use ringmq_broker::store::io::{StdFs, block_on};
use ringmq_broker::store::verify;
use ringmq_namesrv::{BackgroundNameServer, NameServer, NameServerConfig};

#[derive(Parser)]
#[command(
    name = "ringmq-broker",
    version,
    about = "ringmq: a RocketMQ-compatible broker on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker from a TOML config file (see docs/configuration.md); stops cleanly on
    /// SIGTERM or Ctrl-C.
    Start {
        /// Path of the broker config file.
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
    },
    /// Validate a broker config file without starting anything: every problem is printed
    /// with its key and the fix; exit status 0 (good) or 1. Also checks the overlay of
    /// runtime changes next to the data (`updateBrokerConfig`).
    Check {
        /// Path of the broker config file.
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
    },
    /// Start a broker and an embedded NameServer on loopback, data under ./data, topics
    /// created on first use: for a first try.
    Standalone(StandaloneArgs),
    /// Admin commands named like RocketMQ's mqadmin (`admin` alone lists them).
    Admin(ringmq_broker::admin::AdminArgs),
    /// Inspect a shard's data directory offline (the broker must not be running on it).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(clap::Args)]
struct StandaloneArgs {
    /// Data directory (the broker's store and the NameServer's KV file).
    #[arg(long, default_value = "./data")]
    data: PathBuf,
    /// Port of the embedded NameServer.
    #[arg(long, default_value_t = 9876)]
    namesrv_port: u16,
    /// Client port of shard 0 (shard i listens on port + 4·i).
    #[arg(long, default_value_t = 10911)]
    port: u16,
    /// Shards (default: every CPU this process may run on).
    #[arg(long)]
    shards: Option<usize>,
    /// Flush mode: async (default), sync or memory.
    #[arg(long, default_value = "async")]
    flush_mode: String,
    /// Splice pull bodies older than the tail cache from the segment files (`true`, the
    /// default); `false` reads and copies them (docs/benchmarks.md, cold backlog).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    splice_pulls: bool,
    /// I/O driver of the shards: auto (io_uring when available, else the slower fallback
    /// with a warning), io_uring (refuse to start without it) or fallback (epoll + blocking
    /// file I/O on helper threads). `start` reads `runtime.driver` from the config file.
    #[arg(long, default_value = "auto")]
    runtime_driver: String,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Check every CommitLog record (magic, size, CRC, position) and every ConsumeQueue
    /// entry; exits 1 and names file and offset of each problem found.
    Verify {
        /// The shard directory (holding commitlog/, consumequeue/, …).
        dir: PathBuf,
        /// Segment size; inferred from the first segment file when absent.
        #[arg(long)]
        segment_bytes: Option<u64>,
    },
    /// Print the messages of one queue.
    Dump {
        /// The shard directory.
        dir: PathBuf,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Queue id.
        #[arg(long)]
        queue: i32,
        /// Print at most this many messages.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Segment size; inferred from the first segment file when absent.
        #[arg(long)]
        segment_bytes: Option<u64>,
    },
}

/// mimalloc instead of glibc's malloc: on the 1 KiB produce path (client and broker on one
/// 2-vCPU box) glibc's malloc/free took ~16-19 % of the CPU per message, and preloading
/// mimalloc cut the CPU per message by about a third (docs/benchmarks.md, Perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { config } => serve(|| {
            BrokerConfig::load(&config)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .map(|c| (c, None))
        }),
        Command::Check { config } => {
            let report = ringmq_broker::ops::check::check_file(&config);
            if report.ok() {
                print!("{}", report.render());
                ExitCode::SUCCESS
            } else {
                eprint!("{}", report.render());
                ExitCode::from(1)
            }
        }
        Command::Standalone(args) => serve(|| standalone(args)),
        Command::Store { command } => store_command(command),
        Command::Admin(args) => ringmq_broker::admin::run(args),
    }
}

/// Loads the configuration (and starts the embedded NameServer, for `standalone`), starts the
/// shards, waits for SIGTERM/SIGINT and stops cleanly.
fn serve(
    setup: impl FnOnce() -> anyhow::Result<(BrokerConfig, Option<BackgroundNameServer>)>,
) -> ExitCode {
    init_logging();
    // Block the stop signals before any thread starts, so that every thread inherits the
    // mask and only `wait_for_stop_signal` below receives them.
    let signals = match StopSignals::block() {
        Ok(signals) => signals,
        Err(e) => return fail(&format!("cannot set up signal handling: {e}")),
    };
    let (config, namesrv) = match setup() {
        Ok(setup) => setup,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let shards = config.resolved_shards().unwrap_or(0);
    let broker = match Broker::start(config.clone()) {
        Ok(broker) => broker,
        Err(e) => return fail(&e.to_string()),
    };
    println!(
        "ringmq-broker {} serving: cluster {}, broker {}, {} shard(s) on {}:{} (+4 per shard), NameServer {}, runtime driver {}",
        env!("CARGO_PKG_VERSION"),
        config.broker.cluster_name,
        config.broker.broker_name,
        shards,
        config.broker.listen_addr,
        config.broker.base_port,
        config.broker.namesrv_addrs.join(";"),
        broker.runtime_driver().name(),
    );
    notify_systemd(&format!(
        "READY=1\nSTATUS=serving {shards} shard(s) from port {}",
        config.broker.base_port
    ));
    let signal = signals.wait();
    tracing::info!(signal, "stopping");
    notify_systemd("STOPPING=1\nSTATUS=stopping: persisting and closing the stores");
    let result = broker.shutdown();
    drop(namesrv);
    match result {
        Ok(()) => {
            println!("ringmq-broker stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("shutdown incomplete: {e}")),
    }
}

/// Tells systemd (`Type=notify`, `NOTIFY_SOCKET` set) about the service state; a failure is
/// logged, never fatal: systemd then times the start out and says so.
fn notify_systemd(state: &str) {
    match ringmq_broker::ops::notify::notify(state) {
        Ok(true) => tracing::debug!(state, "systemd notified"),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, state, "cannot notify systemd (NOTIFY_SOCKET)"),
    }
}

fn standalone(
    args: StandaloneArgs,
) -> anyhow::Result<(BrokerConfig, Option<BackgroundNameServer>)> {
    std::fs::create_dir_all(&args.data).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            args.data.display()
        )
    })?;
    let namesrv_config = NameServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], args.namesrv_port)),
        kv_config_path: args.data.join("namesrv").join("kvConfig.json"),
        ..NameServerConfig::default()
    };
    let namesrv = NameServer::start_in_background(namesrv_config).map_err(|e| {
        anyhow::anyhow!(
            "cannot start the embedded NameServer on 127.0.0.1:{}: {e} (is another NameServer or \
             standalone broker running? pick another port with --namesrv-port)",
            args.namesrv_port
        )
    })?;
    let mut config = BrokerConfig::standalone();
    config.broker.namesrv_addrs = vec![namesrv.local_addr().to_string()];
    config.broker.base_port = args.port;
    config.broker.shards = args.shards;
    config.store.path = args.data.join("store");
    config.store.splice_pulls = args.splice_pulls;
    config.runtime.driver = args
        .runtime_driver
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--runtime-driver: {e}"))?;
    config.store.flush_mode = match args.flush_mode.as_str() {
        "async" => FlushMode::Async,
        "sync" => FlushMode::Sync,
        "memory" => FlushMode::Memory,
        other => anyhow::bail!("--flush-mode {other}: expected async, sync or memory"),
    };
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("embedded NameServer listening on {}", namesrv.local_addr());
    Ok((config, Some(namesrv)))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ringmq-broker: {message}");
    ExitCode::from(1)
}

/// SIGTERM and SIGINT, blocked in every thread and received synchronously by `wait`.
struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    fn block() -> std::io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it, and
        // pthread_sigmask only reads it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
            Ok(StopSignals { set })
        }
    }

    /// Waits for SIGTERM or SIGINT and returns its name.
    fn wait(&self) -> &'static str {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` was initialised in `block`; `signal` is a valid out pointer.
            let rc = unsafe { libc::sigwait(&self.set, &mut signal) };
            if rc == 0 {
                return if signal == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
            }
        }
    }
}

fn store_command(command: StoreCommand) -> ExitCode {
    match run_store_command(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check_store_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.join("commitlog").is_dir() {
        anyhow::bail!(
            "{} is not a shard data directory (no commitlog/ inside)",
            dir.display()
        );
    }
    Ok(())
}

fn run_store_command(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match &command {
        StoreCommand::Verify { dir, .. } | StoreCommand::Dump { dir, .. } => check_store_dir(dir)?,
    }
    match command {
        StoreCommand::Verify { dir, segment_bytes } => {
            let seg = match segment_bytes {
                Some(s) => s,
                None => verify::infer_segment_bytes(&StdFs, &dir)?,
            };
            let report = block_on(verify::verify(&StdFs, &dir, seg))?;
            println!(
                "{} segments, {} records, {} bytes checked",
                report.segments, report.records, report.record_bytes
            );
            for damage in &report.damage {
                println!("DAMAGED {damage}");
            }
            Ok(if report.damage.is_empty() {
                println!("OK");
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        StoreCommand::Dump {
            dir,
            topic,
            queue,
            limit,
            segment_bytes,
        } => {
            let seg = match segment_bytes {
                Some(s) => s,
                None => verify::infer_segment_bytes(&StdFs, &dir)?,
            };
            let lines = block_on(verify::dump_queue(&StdFs, &dir, seg, &topic, queue, limit))?;
            println!(
                "queueOffset\tphysicalOffset\tsize\tstoreTimestamp\tmsgId\ttags\tkeys\tbodyLen"
            );
            let mut damaged = false;
            for l in lines {
                match l.error {
                    Some(e) => {
                        damaged = true;
                        println!(
                            "{}\t{}\t{}\tERROR {e}",
                            l.queue_offset, l.physical_offset, l.size
                        );
                    }
                    None => println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        l.queue_offset,
                        l.physical_offset,
                        l.size,
                        l.store_timestamp,
                        l.msg_id,
                        l.tags,
                        l.keys,
                        l.body_len
                    ),
                }
            }
            Ok(if damaged {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
