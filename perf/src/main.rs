//! `ringmq-perf`: the pressure-test harness, with the options, defaults and report lines of
//! RocketMQ's benchmark tools (`producer.sh`, `consumer.sh`, `batchproducer.sh`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringmq_perf::{consumer, producer};

#[derive(Parser)]
#[command(
    name = "ringmq-perf",
    version,
    about = "Pressure tests for ringmq and any RocketMQ-compatible cluster",
    long_about = "Pressure tests for ringmq and any RocketMQ-compatible cluster.\n\n\
        Options, defaults and report lines follow RocketMQ 5.x's benchmark tools \
        (producer.sh, consumer.sh, batchproducer.sh); RocketMQ's multi-letter short options \
        such as -ri are accepted. Point -n at any RocketMQ-compatible NameServer."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send messages as fast as possible (RocketMQ's benchmarkProducer).
    Producer(producer::ProducerArgs),
    /// Consume and measure end-to-end latency (RocketMQ's benchmarkConsumer).
    Consumer(consumer::ConsumerArgs),
    /// Send batches (RocketMQ's benchmarkBatchProducer).
    BatchProducer(producer::BatchProducerArgs),
    /// Transactional sends with scripted checks (RocketMQ's TransactionProducer): not
    /// available yet, the client has no transactional producer.
    TxProducer,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(ringmq_perf::args::normalize(std::env::args()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
            Command::TxProducer => Err(anyhow::anyhow!(
                "tx-producer is not available yet: the Rust client has no transactional producer"
            )),
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
