//! `UPDATE_BROKER_CONFIG` (25): changing broker configuration keys at runtime, by their
//! RocketMQ names (`brokerPermission`, `longPollingEnable`, …), as `mqadmin
//! updateBrokerConfig -k KEY -v VALUE` sends them (body: Java properties text, `key=value`
//! lines).
//!
//! Three kinds of keys:
//! - **runtime** keys ([`RUNTIME_KEYS`]) are applied at once on every shard of the process
//!   (the shard that received the request validates the whole set against the full
//!   configuration, applies it, and fans it out as an
//!   [`AdminChange::BrokerConfigUpdated`]), then persisted in the overlay file
//!   `<store.path>/broker-overrides.properties`, which the broker applies over its TOML file at
//!   every start ([`apply_overlay`]), so that a restart keeps them;
//! - **read-only** keys (identity, ports, paths, flush mode, sizes fixed at startup: see
//!   [`read_only_hint`]) are refused with `NO_PERMISSION` and a remark naming the key and the
//!   TOML key to change in the config file instead (RocketMQ answers `NO_PERMISSION` for its
//!   blacklisted keys);
//! - any other key is refused with `SYSTEM_ERROR` naming it and listing the runtime keys
//!   (RocketMQ silently ignores unknown keys; we say so instead).
//!
//! A request is applied whole or not at all. `brokerPermission` also changes what the shards
//! register with the NameServers (topics' permissions masked by it, as RocketMQ's
//! `registerBrokerAll` does) and re-registers them at once; sends to a broker without write
//! permission are refused with `NO_PERMISSION`, pulls from one without read permission too.
//!
//! Runs on the shard thread; the overlay file is written synchronously by the shard that
//! received the request (a small file, rare admin requests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringmq_wire::header::admin::{encode_properties, parse_properties};
use ringmq_wire::{RemotingCommand, ResponseCode};

use crate::config::BrokerConfig;
use crate::server::handler::{HandlerResult, error, success};
use crate::server::state::{AdminChange, ShardState};
use crate::server::store::ShardStore;

/// The overlay file's name, under `store.path`.
pub const OVERLAY_FILE: &str = "broker-overrides.properties";

/// Size of an overlay file beyond which it is refused (it holds a handful of keys).
pub const OVERLAY_BYTES_MAX: u64 = 64 * 1024;

/// Keys changeable at runtime, with the TOML key each one sets.
pub const RUNTIME_KEYS: &[(&str, &str)] = &[
    ("brokerPermission", "broker.permission"),
    ("longPollingEnable", "polling.long_polling"),
    ("shortPollingTimeMills", "polling.short_polling_time_ms"),
    ("enablePropertyFilter", "filter.enable_property_filter"),
    ("transactionTimeOut", "transaction.timeout_ms"),
    ("transactionCheckMax", "transaction.check_max"),
    ("transactionCheckInterval", "transaction.check_interval_ms"),
];

/// Known keys that are fixed at startup, with the TOML key to change (and restart) instead.
const READ_ONLY_KEYS: &[(&str, &str)] = &[
    ("brokerClusterName", "broker.cluster_name"),
    ("brokerName", "broker.broker_name"),
    ("brokerId", "broker.broker_id"),
    ("brokerRole", "(replication is not built yet)"),
    ("namesrvAddr", "broker.namesrv_addrs"),
    ("listenPort", "broker.base_port"),
    ("brokerIP1", "broker.advertised_addr"),
    ("brokerIP2", "broker.advertised_addr"),
    ("registerNameServerPeriod", "broker.register_period_ms"),
    ("storePathRootDir", "store.path"),
    ("storePathCommitLog", "store.path"),
    ("flushDiskType", "store.flush_mode"),
    ("mappedFileSizeCommitLog", "store.segment_bytes"),
    ("syncFlushTimeout", "store.sync_flush_timeout_ms"),
    (
        "flushConsumerOffsetInterval",
        "store.flush_consumer_offset_interval_ms",
    ),
    ("fileReservedTime", "retention.file_reserved_time_hours"),
    ("deleteWhen", "retention.delete_when"),
    (
        "diskMaxUsedSpaceRatio",
        "retention.disk_max_used_space_ratio",
    ),
    ("maxMessageSize", "limits.max_message_bytes"),
    ("messageDelayLevel", "schedule.message_delay_level"),
    ("autoCreateTopicEnable", "topics.auto_create_topic"),
    (
        "autoCreateSubscriptionGroup",
        "topics.auto_create_subscription_group",
    ),
    ("defaultTopicQueueNums", "topics.default_topic_queue_nums"),
];

