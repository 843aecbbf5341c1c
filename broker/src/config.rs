//! The broker's configuration (`broker.toml`): identity, NameServers, ports, shards, store,
//! flush mode, retention and limits.
