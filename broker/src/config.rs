//! The broker's configuration (`broker.toml`): identity, NameServers, ports, shards, store,
//! flush mode, retention and limits.
//!
//! Loaded once at startup on the main thread, validated, then shared read-only by every
//! shard (it is `Clone` and `Send`). Every key, its default and its meaning is documented in
//! `docs/configuration.md`; the names follow RocketMQ's `BrokerConfig`/`MessageStoreConfig`
//! fields in snake case, with units last (`segment_bytes`, `register_period_ms`).
//!
//! ```
//! use ringmq_broker::config::BrokerConfig;
//!
//! let config = BrokerConfig::from_toml_str(
//!     r#"
//!     [broker]
//!     broker_name = "broker-a"
//!     namesrv_addrs = ["127.0.0.1:9876"]
//!     advertised_addr = "10.0.0.5"
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(config.broker.cluster_name, "DefaultCluster");
//! assert_eq!(config.broker.base_port, 10911);
//! assert!(!config.topics.auto_create_topic);
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, …).
    #[error("invalid config{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key has a value that parses but cannot be used.
    #[error("invalid value for `{key}` ({value}): {fix}")]
    Invalid {
        /// The key, as `section.key`.
        key: &'static str,
        /// The offending value.
        value: String,
        /// What to do instead.
        fix: String,
    },
}

/// How a send is acknowledged with respect to durability (see `ARCHITECTURE.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    /// Acknowledge once the write holding the record has completed (RocketMQ ASYNC_FLUSH).
    #[default]
    Async,
    /// Acknowledge once the write and an `fdatasync` have completed (SYNC_FLUSH).
    Sync,
    /// Acknowledge on append, before any write: for benchmarks and throwaway data only.
    Memory,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Identity, network and NameServer registration.
    pub broker: BrokerSection,
    /// Where and how data is stored.
    pub store: StoreSection,
    /// When old CommitLog segments are deleted.
    pub retention: RetentionSection,
    /// Sizes and counts that bound memory and work.
    pub limits: LimitsSection,
    /// Topic and subscription-group creation.
    pub topics: TopicsSection,
    /// Pull long polling.
    pub polling: PollingSection,
    /// Delayed messages.
    pub schedule: ScheduleSection,
    /// Transactional messages: the check-back of undecided half messages.
    pub transaction: TransactionSection,
    /// Message filtering (SQL92).
    pub filter: FilterSection,
    /// The shard runtime's I/O driver.
    pub runtime: RuntimeSection,
}

/// `[broker]`: identity, network, shards, registration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSection {
    /// Cluster the broker registers under (`brokerClusterName`).
    pub cluster_name: String,
    /// Replica-group name (`brokerName`); shard i registers as `<broker_name>-s<i>`.
    pub broker_name: String,
    /// 0 = master, > 0 = slave (`brokerId`).
    pub broker_id: u64,
    /// NameServer addresses, `host:port` each (`namesrvAddr`).
    pub namesrv_addrs: Vec<String>,
    /// Address the listeners bind to.
    pub listen_addr: IpAddr,
    /// Address published to the NameServers (`brokerIP1`); defaults to `listen_addr`, which
    /// then must not be a wildcard.
    pub advertised_addr: Option<IpAddr>,
    /// Port of shard 0 (`listenPort`). Shard i listens on `base_port + 4·i`, its VIP port is
    /// 2 below and its HA port 1 above. 0 lets the OS pick every port (tests only).
    pub base_port: u16,
    /// Number of shards; defaults to the number of CPUs in the process's affinity mask.
    pub shards: Option<usize>,
    /// Broker permission (`brokerPermission`): 2 write, 4 read, 6 both.
    pub permission: u32,
    /// Period of the NameServer registration (`registerNameServerPeriod`), 10 000–60 000 ms.
    pub register_period_ms: u64,
    /// Timeout of one registration request (`registerBrokerTimeoutMills`).
    pub register_timeout_ms: u64,
}

impl Default for BrokerSection {
    fn default() -> Self {
        BrokerSection {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            namesrv_addrs: Vec::new(),
            listen_addr: IpAddr::from([0, 0, 0, 0]),
            advertised_addr: None,
            base_port: 10911,
            shards: None,
            permission: 6,
            register_period_ms: 30_000,
            register_timeout_ms: 6_000,
        }
    }
}

