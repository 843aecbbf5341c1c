//! NameServer configuration: defaults, the TOML file form, and the `key=value` properties
//! form of `GET_NAMESRV_CONFIG` / `UPDATE_NAMESRV_CONFIG`.
//!
//! ```toml
//! listen = "0.0.0.0:9876"
//! kv_config_path = "/var/lib/ringmq/namesrv/kvConfig.json"
//! scan_interval_ms = 5000
//! broker_expiry_ms = 120000
//! order_message_enable = false
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::NameServerError;
use crate::limits;

/// Everything the NameServer can be configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NameServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::NameServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The KV store file (RocketMQ's `kvConfigPath`), rewritten atomically on every change.
    pub kv_config_path: PathBuf,
    /// How often silent brokers are looked for, in milliseconds.
    pub scan_interval_ms: u64,
    /// A broker silent this long (and not announcing its own timeout) is dropped, in ms.
    pub broker_expiry_ms: u64,
    /// Concurrent client connections; further connections are closed on accept.
    pub max_connections: usize,
    /// Requests of one connection processed or awaiting their answer at once.
    pub max_in_flight_per_connection: usize,
    /// Largest frame accepted; a larger length prefix closes the connection.
    pub max_frame_bytes: usize,
    /// A connection that sends nothing for this long is closed (RocketMQ's
    /// `serverChannelMaxIdleTimeSeconds`, 120 s); 0 keeps idle connections forever.
    pub connection_idle_ms: u64,
    /// Add `orderTopicConf` from the KV namespace `ORDER_TOPIC_CONFIG` to routes.
    pub order_message_enable: bool,
    /// When a master registers, drop its queues of topics it no longer reports.
    pub delete_topic_with_broker_registration: bool,
    /// Serve `GET_ALL_TOPIC_LIST_FROM_NAMESERVER`.
    pub enable_all_topic_list: bool,
    /// Serve `GET_TOPICS_BY_CLUSTER`.
    pub enable_topic_list: bool,
}

impl Default for NameServerConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        NameServerConfig {
            listen: limits::DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|e| panic!("DEFAULT_LISTEN is not an address: {e}")),
            kv_config_path: home.join("namesrv").join("kvConfig.json"),
            scan_interval_ms: limits::DEFAULT_SCAN_INTERVAL.as_millis() as u64,
            broker_expiry_ms: limits::DEFAULT_BROKER_EXPIRY.as_millis() as u64,
            max_connections: limits::DEFAULT_CONNECTIONS_MAX,
            max_in_flight_per_connection: limits::DEFAULT_IN_FLIGHT_PER_CONNECTION_MAX,
            max_frame_bytes: ringmq_wire::limits::FRAME_BYTES_MAX,
            connection_idle_ms: limits::DEFAULT_CONNECTION_IDLE.as_millis() as u64,
            order_message_enable: false,
            delete_topic_with_broker_registration: false,
            enable_all_topic_list: true,
            enable_topic_list: true,
        }
    }
}

/// Keys of the properties form, in the order `GET_NAMESRV_CONFIG` lists them.
const KEYS: &[&str] = &[
    "listen",
    "kvConfigPath",
    "scanIntervalMs",
    "brokerExpiryMs",
    "maxConnections",
    "maxInFlightPerConnection",
    "maxFrameBytes",
    "connectionIdleMs",
    "orderMessageEnable",
    "deleteTopicWithBrokerRegistration",
    "enableAllTopicList",
    "enableTopicList",
];

/// Keys that only take effect at start and cannot be changed by `UPDATE_NAMESRV_CONFIG`
/// (RocketMQ refuses `kvConfigPath` and `configStorePath` the same way).
const STARTUP_ONLY_KEYS: &[&str] = &[
    "listen",
    "kvConfigPath",
    "maxConnections",
    "maxInFlightPerConnection",
    "maxFrameBytes",
    "connectionIdleMs",
];

/// Why an `UPDATE_NAMESRV_CONFIG` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigUpdateError {
    /// A key that only takes effect at start.
    #[error("{0} can only be set at start (command line or config file)")]
    StartupOnly(String),
    /// A key the NameServer does not have.
    #[error("unknown NameServer config key {0:?}; known keys: {known}", known = KEYS.join(", "))]
    Unknown(String),
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

