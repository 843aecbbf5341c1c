//! `ringmq-namesrv`: the NameServer binary. Configuration comes from defaults, then the TOML
//! file given with `--config`, then the command-line flags. Prints
//! `ringmq-namesrv listening on <addr>` on stdout once bound; logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ringmq_namesrv::{NameServer, NameServerConfig};

/// ringmq NameServer: a RocketMQ-compatible route registry. Brokers register with it, and
/// clients and admin tools ask it for topic routes. Several may run side by side, unaware of
/// each other; list them all in every broker and client.
#[derive(Debug, Parser)]
#[command(name = "ringmq-namesrv", version)]
struct Cli {
    /// TOML config file; its keys are the long flag names with `_` for `-` (e.g.
    /// `kv_config_path`). Flags given on the command line override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on [default: 0.0.0.0:9876]. Port 0 picks a free port; the bound
    /// address is printed on stdout.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// KV store file, rewritten atomically on every change [default: ~/namesrv/kvConfig.json].
    #[arg(long, value_name = "PATH")]
    kv_config_path: Option<PathBuf>,

    /// How often to look for brokers that went silent, in ms [default: 5000].
    #[arg(long, value_name = "MS")]
    scan_interval_ms: Option<u64>,

    /// Drop a broker not heard from for this long, in ms, unless it announced its own
    /// timeout when registering [default: 120000].
    #[arg(long, value_name = "MS")]
    broker_expiry_ms: Option<u64>,

    /// Maximum concurrent client connections; more are closed on accept [default: 4096].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Close a connection that sends nothing for this long, in ms; 0 = never [default: 120000].
    #[arg(long, value_name = "MS")]
    connection_idle_ms: Option<u64>,

    /// Add `orderTopicConf` (from the KV namespace ORDER_TOPIC_CONFIG) to topic routes
    /// [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    order_message_enable: Option<bool>,

    /// When a master registers, remove its queues of topics it no longer reports
    /// [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    delete_topic_with_broker_registration: Option<bool>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<NameServerConfig> {
        let mut config = match &self.config {
            Some(path) => NameServerConfig::from_toml_file(path)?,
            None => NameServerConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(path) = self.kv_config_path {
            config.kv_config_path = path;
        }
        if let Some(ms) = self.scan_interval_ms {
            config.scan_interval_ms = ms;
        }
        if let Some(ms) = self.broker_expiry_ms {
            config.broker_expiry_ms = ms;
        }
        if let Some(max) = self.max_connections {
            config.max_connections = max;
        }
        if let Some(ms) = self.connection_idle_ms {
            config.connection_idle_ms = ms;
        }
        if let Some(flag) = self.order_message_enable {
            config.order_message_enable = flag;
        }
        if let Some(flag) = self.delete_topic_with_broker_registration {
            config.delete_topic_with_broker_registration = flag;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("ringmq-namesrv: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("namesrv-worker")
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let server = NameServer::start(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "ringmq-namesrv listening on {}",
            server.local_addr()
        )
        .and_then(|()| stdout.flush())
        .context("cannot write the bound address to stdout")?;
        drop(stdout);
        wait_for_signal().await?;
        server.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        result = tokio::signal::ctrl_c() => {
            result.context("cannot watch SIGINT")?;
            tracing::info!("SIGINT received");
        }
    }
    Ok(())
}
