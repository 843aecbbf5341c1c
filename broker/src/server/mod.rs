//! The broker server: listeners, connection handling and one handler module per request
//! family. Runs on each shard's executor.