impl NameServerConfig {
    /// Loads a TOML config file; absent keys keep their defaults, unknown keys are errors.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, NameServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            NameServerError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| NameServerError::Config(format!("config file {}: {e}", path.display())))
    }

    /// Checks ranges; called by [`crate::NameServer::start`].
    pub fn validate(&self) -> Result<(), NameServerError> {
        if self.scan_interval() < limits::SCAN_INTERVAL_MIN {
            return Err(NameServerError::Config(format!(
                "scan_interval_ms must be at least {} ms",
                limits::SCAN_INTERVAL_MIN.as_millis()
            )));
        }
        if self.broker_expiry_ms == 0 {
            return Err(NameServerError::Config(
                "broker_expiry_ms must be positive".into(),
            ));
        }
        if self.max_connections == 0 || self.max_in_flight_per_connection == 0 {
            return Err(NameServerError::Config(
                "max_connections and max_in_flight_per_connection must be positive".into(),
            ));
        }
        if self.max_frame_bytes < 1024
            || self.max_frame_bytes > ringmq_wire::limits::FRAME_BYTES_MAX
        {
            return Err(NameServerError::Config(format!(
                "max_frame_bytes must be between 1024 and {}",
                ringmq_wire::limits::FRAME_BYTES_MAX
            )));
        }
        Ok(())
    }

    /// The scan interval.
    pub fn scan_interval(&self) -> Duration {
        Duration::from_millis(self.scan_interval_ms)
    }

    /// The default broker expiry.
    pub fn broker_expiry(&self) -> Duration {
        Duration::from_millis(self.broker_expiry_ms)
    }

    /// The properties form (`key=value` lines), the body of `GET_NAMESRV_CONFIG`.
    pub fn to_properties(&self) -> String {
        let mut out = String::new();
        for key in KEYS {
            out.push_str(key);
            out.push('=');
            out.push_str(&self.property(key).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    fn property(&self, key: &str) -> Option<String> {
        Some(match key {
            "listen" => self.listen.to_string(),
            "kvConfigPath" => self.kv_config_path.display().to_string(),
            "scanIntervalMs" => self.scan_interval_ms.to_string(),
            "brokerExpiryMs" => self.broker_expiry_ms.to_string(),
            "maxConnections" => self.max_connections.to_string(),
            "maxInFlightPerConnection" => self.max_in_flight_per_connection.to_string(),
            "maxFrameBytes" => self.max_frame_bytes.to_string(),
            "connectionIdleMs" => self.connection_idle_ms.to_string(),
            "orderMessageEnable" => self.order_message_enable.to_string(),
            "deleteTopicWithBrokerRegistration" => {
                self.delete_topic_with_broker_registration.to_string()
            }
            "enableAllTopicList" => self.enable_all_topic_list.to_string(),
            "enableTopicList" => self.enable_topic_list.to_string(),
            _ => return None,
        })
    }

    /// Applies the runtime-changeable keys of an `UPDATE_NAMESRV_CONFIG` body (Java
    /// `Properties` text: `key=value` or `key:value` lines, `#`/`!` comments). All or nothing.
    pub fn apply_properties(&mut self, text: &str) -> Result<Vec<String>, ConfigUpdateError> {
        let mut updated = self.clone();
        let mut keys = Vec::new();
        for (key, value) in parse_properties(text) {
            if STARTUP_ONLY_KEYS.contains(&key) {
                return Err(ConfigUpdateError::StartupOnly(key.to_owned()));
            }
            let invalid = |reason| ConfigUpdateError::Invalid {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let millis = || -> Result<u64, ConfigUpdateError> {
                value.parse().map_err(|_| invalid("not a whole number"))
            };
            let flag = || ringmq_wire::json::parse_bool(value).ok_or(invalid("not true/false"));
            match key {
                "scanIntervalMs" | "scanNotActiveBrokerInterval" => {
                    let ms = millis()?;
                    if Duration::from_millis(ms) < limits::SCAN_INTERVAL_MIN {
                        return Err(invalid("below the minimum scan interval"));
                    }
                    updated.scan_interval_ms = ms;
                }
                "brokerExpiryMs" => {
                    let ms = millis()?;
                    if ms == 0 {
                        return Err(invalid("must be positive"));
                    }
                    updated.broker_expiry_ms = ms;
                }
                "orderMessageEnable" => updated.order_message_enable = flag()?,
                "deleteTopicWithBrokerRegistration" => {
                    updated.delete_topic_with_broker_registration = flag()?;
                }
                "enableAllTopicList" => updated.enable_all_topic_list = flag()?,
                "enableTopicList" => updated.enable_topic_list = flag()?,
                other => return Err(ConfigUpdateError::Unknown(other.to_owned())),
            }
            keys.push(key.to_owned());
        }
        *self = updated;
        Ok(keys)
    }
}

/// Parses Java `Properties` text, simply: one `key=value` or `key:value` per line, blank
/// lines and `#`/`!` comments skipped, whitespace around keys and values trimmed.
fn parse_properties(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        let split = line.find(['=', ':']).unwrap_or(line.len());
        let (key, rest) = line.split_at(split);
        let value = rest.get(1..).unwrap_or("");
        Some((key.trim(), value.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let config: NameServerConfig =
            toml::from_str("listen = \"127.0.0.1:0\"\nbroker_expiry_ms = 1500\n").unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.broker_expiry_ms, 1500);
        assert_eq!(config.scan_interval_ms, 5000);
        assert!(toml::from_str::<NameServerConfig>("bogus = 1").is_err());
        assert!(config.validate().is_ok());
        let bad = NameServerConfig {
            scan_interval_ms: 0,
            ..config
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn properties_round_trip_and_update_rules() {
        let mut config = NameServerConfig::default();
        let text = config.to_properties();
        assert!(text.contains("orderMessageEnable=false\n"));
        assert!(text.contains("brokerExpiryMs=120000\n"));

        let keys = config
            .apply_properties("# comment\norderMessageEnable = true\nbrokerExpiryMs:30000\n")
            .unwrap();
        assert_eq!(keys, vec!["orderMessageEnable", "brokerExpiryMs"]);
        assert!(config.order_message_enable);
        assert_eq!(config.broker_expiry_ms, 30_000);

        let before = config.clone();
        assert_eq!(
            config.apply_properties("orderMessageEnable=false\nkvConfigPath=/tmp/x"),
            Err(ConfigUpdateError::StartupOnly("kvConfigPath".into()))
        );
        assert!(matches!(
            config.apply_properties("nope=1"),
            Err(ConfigUpdateError::Unknown(_))
        ));
        assert!(matches!(
            config.apply_properties("scanIntervalMs=abc"),
            Err(ConfigUpdateError::Invalid { .. })
        ));
        assert!(matches!(
            config.apply_properties("brokerExpiryMs=0"),
            Err(ConfigUpdateError::Invalid { .. })
        ));
        assert_eq!(config, before, "a refused update changes nothing");
    }
}