/// Why a set of keys cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A known key that only changes with a restart.
    #[error(
        "broker config key `{key}` cannot be changed at runtime: set `{toml_key}` in the \
         broker's config file and restart"
    )]
    ReadOnly {
        /// The RocketMQ key.
        key: String,
        /// The TOML key to change instead.
        toml_key: &'static str,
    },
    /// A key ringmq does not know.
    #[error("unknown broker config key `{key}`; keys that can be changed at runtime: {runtime}")]
    Unknown {
        /// The key.
        key: String,
        /// The runtime keys, comma-separated.
        runtime: String,
    },
    /// A value that does not parse or that the configuration refuses.
    #[error("invalid value for broker config key `{key}` ({value:?}): {reason}")]
    Invalid {
        /// The RocketMQ key.
        key: String,
        /// The value given.
        value: String,
        /// Why, and what to use.
        reason: String,
    },
}

impl UpdateError {
    /// The response code RocketMQ-style clients expect for this refusal.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            UpdateError::ReadOnly { .. } => ResponseCode::NoPermission,
            UpdateError::Unknown { .. } | UpdateError::Invalid { .. } => ResponseCode::SystemError,
        }
    }
}

/// The TOML key of a read-only RocketMQ key, if it is one.
pub fn read_only_hint(key: &str) -> Option<&'static str> {
    READ_ONLY_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, toml)| *toml)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, UpdateError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(UpdateError::Invalid {
            key: key.to_owned(),
            value: other.to_owned(),
            reason: "use true or false".into(),
        }),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, UpdateError> {
    value.trim().parse().map_err(|_| UpdateError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: "use a non-negative integer".into(),
    })
}

/// Sets one key on `config` (no cross-key validation: see [`apply_all`]).
fn set_key(config: &mut BrokerConfig, key: &str, value: &str) -> Result<(), UpdateError> {
    match key {
        "brokerPermission" => config.broker.permission = parse_num(key, value)?,
        "longPollingEnable" => config.polling.long_polling = parse_bool(key, value)?,
        "shortPollingTimeMills" => config.polling.short_polling_time_ms = parse_num(key, value)?,
        "enablePropertyFilter" => config.filter.enable_property_filter = parse_bool(key, value)?,
        "transactionTimeOut" => config.transaction.timeout_ms = parse_num(key, value)?,
        "transactionCheckMax" => config.transaction.check_max = parse_num(key, value)?,
        "transactionCheckInterval" => config.transaction.check_interval_ms = parse_num(key, value)?,
        _ => {
            return Err(match read_only_hint(key) {
                Some(toml_key) => UpdateError::ReadOnly {
                    key: key.to_owned(),
                    toml_key,
                },
                None => UpdateError::Unknown {
                    key: key.to_owned(),
                    runtime: RUNTIME_KEYS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            });
        }
    }
    Ok(())
}

/// `config` with every entry applied and the result validated; `config` is not changed on
/// error. The error names the RocketMQ key.
pub fn apply_all(
    config: &BrokerConfig,
    entries: &[(String, String)],
) -> Result<BrokerConfig, UpdateError> {
    let mut next = config.clone();
    for (key, value) in entries {
        set_key(&mut next, key, value)?;
    }
    if let Err(e) = next.validate() {
        // Name the RocketMQ key whose TOML key the validation refused.
        let (key, value) = entries
            .iter()
            .find(|(k, _)| {
                RUNTIME_KEYS
                    .iter()
                    .any(|(rk, toml)| rk == k && e.to_string().contains(&format!("`{toml}`")))
            })
            .or(entries.first())
            .cloned()
            .unwrap_or_default();
        return Err(UpdateError::Invalid {
            key,
            value,
            reason: e.to_string(),
        });
    }
    Ok(next)
}

/// `UPDATE_BROKER_CONFIG`: validate, apply here, fan out to the other shards, persist.
pub fn update_broker_config<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let parsed = parse_properties(&request.body)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    if parsed.is_empty() {
        return Err(error(
            request,
            ResponseCode::SystemError,
            "string2Properties error: no key=value line in the body",
        ));
    }
    let entries: Vec<(String, String)> = parsed.into_iter().collect();
    let next = apply_all(&state.config, &entries)
        .map_err(|e| error(request, e.response_code(), e.to_string()))?;
    let overlay = overlay_path(&state.config);
    if let Err(e) = write_overlay(&overlay, &entries) {
        // Refuse rather than apply a change that a restart would silently undo.
        return Err(error(request, ResponseCode::SystemError, e.to_string()));
    }
    tracing::info!(target: "ringmq::server::broker_config", shard = state.identity.shard,
        ?entries, overlay = %overlay.display(), "broker config updated");
    install(state, next, &entries, now_ms);
    state.record_admin_change(AdminChange::BrokerConfigUpdated(entries));
    Ok(Some(success(request)))
}