/// `[store]`: data directory, flush mode, segment size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Root of the data directory; shard i keeps its files under `<path>/shard-<i>/`.
    pub path: PathBuf,
    /// When a send is acknowledged.
    pub flush_mode: FlushMode,
    /// CommitLog segment size (`mappedFileSizeCommitLog`), a multiple of 4 KiB.
    pub segment_bytes: u64,
    /// How long a `sync` send may wait for its flush before `FLUSH_DISK_TIMEOUT`.
    pub sync_flush_timeout_ms: u64,
    /// Persist consumer offsets every this many ms (`flushConsumerOffsetInterval`).
    pub flush_consumer_offset_interval_ms: u64,
    /// Most recent CommitLog bytes each shard keeps in memory for consumers following the
    /// tail; older records are sent to consumers with `splice` from the segment files.
    /// 0 disables the cache (every pull of written data is spliced).
    pub tail_cache_bytes: usize,
    /// Pull bodies older than the tail cache are spliced from the segment files (`true`, the
    /// default) or read and copied on the shard thread (`false`). The splice path (large
    /// resident spans spliced, small ones copied without blocking, spans not in the page
    /// cache read on the ring) measured level with or below the copy path's CPU per message
    /// at the same drain rate on a quiet box; see docs/benchmarks.md, cold backlog.
    pub splice_pulls: bool,
    /// Memory each shard gives to ConsumeQueue entries (20 B per message, all queues
    /// together); older entries are read back from the queue files when a consumer or a
    /// time lookup needs them.
    pub consume_queue_cache_bytes: usize,
}

/// Largest `store.consume_queue_cache_bytes`: held in memory per shard, so a typo must not
/// let it pass the machine's memory.
pub const CONSUME_QUEUE_CACHE_BYTES_MAX: usize = 16 << 30;

/// Largest `store.tail_cache_bytes`: the cache is allocated as records arrive, per shard, so
/// a typo (an extra digit) must not let it grow past the machine's memory.
pub const TAIL_CACHE_BYTES_MAX: usize = 16 << 30;

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: PathBuf::from("./data"),
            flush_mode: FlushMode::Async,
            segment_bytes: 1 << 30,
            sync_flush_timeout_ms: 5_000,
            flush_consumer_offset_interval_ms: 5_000,
            tail_cache_bytes: 64 << 20,
            splice_pulls: true,
            consume_queue_cache_bytes: crate::store::config::CONSUME_QUEUE_CACHE_BYTES_DEFAULT,
        }
    }
}

/// `[retention]`: when CommitLog segments are deleted (RocketMQ's cleaner settings).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Segments older than this are deletable (`fileReservedTime`).
    pub file_reserved_time_hours: u32,
    /// Hours of the day when time-based deletion runs, `;`-separated (`deleteWhen`).
    pub delete_when: String,
    /// Disk usage (%) above which deletion runs at any hour (`diskMaxUsedSpaceRatio`).
    pub disk_max_used_space_ratio: u8,
    /// Disk usage (%) above which even unexpired segments are deleted
    /// (`diskSpaceCleanForciblyRatio`).
    pub disk_space_clean_forcibly_ratio: u8,
    /// Disk usage (%) above which writes are refused (`diskSpaceWarningLevelRatio`).
    pub disk_space_warning_level_ratio: u8,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            file_reserved_time_hours: 72,
            delete_when: "04".into(),
            disk_max_used_space_ratio: 75,
            disk_space_clean_forcibly_ratio: 85,
            disk_space_warning_level_ratio: 90,
        }
    }
}

impl RetentionSection {
    /// The hours of `delete_when`, parsed (validation guarantees they parse).
    pub fn delete_hours(&self) -> Vec<u8> {
        self.delete_when
            .split(';')
            .filter_map(|h| h.trim().parse().ok())
            .collect()
    }
}

