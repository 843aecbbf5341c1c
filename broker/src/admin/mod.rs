//! `ringmq-broker admin <command>`: the admin commands, named, flagged and printed like
//! RocketMQ's `mqadmin` (spec §C.3), over the Rust client's [`Admin`].
//!
//! The commands are thin: every request goes through [`ringmq_client::admin::Admin`] (or the
//! client's producer for `sendMessage`); this module only parses options, resolves the
//! NameServer list, and formats the answers. Each command prints mqadmin's table (the
//! printf patterns of spec §C.3.3) or, with `--json`, one JSON document for scripts.
//!
//! Invocation rules follow mqadmin: command names are case-insensitive; `admin` alone lists
//! the commands; `admin help <cmd>` prints a command's options; `-n host:port;host:port`
//! names the NameServers, falling back to `NAMESRV_ADDR`. Errors are one line on stderr that
//! says what failed and what to do; the exit status is 1 for a failed operation and 2 for
//! bad usage.
//!
//! Runs on the calling thread, inside a single-threaded tokio runtime built per command
//! (the client library runs on tokio; the broker's shards are not involved).

mod client;
mod cluster;
mod common;
pub mod format;
mod group;
mod message;
mod offset;
mod topic;

use std::process::ExitCode;

use ringmq_client::admin::Admin;
use ringmq_client::instance::{ClientConfig, ClientInstance};

use common::describe;
pub use common::{AdminError, Common, Report};

