//! The shard runtime: a per-core, single-threaded async executor driving one io_uring ring.
//! This is the only module that touches the ring.