/// `[limits]`: every bound of the server, so that memory is sized at startup.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest message body accepted (`maxMessageSize`).
    pub max_message_bytes: usize,
    /// Largest frame accepted from a peer; larger frames close the connection.
    pub max_frame_bytes: usize,
    /// Connections per shard; more are accepted and closed at once.
    pub max_connections: usize,
    /// Requests of one connection being processed at the same time; the connection is not
    /// read further until one completes.
    pub max_in_flight_requests_per_connection: usize,
    /// Pulls parked in long polling per shard; past it a pull is answered at once.
    pub max_pending_pulls: usize,
    /// Messages returned by one pull at most (`maxTransferCountOnMessageInMemory`).
    pub max_pull_messages: usize,
    /// Bytes returned by one pull at most (`maxTransferBytesOnMessageInMemory`).
    pub max_pull_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_bytes: ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX,
            max_frame_bytes: ringmq_wire::limits::FRAME_BYTES_MAX,
            max_connections: 10_000,
            max_in_flight_requests_per_connection: 256,
            max_pending_pulls: 100_000,
            max_pull_messages: 32,
            max_pull_bytes: 256 * 1024,
        }
    }
}

/// `[topics]`: topic and group creation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsSection {
    /// Create unknown topics on first send from the `TBW102` template
    /// (`autoCreateTopicEnable`). Default false from a file, true in `standalone`.
    pub auto_create_topic: bool,
    /// Create unknown subscription groups on first use (`autoCreateSubscriptionGroup`).
    pub auto_create_subscription_group: bool,
    /// Queues of an auto-created topic and of `TBW102` (`defaultTopicQueueNums`).
    pub default_topic_queue_nums: u32,
}

impl Default for TopicsSection {
    fn default() -> Self {
        TopicsSection {
            auto_create_topic: false,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
        }
    }
}

/// `[polling]`: how pulls with nothing to return wait.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollingSection {
    /// Park pulls until a message arrives or their suspend timeout (`longPollingEnable`).
    pub long_polling: bool,
    /// Hold time of a pull when long polling is off (`shortPollingTimeMills`).
    pub short_polling_time_ms: u64,
}

impl Default for PollingSection {
    fn default() -> Self {
        PollingSection {
            long_polling: true,
            short_polling_time_ms: 1_000,
        }
    }
}

/// `[schedule]`: delayed messages (delay levels, retries of failed consumption).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSection {
    /// The delay of each level, space-separated, with unit `s`, `m`, `h` or `d`
    /// (RocketMQ's `messageDelayLevel`): level n waits the n-th delay. Consumer retries use
    /// level 3 + reconsume times.
    pub message_delay_level: String,
}

impl Default for ScheduleSection {
    fn default() -> Self {
        ScheduleSection {
            message_delay_level: crate::features::schedule::DEFAULT_DELAY_LEVELS.to_owned(),
        }
    }
}

/// `[filter]`: message filtering beyond tags.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSection {
    /// Serve SQL92 subscriptions (`enablePropertyFilter`; false in RocketMQ, true here).
    pub enable_property_filter: bool,
}

impl Default for FilterSection {
    fn default() -> Self {
        FilterSection {
            enable_property_filter: true,
        }
    }
}

/// `[runtime]`: the shard runtime's I/O driver.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// `auto` (io_uring when available, else the slower fallback driver with one warning),
    /// `io_uring` (refuse to start without it) or `fallback` (epoll + blocking file I/O on
    /// helper threads). See docs/runtime.md.
    pub driver: crate::runtime::DriverChoice,
}

/// `[transaction]`: when undecided half messages are checked back with their producer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionSection {
    /// A half message younger than this (from its born time) is not checked
    /// (`transactionTimeOut`).
    pub timeout_ms: u64,
    /// Checks before a half message is given up and moved to `TRANS_CHECK_MAX_TIME_TOPIC`
    /// (`transactionCheckMax`).
    pub check_max: u32,
    /// Period of the check-back scan (`transactionCheckInterval`).
    pub check_interval_ms: u64,
}

impl Default for TransactionSection {
    fn default() -> Self {
        TransactionSection {
            timeout_ms: 6_000,
            check_max: 15,
            check_interval_ms: 30_000,
        }
    }
}

impl ScheduleSection {
    /// The delay of each level in ms (level n at index n − 1); validated at load.
    pub fn delay_levels_ms(&self) -> Vec<u64> {
        crate::features::schedule::parse_delay_levels(&self.message_delay_level)
            .unwrap_or_else(|_| crate::features::schedule::default_delay_levels_ms())
    }
}

/// Largest number of shards accepted (ports per broker stay well inside 65 535).
pub const SHARDS_MAX: usize = 256;

