//! `ringmq-broker`: the broker binary.
//!
//! The server is not built yet; until it is, every serving subcommand says so and exits
//! with status 2 instead of pretending to work. `store verify|dump` inspect a data
//! directory offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringmq_broker::store::io::{StdFs, block_on};
use ringmq_broker::store::verify;

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
    /// Start a broker from a TOML config file (not available yet).
    Start {
        /// Path of the broker config file.
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
    },
    /// Start a broker with an embedded NameServer, data under ./data (not available yet).
    Standalone,
    /// Admin commands named like RocketMQ's mqadmin (`admin` alone lists them).
    Admin(ringmq_broker::admin::AdminArgs),
    /// Inspect a shard's data directory offline (the broker must not be running on it).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let what = match cli.command {
        Command::Start { .. } => "start",
        Command::Standalone => "standalone",
        Command::Store { command } => return store_command(command),
        Command::Admin(args) => return ringmq_broker::admin::run(args),
    };
    eprintln!(
        "ringmq-broker {}: `{what}` is not available yet: the broker server is still being built \
         (see docs/compatibility.md for what works today).",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
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
