//! What every admin command shares: the `-n`/`--json` options, the error type (with the
//! one-line "what failed, what to do" messages and exit statuses) and the printed report.

use ringmq_client::ClientError;
use ringmq_client::admin::Admin;

/// The environment variable read when `-n` is absent, as mqadmin does.
pub const NAMESRV_ADDR_ENV: &str = "NAMESRV_ADDR";

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// NameServer address list, `host:port;host:port` (default: the NAMESRV_ADDR
    /// environment variable).
    #[arg(short = 'n', long = "namesrvAddr", value_name = "host:port;host:port")]
    pub namesrv: Option<String>,
    /// Print one JSON document on stdout instead of mqadmin's table (for scripts).
    #[arg(long)]
    pub json: bool,
}

impl Common {
    /// The NameServer list: `-n`, else `NAMESRV_ADDR`, else an error saying how to fix it.
    pub fn namesrv_addr(&self) -> Result<String, AdminError> {
        let from_env = || {
            std::env::var(NAMESRV_ADDR_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        match self
            .namesrv
            .clone()
            .filter(|v| !v.trim().is_empty())
            .or_else(from_env)
        {
            Some(addr) => Ok(addr),
            None => Err(AdminError::NoNameServer),
        }
    }
}

/// Where a command acts, as mqadmin's `-b`/`-c` pair: one broker, or every master of a
/// cluster. `-b` wins when both are given.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Broker address (host:port); wins over -c.
    #[arg(short = 'b', long = "brokerAddr", required_unless_present = "cluster")]
    pub broker: Option<String>,
    /// Cluster name: every master of the cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster: Option<String>,
}

impl Target {
    /// Whether the command acts on one broker named by `-b`.
    pub fn is_one_broker(&self) -> bool {
        self.broker.is_some()
    }

    /// The broker addresses to act on: `-b` alone, else every master of `-c`.
    pub async fn brokers(&self, admin: &Admin) -> Result<Vec<String>, AdminError> {
        match (&self.broker, &self.cluster) {
            (Some(addr), _) => Ok(vec![addr.trim().to_owned()]),
            (None, Some(cluster)) => {
                let masters = admin.cluster_masters(cluster.trim()).await?;
                if masters.is_empty() {
                    return Err(AdminError::failed(format!(
                        "cluster {:?} has no master broker registered (see `clusterList`)",
                        cluster.trim()
                    )));
                }
                Ok(masters.into_iter().map(|(_, addr)| addr).collect())
            }
            (None, None) => Err(AdminError::Usage(
                "pass -b brokerAddr or -c clusterName".into(),
            )),
        }
    }
}

/// How an admin command fails.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad command line (unknown command, missing or malformed option). Exit status 2.
    #[error("{0}")]
    Usage(String),
    /// Neither `-n` nor `NAMESRV_ADDR` names a NameServer. Exit status 2.
    #[error(
        "no NameServer address: pass -n host:port (several: -n 'host1:9876;host2:9876') or set \
         NAMESRV_ADDR"
    )]
    NoNameServer,
    /// The operation failed; the message says what and what to do. Exit status 1.
    #[error("{0}")]
    Failed(String),
    /// The tokio runtime could not be created. Exit status 1.
    #[error("cannot start the admin runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl AdminError {
    /// The process exit status for this error: 2 for usage, 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            AdminError::Usage(_) | AdminError::NoNameServer => 2,
            AdminError::Failed(_) | AdminError::Runtime(_) => 1,
        }
    }

    /// A client error in command `name`, with a hint on what to do.
    pub fn client(name: &str, error: ClientError) -> Self {
        AdminError::Failed(format!("{name}: {}", describe(&error)))
    }

    /// A failure with a plain message.
    pub fn failed(message: impl Into<String>) -> Self {
        AdminError::Failed(message.into())
    }

    /// Prefixes the message with the command name, unless it already names one.
    pub(crate) fn in_command(self, name: &str) -> Self {
        match self {
            AdminError::Failed(m) if !m.starts_with(&format!("{name}:")) => {
                AdminError::Failed(format!("{name}: {m}"))
            }
            AdminError::Usage(m) if !m.starts_with(&format!("{name}:")) => {
                AdminError::Usage(format!("{name}: {m}"))
            }
            other => other,
        }
    }
}

impl From<ClientError> for AdminError {
    fn from(error: ClientError) -> Self {
        AdminError::Failed(describe(&error))
    }
}

/// One line: what went wrong, then what to do about it.
pub fn describe(error: &ClientError) -> String {
    match error {
        ClientError::NameServerUnavailable { tried, last_error } => {
            let cause = last_error
                .strip_prefix(&format!("cannot connect to {tried}: "))
                .unwrap_or(last_error);
            format!(
                "cannot reach NameServer {tried} ({cause}): is ringmq-namesrv or `ringmq-broker \
                 standalone` running? pass -n host:port"
            )
        }
        ClientError::Connect { addr, source } => format!(
            "cannot reach broker {addr} ({source}): is the broker running, and is {addr} its \
             address? (`clusterList` shows the registered addresses)"
        ),
        ClientError::ConnectBackoff { addr, .. } => format!(
            "cannot reach broker {addr} (earlier attempts failed): is the broker running? \
             (`clusterList` shows the registered addresses)"
        ),
        ClientError::Timeout { .. } => {
            format!(
                "{error}: the peer is overloaded or is not a RocketMQ endpoint; retry or check the address"
            )
        }
        ClientError::NoRoute { topic, .. } => format!(
            "{error}: create it with `ringmq-broker admin updateTopic -t {topic} -c <cluster>`"
        ),
        other => other.to_string(),
    }
}

/// What a command prints: mqadmin's text, and the same facts as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The table / lines mqadmin prints.
    pub text: String,
    /// The machine-readable form, printed with `--json`.
    pub json: serde_json::Value,
}

impl Report {
    /// A report.
    pub fn new(text: String, json: serde_json::Value) -> Self {
        Report { text, json }
    }

    /// Prints the text or, with `json`, the JSON document (pretty, one per run).
    pub fn print(&self, json: bool) {
        if json {
            match serde_json::to_string_pretty(&self.json) {
                Ok(text) => println!("{text}"),
                // A serde_json::Value always serializes; keep the compact form as a fallback.
                Err(_) => println!("{}", self.json),
            }
        } else {
            print!("{}", self.text);
        }
    }
}

/// Parses mqadmin's boolean option values (`true`/`false`, any case).
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_error_says_what_to_do() {
        let error = ClientError::NameServerUnavailable {
            tried: "127.0.0.1:9876".into(),
            last_error: "cannot connect to 127.0.0.1:9876: Connection refused (os error 111)"
                .into(),
        };
        assert_eq!(
            describe(&error),
            "cannot reach NameServer 127.0.0.1:9876 (Connection refused (os error 111)): is \
             ringmq-namesrv or `ringmq-broker standalone` running? pass -n host:port"
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(AdminError::NoNameServer.exit_status(), 2);
        assert_eq!(AdminError::Usage("x".into()).exit_status(), 2);
        assert_eq!(AdminError::failed("x").exit_status(), 1);
    }

    #[test]
    fn booleans_like_mqadmin() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }
}