/// Ports each shard takes: `base + 4·i` (client), `−2` (VIP), `+1` (HA).
pub const PORTS_PER_SHARD: u16 = 4;

impl BrokerConfig {
    /// The `standalone` preset: loopback, an embedded NameServer on 9876, data in `./data`,
    /// topics auto-created.
    pub fn standalone() -> Self {
        let mut config = BrokerConfig::default();
        config.broker.listen_addr = IpAddr::from([127, 0, 0, 1]);
        config.broker.namesrv_addrs = vec!["127.0.0.1:9876".into()];
        config.store.path = PathBuf::from("./data");
        config.topics.auto_create_topic = true;
        config
    }

    /// Parses and validates a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, None)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let config: BrokerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the error names the key and says how to fix it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_broker()?;
        self.validate_store()?;
        self.validate_retention()?;
        self.validate_limits()?;
        let queues = self.topics.default_topic_queue_nums;
        if queues == 0 || queues > 1024 {
            return invalid(
                "topics.default_topic_queue_nums",
                queues,
                "use 1 to 1024 queues",
            );
        }
        if let Err(error) =
            crate::features::schedule::parse_delay_levels(&self.schedule.message_delay_level)
        {
            return invalid(
                "schedule.message_delay_level",
                format!("{:?}", self.schedule.message_delay_level),
                error.to_string(),
            );
        }
        self.validate_transaction()?;
        if self.polling.short_polling_time_ms > 60_000 {
            return invalid(
                "polling.short_polling_time_ms",
                self.polling.short_polling_time_ms,
                "use at most 60000 ms",
            );
        }
        Ok(())
    }

    fn validate_broker(&self) -> Result<(), ConfigError> {
        let b = &self.broker;
        for (key, value) in [
            ("broker.cluster_name", &b.cluster_name),
            ("broker.broker_name", &b.broker_name),
        ] {
            let ok = !value.is_empty()
                && value.len() <= 64
                && value
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
            if !ok {
                return invalid(
                    key,
                    format!("{value:?}"),
                    "use 1-64 characters among letters, digits, '-', '_' and '.'",
                );
            }
        }
        if b.broker_id != 0 {
            return invalid(
                "broker.broker_id",
                b.broker_id,
                "only masters (broker_id = 0) are supported; replication is not built yet",
            );
        }
        for addr in &b.namesrv_addrs {
            if !valid_host_port(addr) {
                return invalid(
                    "broker.namesrv_addrs",
                    format!("{addr:?}"),
                    "write each NameServer as \"host:port\", e.g. \"10.0.0.1:9876\"",
                );
            }
        }
        if b.advertised_addr.is_none() && b.listen_addr.is_unspecified() && b.base_port != 0 {
            return invalid(
                "broker.advertised_addr",
                "unset",
                format!(
                    "listen_addr is {} (all interfaces), so set advertised_addr to the \
                     address clients use to reach this broker",
                    b.listen_addr
                ),
            );
        }
        if !matches!(b.permission, 2 | 4 | 6) {
            return invalid(
                "broker.permission",
                b.permission,
                "use 2 (write), 4 (read) or 6 (read and write)",
            );
        }
        if !(10_000..=60_000).contains(&b.register_period_ms) {
            return invalid(
                "broker.register_period_ms",
                b.register_period_ms,
                "use 10000 to 60000 ms (NameServers drop brokers after 120 s)",
            );
        }
        if b.register_timeout_ms == 0 || b.register_timeout_ms > b.register_period_ms {
            return invalid(
                "broker.register_timeout_ms",
                b.register_timeout_ms,
                "use 1 ms up to register_period_ms",
            );
        }
        if let Some(shards) = b.shards
            && !(1..=SHARDS_MAX).contains(&shards)
        {
            return invalid("broker.shards", shards, format!("use 1 to {SHARDS_MAX}"));
        }
        if b.base_port != 0 {
            let shards = b.shards.unwrap_or(1);
            let last =
                u32::from(b.base_port) + u32::from(PORTS_PER_SHARD) * (shards as u32 - 1) + 1;
            if b.base_port < 1026 || last > u32::from(u16::MAX) {
                return invalid(
                    "broker.base_port",
                    b.base_port,
                    format!(
                        "shards take ports base-2 .. base+4*(shards-1)+1; with {shards} shard(s) \
                         use a base port from 1026 to {}",
                        u32::from(u16::MAX) - u32::from(PORTS_PER_SHARD) * (shards as u32 - 1) - 1
                    ),
                );
            }
        }
        Ok(())
    }

    fn validate_transaction(&self) -> Result<(), ConfigError> {
        let t = &self.transaction;
        if !(100..=86_400_000).contains(&t.check_interval_ms) {
            return invalid(
                "transaction.check_interval_ms",
                t.check_interval_ms,
                "use 100 ms to 86400000 ms (one day)",
            );
        }
        if t.timeout_ms > 86_400_000 {
            return invalid(
                "transaction.timeout_ms",
                t.timeout_ms,
                "use at most 86400000 ms (one day)",
            );
        }
        if !(1..=1_000).contains(&t.check_max) {
            return invalid("transaction.check_max", t.check_max, "use 1 to 1000 checks");
        }
        Ok(())
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        let s = &self.store;
        if s.path.as_os_str().is_empty() {
            return invalid(
                "store.path",
                "\"\"",
                "set the data directory, e.g. \"./data\"",
            );
        }
        if s.segment_bytes < (1 << 20)
            || s.segment_bytes > (1 << 34)
            || !s.segment_bytes.is_multiple_of(4096)
        {
            return invalid(
                "store.segment_bytes",
                s.segment_bytes,
                "use a multiple of 4096 from 1 MiB (1048576) to 16 GiB",
            );
        }
        if (s.segment_bytes as usize) < self.limits.max_message_bytes * 2 {
            return invalid(
                "store.segment_bytes",
                s.segment_bytes,
                "a segment must hold at least two records of limits.max_message_bytes",
            );
        }
        if s.sync_flush_timeout_ms == 0 {
            return invalid("store.sync_flush_timeout_ms", 0, "use at least 1 ms");
        }
        if s.flush_consumer_offset_interval_ms < 100 {
            return invalid(
                "store.flush_consumer_offset_interval_ms",
                s.flush_consumer_offset_interval_ms,
                "use at least 100 ms",
            );
        }
        if s.tail_cache_bytes > TAIL_CACHE_BYTES_MAX {
            return invalid(
                "store.tail_cache_bytes",
                s.tail_cache_bytes,
                "use at most 16 GiB per shard (it is held in memory)",
            );
        }
        if s.consume_queue_cache_bytes > CONSUME_QUEUE_CACHE_BYTES_MAX {
            return invalid(
                "store.consume_queue_cache_bytes",
                s.consume_queue_cache_bytes,
                "use at most 16 GiB per shard (it is held in memory)",
            );
        }
        Ok(())
    }

    fn validate_retention(&self) -> Result<(), ConfigError> {
        let r = &self.retention;
        if r.file_reserved_time_hours == 0 {
            return invalid(
                "retention.file_reserved_time_hours",
                0,
                "keep segments at least 1 hour",
            );
        }
        let hours_ok = !r.delete_when.trim().is_empty()
            && r.delete_when
                .split(';')
                .all(|h| h.trim().parse::<u8>().is_ok_and(|h| h < 24));
        if !hours_ok {
            return invalid(
                "retention.delete_when",
                format!("{:?}", r.delete_when),
                "list hours 00-23 separated by ';', e.g. \"04\" or \"04;16\"",
            );
        }
        for (key, value) in [
            (
                "retention.disk_max_used_space_ratio",
                r.disk_max_used_space_ratio,
            ),
            (
                "retention.disk_space_clean_forcibly_ratio",
                r.disk_space_clean_forcibly_ratio,
            ),
            (
                "retention.disk_space_warning_level_ratio",
                r.disk_space_warning_level_ratio,
            ),
        ] {
            if !(10..=95).contains(&value) {
                return invalid(key, value, "use a percentage from 10 to 95");
            }
        }
        if !(r.disk_max_used_space_ratio <= r.disk_space_clean_forcibly_ratio
            && r.disk_space_clean_forcibly_ratio <= r.disk_space_warning_level_ratio)
        {
            return invalid(
                "retention.disk_space_clean_forcibly_ratio",
                r.disk_space_clean_forcibly_ratio,
                "keep disk_max_used_space_ratio <= disk_space_clean_forcibly_ratio <= \
                 disk_space_warning_level_ratio",
            );
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let frame_max = ringmq_wire::limits::FRAME_BYTES_MAX;
        if l.max_message_bytes == 0
            || l.max_message_bytes > ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX
        {
            return invalid(
                "limits.max_message_bytes",
                l.max_message_bytes,
                format!(
                    "use 1 to {} bytes",
                    ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX
                ),
            );
        }
        if l.max_frame_bytes > frame_max || l.max_frame_bytes < l.max_message_bytes + 64 * 1024 {
            return invalid(
                "limits.max_frame_bytes",
                l.max_frame_bytes,
                format!(
                    "use from max_message_bytes + 65536 ({}) up to {frame_max}",
                    l.max_message_bytes + 64 * 1024
                ),
            );
        }
        for (key, value, max) in [
            ("limits.max_connections", l.max_connections, 1_000_000),
            (
                "limits.max_in_flight_requests_per_connection",
                l.max_in_flight_requests_per_connection,
                65_536,
            ),
            ("limits.max_pending_pulls", l.max_pending_pulls, 10_000_000),
            ("limits.max_pull_messages", l.max_pull_messages, 1_024),
        ] {
            if value == 0 || value > max {
                return invalid(key, value, format!("use 1 to {max}"));
            }
        }
        if l.max_pull_bytes < 1024 || l.max_pull_bytes > frame_max / 2 {
            return invalid(
                "limits.max_pull_bytes",
                l.max_pull_bytes,
                format!("use 1024 to {} bytes", frame_max / 2),
            );
        }
        Ok(())
    }

    /// The number of shards to run: `broker.shards` if set, else the CPUs this process may
    /// run on. More shards than allowed CPUs is an error: shards are pinned one per core.
    pub fn resolved_shards(&self) -> Result<usize, ConfigError> {
        let allowed = allowed_cpus();
        match self.broker.shards {
            None => Ok(allowed.max(1)),
            Some(n) if n <= allowed.max(1) => Ok(n),
            Some(n) => invalid(
                "broker.shards",
                n,
                format!(
                    "this process may run on {allowed} CPU(s); use at most {allowed} shards \
                     or widen the CPU affinity (taskset/cgroup)"
                ),
            ),
        }
    }

    /// The client port of shard `shard` (0 when the OS picks ports).
    pub fn shard_port(&self, shard: usize) -> u16 {
        port_at(self.broker.base_port, shard, 0)
    }

    /// The VIP port of shard `shard` (client port − 2; 0 when the OS picks ports).
    pub fn shard_vip_port(&self, shard: usize) -> u16 {
        port_at(self.broker.base_port, shard, -2)
    }

    /// The broker name shard `shard` registers under: `<broker_name>-s<shard>`.
    pub fn shard_broker_name(&self, shard: usize) -> String {
        format!("{}-s{shard}", self.broker.broker_name)
    }

    /// The address published for this broker (`advertised_addr`, else `listen_addr`).
    pub fn advertised_ip(&self) -> IpAddr {
        self.broker
            .advertised_addr
            .unwrap_or(self.broker.listen_addr)
    }

    /// The data directory of shard `shard`: `<store.path>/shard-<shard>`.
    pub fn shard_store_path(&self, shard: usize) -> PathBuf {
        self.store.path.join(format!("shard-{shard}"))
    }
}