/// Applies keys changed on another shard (already validated there).
pub fn apply_from_other_shard<S: ShardStore>(
    state: &mut ShardState<S>,
    entries: &[(String, String)],
    now_ms: u64,
) -> Result<(), String> {
    let next = apply_all(&state.config, entries).map_err(|e| e.to_string())?;
    install(state, next, entries, now_ms);
    Ok(())
}

/// Makes `next` this shard's configuration, with the side effects of the changed keys.
fn install<S: ShardStore>(
    state: &mut ShardState<S>,
    next: BrokerConfig,
    entries: &[(String, String)],
    now_ms: u64,
) {
    let permission_changed = next.broker.permission != state.config.broker.permission;
    state.config = Arc::new(next);
    if permission_changed || entries.iter().any(|(k, _)| k == "brokerPermission") {
        // NameServers only take a registration whose data version moved.
        state.topics.touch(now_ms);
    }
}

/// Where the overlay of a broker with `config` lives.
pub fn overlay_path(config: &BrokerConfig) -> PathBuf {
    config.store.path.join(OVERLAY_FILE)
}

/// Why the overlay file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// Reading or writing the file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file holds something that cannot be applied.
    #[error("{path}: {reason} (fix or delete the line; it was written by updateBrokerConfig)")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
}

fn read_overlay(path: &Path) -> Result<Vec<(String, String)>, OverlayError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OverlayError::Io {
                what: "cannot read",
                path: path.to_owned(),
                source,
            });
        }
    };
    if meta.len() > OVERLAY_BYTES_MAX {
        return Err(OverlayError::Bad {
            path: path.to_owned(),
            reason: format!("larger than {OVERLAY_BYTES_MAX} bytes"),
        });
    }
    let text = std::fs::read(path).map_err(|source| OverlayError::Io {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let parsed = parse_properties(&text).map_err(|e| OverlayError::Bad {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(parsed.into_iter().collect())
}

/// Serialises overlay updates of the process: with `updateBrokerConfig -c`, every shard of a
/// broker receives the same request at once, and each merges it into the one file.
static OVERLAY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Merges `entries` into the overlay file (atomic replace: temporary file, fsync, rename,
/// directory fsync), one writer at a time in the process.
fn write_overlay(path: &Path, entries: &[(String, String)]) -> Result<(), OverlayError> {
    use std::io::Write;
    let _guard = OVERLAY_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut all: std::collections::BTreeMap<String, String> =
        read_overlay(path)?.into_iter().collect();
    for (k, v) in entries {
        all.insert(k.clone(), v.clone());
    }
    let io = |what: &'static str| {
        move |source| OverlayError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("cannot create the directory of"))?;
    let text = format!(
        "# Written by ringmq-broker on UPDATE_BROKER_CONFIG (admin updateBrokerConfig);\n\
         # applied over the TOML config file at every start. RocketMQ key names.\n{}",
        encode_properties(all.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    );
    let tmp = path.with_extension("properties.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io("cannot create"))?;
    file.write_all(text.as_bytes())
        .map_err(io("cannot write"))?;
    file.sync_all().map_err(io("cannot sync"))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io("cannot replace"))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Applies the overlay file next to the data (if any) over `config`; returns the keys
/// applied. Called at startup and by `ringmq-broker check`.
pub fn apply_overlay(config: &mut BrokerConfig) -> Result<Vec<(String, String)>, OverlayError> {
    let path = overlay_path(config);
    let entries = read_overlay(&path)?;
    if entries.is_empty() {
        return Ok(entries);
    }
    *config = apply_all(config, &entries).map_err(|e| OverlayError::Bad {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(entries)
}

#[cfg(test)]
#[path = "broker_config_tests.rs"]
mod tests;
