//! JSON bodies as RocketMQ's fastjson produces and accepts them. Decode with
//! [`crate::json::parse`] (accepts bare numeric map keys); encode with
//! [`crate::json::to_vec`] (standard JSON, accepted by every client).

pub mod client;
pub mod cluster;
pub mod consumer;
pub mod heartbeat;
pub mod kv;
pub mod register;
pub mod route;
pub mod stats;
pub mod subscription;
pub mod topic;