fn port_at(base: u16, shard: usize, delta: i32) -> u16 {
    if base == 0 {
        return 0;
    }
    let port = i64::from(base) + i64::from(PORTS_PER_SHARD) * shard as i64 + i64::from(delta);
    // Validation bounds every shard's ports inside 1024..=65535.
    u16::try_from(port).unwrap_or(0)
}

fn invalid<T>(
    key: &'static str,
    value: impl ToString,
    fix: impl Into<String>,
) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key,
        value: value.to_string(),
        fix: fix.into(),
    })
}

fn valid_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

/// CPUs in this process's affinity mask (at least 1).
pub fn allowed_cpus() -> usize {
    // SAFETY: `set` is a plain bitmask owned by this frame; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let count = libc::CPU_COUNT(&set);
            if count > 0 {
                return count as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_key(text: &str) -> &'static str {
        match BrokerConfig::from_toml_str(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_rocketmq() {
        let config = BrokerConfig::from_toml_str("[broker]\nadvertised_addr = \"10.0.0.1\"\n")
            .expect("defaults are valid");
        assert_eq!(config.broker.cluster_name, "DefaultCluster");
        assert_eq!(config.broker.base_port, 10911);
        assert_eq!(config.broker.register_period_ms, 30_000);
        assert_eq!(config.store.flush_mode, FlushMode::Async);
        assert_eq!(config.store.segment_bytes, 1 << 30);
        assert_eq!(config.retention.file_reserved_time_hours, 72);
        assert_eq!(config.retention.delete_hours(), vec![4]);
        assert_eq!(
            (
                config.retention.disk_max_used_space_ratio,
                config.retention.disk_space_clean_forcibly_ratio,
                config.retention.disk_space_warning_level_ratio
            ),
            (75, 85, 90)
        );
        assert_eq!(config.limits.max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(config.topics.default_topic_queue_nums, 8);
        assert!(!config.topics.auto_create_topic);
        assert!(config.polling.long_polling);
        assert_eq!(
            (
                config.transaction.timeout_ms,
                config.transaction.check_max,
                config.transaction.check_interval_ms
            ),
            (6_000, 15, 30_000)
        );
    }

    #[test]
    fn transaction_section_is_read_and_checked() {
        let config = BrokerConfig::from_toml_str(
            "[broker]\nadvertised_addr = \"10.0.0.1\"\n[transaction]\ntimeout_ms = 500\n\
             check_max = 3\ncheck_interval_ms = 200\n",
        )
        .expect("valid transaction section");
        assert_eq!(config.transaction.timeout_ms, 500);
        assert_eq!(config.transaction.check_max, 3);
        assert_eq!(config.transaction.check_interval_ms, 200);
        let base = "[broker]\nadvertised_addr = \"10.0.0.1\"\n[transaction]\n";
        assert_eq!(
            err_key(&format!("{base}check_interval_ms = 10\n")),
            "transaction.check_interval_ms"
        );
        assert_eq!(
            err_key(&format!("{base}check_max = 0\n")),
            "transaction.check_max"
        );
    }

    #[test]
    fn runtime_driver_is_read_and_unknown_drivers_are_refused() {
        use crate::runtime::DriverChoice;
        let base = "[broker]\nadvertised_addr = \"10.0.0.1\"\n";
        let config = BrokerConfig::from_toml_str(base).expect("no [runtime]");
        assert_eq!(config.runtime.driver, DriverChoice::Auto);
        for (text, driver) in [
            ("auto", DriverChoice::Auto),
            ("io_uring", DriverChoice::IoUring),
            ("fallback", DriverChoice::Fallback),
        ] {
            let config =
                BrokerConfig::from_toml_str(&format!("{base}[runtime]\ndriver = \"{text}\"\n"))
                    .expect("valid driver");
            assert_eq!(config.runtime.driver, driver);
        }
        let err = BrokerConfig::from_toml_str(&format!("{base}[runtime]\ndriver = \"kqueue\"\n"))
            .expect_err("unknown driver");
        assert!(err.to_string().contains("kqueue"), "{err}");
    }

    #[test]
    fn standalone_preset_is_valid_and_auto_creates_topics() {
        let config = BrokerConfig::standalone();
        config.validate().expect("standalone preset validates");
        assert!(config.topics.auto_create_topic);
        assert_eq!(config.broker.namesrv_addrs, vec!["127.0.0.1:9876"]);
        assert_eq!(config.advertised_ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(config.store.path, PathBuf::from("./data"));
    }

    #[test]
    fn shard_ports_step_by_four_with_vip_two_below() {
        let config = BrokerConfig::standalone();
        assert_eq!(config.shard_port(0), 10911);
        assert_eq!(config.shard_vip_port(0), 10909);
        assert_eq!(config.shard_port(2), 10919);
        assert_eq!(config.shard_vip_port(2), 10917);
        assert_eq!(config.shard_broker_name(1), "broker-a-s1");
        assert_eq!(
            config.shard_store_path(3),
            PathBuf::from("./data").join("shard-3")
        );
        let mut os_ports = config.clone();
        os_ports.broker.base_port = 0;
        assert_eq!(os_ports.shard_port(5), 0);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = BrokerConfig::from_toml_str("[store]\nflush_mdoe = \"sync\"\n")
            .expect_err("typo must be rejected");
        assert!(err.to_string().contains("flush_mdoe"), "{err}");
    }

    #[test]
    fn flush_mode_parses_all_three_and_rejects_others() {
        for (text, mode) in [
            ("async", FlushMode::Async),
            ("sync", FlushMode::Sync),
            ("memory", FlushMode::Memory),
        ] {
            let config = BrokerConfig::from_toml_str(&format!(
                "[broker]\nlisten_addr = \"127.0.0.1\"\n[store]\nflush_mode = \"{text}\"\n"
            ))
            .expect("valid flush mode");
            assert_eq!(config.store.flush_mode, mode);
        }
        let err = BrokerConfig::from_toml_str("[store]\nflush_mode = \"fast\"\n")
            .expect_err("unknown mode");
        assert!(err.to_string().contains("fast"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let lo = "[broker]\nlisten_addr = \"127.0.0.1\"\n";
        assert_eq!(err_key("[broker]\n"), "broker.advertised_addr");
        assert_eq!(
            err_key(&format!("{lo}namesrv_addrs = [\"nohost\"]\n")),
            "broker.namesrv_addrs"
        );
        assert_eq!(
            err_key(&format!("{lo}permission = 5\n")),
            "broker.permission"
        );
        assert_eq!(
            err_key(&format!("{lo}register_period_ms = 5000\n")),
            "broker.register_period_ms"
        );
        assert_eq!(err_key(&format!("{lo}shards = 0\n")), "broker.shards");
        assert_eq!(
            err_key(&format!("{lo}base_port = 65530\nshards = 4\n")),
            "broker.base_port"
        );
        assert_eq!(
            err_key(&format!("{lo}broker_name = \"a b\"\n")),
            "broker.broker_name"
        );
        assert_eq!(err_key(&format!("{lo}broker_id = 1\n")), "broker.broker_id");
        assert_eq!(
            err_key(&format!("{lo}[store]\nsegment_bytes = 1000\n")),
            "store.segment_bytes"
        );
        assert_eq!(
            err_key(&format!("{lo}[retention]\ndelete_when = \"25\"\n")),
            "retention.delete_when"
        );
        assert_eq!(
            err_key(&format!(
                "{lo}[retention]\ndisk_space_clean_forcibly_ratio = 95\n"
            )),
            "retention.disk_space_clean_forcibly_ratio"
        );
        assert_eq!(
            err_key(&format!("{lo}[limits]\nmax_message_bytes = 0\n")),
            "limits.max_message_bytes"
        );
        assert_eq!(
            err_key(&format!("{lo}[limits]\nmax_pending_pulls = 0\n")),
            "limits.max_pending_pulls"
        );
        assert_eq!(
            err_key(&format!("{lo}[topics]\ndefault_topic_queue_nums = 0\n")),
            "topics.default_topic_queue_nums"
        );
    }

    #[test]
    fn invalid_error_text_says_how_to_fix() {
        let err = BrokerConfig::from_toml_str(
            "[broker]\nlisten_addr = \"127.0.0.1\"\n[retention]\ndelete_when = \"4pm\"\n",
        )
        .expect_err("bad hour");
        let text = err.to_string();
        assert!(text.contains("retention.delete_when"), "{text}");
        assert!(text.contains("04;16"), "{text}");
    }

    #[test]
    fn more_shards_than_allowed_cpus_is_refused() {
        let mut config = BrokerConfig::standalone();
        config.broker.shards = Some(allowed_cpus() + 1);
        config.broker.base_port = 0;
        assert!(matches!(
            config.resolved_shards(),
            Err(ConfigError::Invalid {
                key: "broker.shards",
                ..
            })
        ));
        config.broker.shards = None;
        assert_eq!(config.resolved_shards().expect("default"), allowed_cpus());
    }

    #[test]
    fn deploy_examples_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        for name in ["standalone.toml", "broker.toml"] {
            let path = root.join(name);
            BrokerConfig::load(&path)
                .unwrap_or_else(|e| panic!("{} must parse: {e}", path.display()));
        }
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = BrokerConfig::load(Path::new("/nonexistent/ringmq.toml")).expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/ringmq.toml"),
            "{err}"
        );
    }
}
