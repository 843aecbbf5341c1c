//! `ringmq-broker`: the broker binary.
//!
//! The server is not built yet; until it is, every serving subcommand says so and exits
//! with status 2 instead of pretending to work.

use clap::{Parser, Subcommand};

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let what = match cli.command {
        Command::Start { .. } => "start",
        Command::Standalone => "standalone",
    };
    eprintln!(
        "ringmq-broker {}: `{what}` is not available yet: the broker server is still being built \
         (see docs/compatibility.md for what works today).",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
