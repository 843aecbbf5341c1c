//! `ringmq-perf`: the pressure-test harness, with the options, defaults and report lines of
//! RocketMQ's benchmark tools (`producer.sh`, `consumer.sh`, `tproducer.sh`, `batchproducer.sh`), and `scenario`, which
//! runs matrices of them and writes a report.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use ringmq_perf::{consumer, producer, scenario, transaction};

#[derive(Parser)]
#[command(
    name = "ringmq-perf",
    version,
    about = "Pressure tests for ringmq and any RocketMQ-compatible cluster",
    long_about = "Pressure tests for ringmq and any RocketMQ-compatible cluster.\n\n\
        Options, defaults and report lines follow RocketMQ 5.x's benchmark tools \
        (producer.sh, consumer.sh, tproducer.sh, batchproducer.sh); RocketMQ's multi-letter \
        short options such as -ri are accepted. Point -n at any RocketMQ-compatible NameServer. \
        `scenario` runs a matrix of producer cells (local standalone brokers or -n) and writes \
        report.md, results.csv and SVG plots."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Async runtime worker threads for the client (default: a quarter of the CPUs, at
    /// least 1). `-w` tasks are spread over these. One thread avoids cross-thread wake-ups:
    /// on the 2-vCPU box it cut the client's CPU per 1 KiB send by 25-40 % against two
    /// (docs/benchmarks.md, "Hot path, round 2"), and leaves the other CPU to a broker
    /// running beside it.
    #[arg(long = "workerThreads", global = true)]
    worker_threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Send messages as fast as possible (RocketMQ's benchmarkProducer).
    Producer(producer::ProducerArgs),
    /// Consume and measure end-to-end latency (RocketMQ's benchmarkConsumer).
    Consumer(consumer::ConsumerArgs),
    /// Send batches (RocketMQ's benchmarkBatchProducer).
    BatchProducer(producer::BatchProducerArgs),
    /// Transactional sends with scripted checks (RocketMQ's TransactionProducer).
    TxProducer(transaction::TxProducerArgs),
    /// Run a matrix of producer cells from a TOML file and write a report directory.
    Scenario(ScenarioArgs),
}

/// mimalloc instead of glibc's malloc: on the 1 KiB produce path (client and broker on one
/// 2-vCPU box) glibc's malloc/free took ~16-19 % of the CPU per message, and preloading
/// mimalloc cut the CPU per message by about a third (docs/benchmarks.md, Perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(ringmq_perf::args::normalize(std::env::args()));
    let cli = match cli.command {
        Command::Scenario(args) => return run_scenario(args),
        command => Cli {
            command,
            worker_threads: cli.worker_threads,
        },
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(
        cli.worker_threads
            .unwrap_or_else(default_worker_threads)
            .max(1),
    );
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ringmq-perf: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Producer(args) => producer::run_producer(args).await,
            Command::Consumer(args) => consumer::run_consumer(args).await,
            Command::BatchProducer(args) => producer::run_batch_producer(args).await,
            Command::TxProducer(args) => transaction::run_tx_producer(args).await,
            Command::Scenario(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ringmq-perf: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// A quarter of the CPUs this process may use, at least one (see `--workerThreads`).
fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1))
}

/// `scenario` options.
#[derive(clap::Args)]
struct ScenarioArgs {
    /// The scenario file (TOML; see perf/scenarios/).
    file: PathBuf,
    /// Report directory (created).
    #[arg(long = "out", default_value = "target/perf/scenario")]
    out: PathBuf,
    /// Run against this existing cluster's NameServer list instead of a local broker per cell.
    #[arg(short = 'n', long = "target")]
    target: Option<String>,
    /// The ringmq-broker binary (default: next to this binary).
    #[arg(long = "broker-bin")]
    broker_bin: Option<PathBuf>,
    /// Seconds per cell, overriding the file's duration_s.
    #[arg(long = "duration")]
    duration_s: Option<u64>,
}

fn run_scenario(args: ScenarioArgs) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let perf_bin = std::env::current_exe()?;
        let broker_bin = match args.broker_bin {
            Some(path) => path,
            None => perf_bin.with_file_name("ringmq-broker"),
        };
        let loaded = scenario::Scenario::load(&args.file)?;
        let options = scenario::RunOptions {
            perf_bin,
            broker_bin,
            target: args.target,
            duration_s: args.duration_s,
            out: args.out,
        };
        let results = scenario::run(&loaded, &options)?;
        println!(
            "{} cells; report in {}",
            results.len(),
            options.out.join("report.md").display()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ringmq-perf: {error:#}");
            ExitCode::from(1)
        }
    }
}
