//! The per-shard storage engine: CommitLog, ConsumeQueues, IndexFile, checkpoint, recovery.