/// The arguments after `ringmq-broker admin`: the command name and its options, parsed by
/// [`run`] (not by clap's subcommand machinery, so that names are case-insensitive as in
/// mqadmin).
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct AdminArgs {
    /// The command (e.g. `topicList`) followed by its options; nothing lists the commands.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// One admin command: its options (a clap parser) and what it does with an [`Admin`].
pub(crate) trait AdminCommand: clap::Parser {
    /// The options every command shares.
    fn common(&self) -> &Common;

    /// Runs the command once and returns what to print.
    async fn execute(&self, admin: &Admin) -> Result<Report, AdminError>;

    /// For commands that repeat (`clusterList -i`): the pause between two runs.
    fn repeat_every(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A registered command: mqadmin's name, its one-line description, and how to run it.
struct Entry {
    name: &'static str,
    about: &'static str,
    run: fn(&'static str, Vec<String>) -> Result<(), AdminError>,
    help: fn(&'static str) -> String,
}

const fn entry<C: AdminCommand>(name: &'static str, about: &'static str) -> Entry {
    Entry {
        name,
        about,
        run: run_command::<C>,
        help: help_of::<C>,
    }
}

/// Every command, in mqadmin's registration order (spec §C.3.4).
const COMMANDS: &[Entry] = &[
    entry::<topic::UpdateTopic>("updateTopic", "Update or create topic."),
    entry::<topic::DeleteTopic>("deleteTopic", "Delete topic from broker and NameServer."),
    entry::<group::UpdateSubGroup>("updateSubGroup", "Update or create subscription group."),
    entry::<cluster::UpdateBrokerConfig>("updateBrokerConfig", "Update broker's config."),
    entry::<topic::UpdateTopicPerm>("updateTopicPerm", "Update topic perm."),
    entry::<group::DeleteSubGroup>("deleteSubGroup", "Delete subscription group from broker."),
    entry::<topic::TopicRoute>("topicRoute", "Examine topic route info."),
    entry::<topic::TopicStatus>("topicStatus", "Examine topic Status info."),
    entry::<cluster::BrokerStatus>("brokerStatus", "Fetch broker runtime status data."),
    entry::<message::QueryMsgById>("queryMsgById", "Query Message by Id."),
    entry::<message::QueryMsgByKey>("queryMsgByKey", "Query Message by Key."),
    entry::<message::QueryMsgByUniqueKey>("queryMsgByUniqueKey", "Query Message by Unique key."),
    entry::<message::QueryMsgByOffset>("queryMsgByOffset", "Query Message by offset."),
    entry::<group::ConsumerConnection>(
        "consumerConnection",
        "Query consumer's socket connection, client version and subscription.",
    ),
    entry::<group::ConsumerProgress>("consumerProgress", "Query consumer's progress, speed."),
    entry::<client::ConsumerStatus>(
        "consumerStatus",
        "Query and display consumer's internal data structures.",
    ),
    entry::<client::ProducerConnectionCmd>(
        "producerConnection",
        "Query producer's socket connection and client version.",
    ),
    entry::<cluster::ClusterList>("clusterList", "List cluster infos."),
    entry::<topic::TopicList>("topicList", "Fetch all topic list from name server."),
    entry::<cluster::WipeWritePerm>(
        "wipeWritePerm",
        "Wipe write perm of broker in all name server you defined in the -n param.",
    ),
    entry::<cluster::AddWritePerm>(
        "addWritePerm",
        "Add write perm of broker in all name server you defined in the -n param.",
    ),
    entry::<offset::ResetOffsetByTime>(
        "resetOffsetByTime",
        "Reset consumer offset by timestamp(without client restart).",
    ),
    entry::<cluster::GetBrokerConfig>(
        "getBrokerConfig",
        "Get broker config by cluster or special broker.",
    ),
    entry::<message::SendMessage>("sendMessage", "Send a message."),
    entry::<message::ConsumeMessage>("consumeMessage", "Consume message."),
];

/// The command registered under `name`, compared case-insensitively as mqadmin does.
fn lookup(name: &str) -> Option<&'static Entry> {
    COMMANDS.iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

/// mqadmin's listing: what `admin` alone prints.
pub fn command_listing() -> String {
    let mut out = String::from("The most commonly used mqadmin commands are:\n");
    for e in COMMANDS {
        out.push_str(&format!("   {:<35} {}\n", e.name, e.about));
    }
    out.push_str(
        "See 'ringmq-broker admin help <command>' for more information on a specific command.\n",
    );
    out
}

/// Runs `ringmq-broker admin <args>`; the process exit status: 0 done, 1 the operation
/// failed, 2 bad usage.
pub fn run(args: AdminArgs) -> ExitCode {
    // The client's logs (failover, retries) go to stderr only when asked for, so that
    // stdout stays the table or the JSON document.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    match dispatch(args.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(error.exit_status())
        }
    }
}

fn dispatch(mut args: Vec<String>) -> Result<(), AdminError> {
    if args.is_empty() {
        print!("{}", command_listing());
        return Ok(());
    }
    let name = args.remove(0);
    if name.eq_ignore_ascii_case("help") || name == "-h" || name == "--help" {
        let Some(target) = args.first() else {
            print!("{}", command_listing());
            return Ok(());
        };
        let entry = lookup(target).ok_or_else(|| unknown_command(target))?;
        print!("{}", (entry.help)(entry.name));
        return Ok(());
    }
    let entry = lookup(&name).ok_or_else(|| unknown_command(&name))?;
    (entry.run)(entry.name, args)
}

fn unknown_command(name: &str) -> AdminError {
    AdminError::Usage(format!(
        "The sub command {name} not exist. Run `ringmq-broker admin` for the list of commands."
    ))
}

fn clap_command<C: AdminCommand>(name: &'static str) -> clap::Command {
    C::command()
        .name(name)
        .bin_name(format!("ringmq-broker admin {name}"))
}

fn help_of<C: AdminCommand>(name: &'static str) -> String {
    clap_command::<C>(name).render_long_help().to_string()
}

fn parse<C: AdminCommand>(name: &'static str, args: Vec<String>) -> Result<Option<C>, AdminError> {
    let argv = std::iter::once(name.to_owned()).chain(args);
    let parsed = clap_command::<C>(name)
        .try_get_matches_from(argv)
        .and_then(|matches| C::from_arg_matches(&matches));
    match parsed {
        Ok(command) => Ok(Some(command)),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            print!("{}", e.render());
            Ok(None)
        }
        Err(e) => {
            // clap's first paragraph, on one line (it may list missing options below).
            let rendered = e.to_string();
            let first: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            Err(AdminError::Usage(format!(
                "{name}: {first} (run `ringmq-broker admin help {name}` for the options)"
            )))
        }
    }
}

fn run_command<C: AdminCommand>(name: &'static str, args: Vec<String>) -> Result<(), AdminError> {
    let Some(command) = parse::<C>(name, args)? else {
        return Ok(());
    };
    let namesrv = command.common().namesrv_addr()?;
    // A malformed list is a usage error (status 2), not a failed operation.
    ringmq_client::namesrv::parse_addrs(&namesrv)
        .map_err(|e| AdminError::Usage(format!("{name}: -n {namesrv:?}: {}", describe(&e))))?;
    let json = command.common().json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AdminError::Runtime)?;
    runtime.block_on(async {
        let instance = ClientInstance::new(ClientConfig::new(namesrv))
            .map_err(|e| AdminError::client(name, e))?;
        let admin = Admin::new(instance.clone());
        let result = loop {
            match command.execute(&admin).await {
                Ok(report) => report.print(json),
                Err(error) => break Err(error.in_command(name)),
            }
            match command.repeat_every() {
                Some(pause) => tokio::time::sleep(pause).await,
                None => break Ok(()),
            }
        };
        instance.shutdown();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup("TOPICLIST").map(|e| e.name), Some("topicList"));
        assert_eq!(lookup("clusterlist").map(|e| e.name), Some("clusterList"));
        assert!(lookup("noSuchCommand").is_none());
    }

    #[test]
    fn listing_uses_mqadmin_layout() {
        let listing = command_listing();
        let mut lines = listing.lines();
        assert_eq!(
            lines.next(),
            Some("The most commonly used mqadmin commands are:")
        );
        assert_eq!(
            lines.next(),
            Some("   updateTopic                         Update or create topic.")
        );
        assert_eq!(listing.lines().count(), COMMANDS.len() + 2);
    }

    #[test]
    fn every_command_parses_its_help() {
        for e in COMMANDS {
            let help = (e.help)(e.name);
            assert!(help.contains("--json"), "{}: {help}", e.name);
            assert!(help.contains("-n"), "{}", e.name);
        }
    }
}
