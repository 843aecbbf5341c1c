//! Headers of the offset commands: consumer offsets (`QUERY_CONSUMER_OFFSET` 14,
//! `UPDATE_CONSUMER_OFFSET` 15) and queue offsets (`SEARCH_OFFSET_BY_TIMESTAMP` 29,
//! `GET_MAX_OFFSET` 30, `GET_MIN_OFFSET` 31, `GET_EARLIEST_MSG_STORETIME` 32), with their
//! responses. `UPDATE_CONSUMER_OFFSET`'s response has no header fields.

use crate::header::{RpcFields, header_struct};

header_struct! {
    /// `QUERY_CONSUMER_OFFSET` (14) request header (`QueryConsumerOffsetRequestHeader`).
    pub struct QueryConsumerOffsetRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// `setZeroIfNotFound`: answer 0 instead of `QUERY_NOT_FOUND` (5.x; absent = true).
        opt set_zero_if_not_found: bool => "setZeroIfNotFound",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `QUERY_CONSUMER_OFFSET` response header (`QueryConsumerOffsetResponseHeader`).
    pub struct QueryConsumerOffsetResponseHeader {
        /// `offset`: the stored consumer offset.
        req offset: i64 => "offset",
    }
}

header_struct! {
    /// `UPDATE_CONSUMER_OFFSET` (15) request header (`UpdateConsumerOffsetRequestHeader`);
    /// usually sent one-way.
    pub struct UpdateConsumerOffsetRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// `commitOffset`: the offset to store.
        req commit_offset: i64 => "commitOffset",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `SEARCH_OFFSET_BY_TIMESTAMP` (29) request header (`SearchOffsetRequestHeader`).
    pub struct SearchOffsetRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// `timestamp`, ms since the epoch.
        req timestamp: i64 => "timestamp",
        /// `boundaryType`: `LOWER` (default) or `UPPER`, which offset to pick among equal
        /// store times.
        opt boundary_type: String => "boundaryType",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// Response header of `SEARCH_OFFSET_BY_TIMESTAMP`, `GET_MAX_OFFSET` and `GET_MIN_OFFSET`
    /// (`SearchOffsetResponseHeader`, `GetMaxOffsetResponseHeader`, `GetMinOffsetResponseHeader`
    /// all carry just `offset`).
    pub struct OffsetResponseHeader {
        /// `offset`.
        req offset: i64 => "offset",
    }
}

header_struct! {
    /// `GET_MAX_OFFSET` (30) request header (`GetMaxOffsetRequestHeader`).
    pub struct GetMaxOffsetRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// `committed`: only count replicated messages (absent = true).
        opt committed: bool => "committed",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_MIN_OFFSET` (31) request header (`GetMinOffsetRequestHeader`).
    pub struct GetMinOffsetRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_EARLIEST_MSG_STORETIME` (32) request header
    /// (`GetEarliestMsgStoretimeRequestHeader`).
    pub struct GetEarliestMsgStoretimeRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_EARLIEST_MSG_STORETIME` response header (`GetEarliestMsgStoretimeResponseHeader`).
    pub struct GetEarliestMsgStoretimeResponseHeader {
        /// `timestamp`: store time of the queue's first message, ms since the epoch.
        req timestamp: i64 => "timestamp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::assert_header_contract;

    #[test]
    fn consumer_offset_headers() {
        assert_header_contract(
            &QueryConsumerOffsetRequestHeader {
                consumer_group: "CG".into(),
                topic: "T".into(),
                queue_id: 3,
                set_zero_if_not_found: Some(false),
                rpc: RpcFields::default(),
            },
            &["consumerGroup", "topic", "queueId", "setZeroIfNotFound"],
            &["consumerGroup", "topic", "queueId"],
        );
        assert_header_contract(
            &QueryConsumerOffsetResponseHeader { offset: -1 },
            &["offset"],
            &["offset"],
        );
        assert_header_contract(
            &UpdateConsumerOffsetRequestHeader {
                consumer_group: "CG".into(),
                topic: "T".into(),
                queue_id: 0,
                commit_offset: 1 << 40,
                rpc: RpcFields {
                    broker_name: Some("b".into()),
                    oneway: Some(true),
                    ..RpcFields::default()
                },
            },
            &[
                "consumerGroup",
                "topic",
                "queueId",
                "commitOffset",
                "bname",
                "oway",
            ],
            &["consumerGroup", "topic", "queueId", "commitOffset"],
        );
    }

    #[test]
    fn queue_offset_headers() {
        assert_header_contract(
            &SearchOffsetRequestHeader {
                topic: "T".into(),
                queue_id: 1,
                timestamp: 1_700_000_000_000,
                boundary_type: Some("UPPER".into()),
                rpc: RpcFields::default(),
            },
            &["topic", "queueId", "timestamp", "boundaryType"],
            &["topic", "queueId", "timestamp"],
        );
        assert_header_contract(
            &GetMaxOffsetRequestHeader {
                topic: "T".into(),
                queue_id: 1,
                committed: None,
                rpc: RpcFields::default(),
            },
            &["topic", "queueId"],
            &["topic", "queueId"],
        );
        assert_header_contract(
            &GetMinOffsetRequestHeader {
                topic: "T".into(),
                queue_id: 7,
                rpc: RpcFields::default(),
            },
            &["topic", "queueId"],
            &["topic", "queueId"],
        );
        assert_header_contract(
            &GetEarliestMsgStoretimeRequestHeader {
                topic: "T".into(),
                queue_id: 7,
                rpc: RpcFields::default(),
            },
            &["topic", "queueId"],
            &["topic", "queueId"],
        );
        assert_header_contract(
            &OffsetResponseHeader { offset: 12 },
            &["offset"],
            &["offset"],
        );
        assert_header_contract(
            &GetEarliestMsgStoretimeResponseHeader { timestamp: 5 },
            &["timestamp"],
            &["timestamp"],
        );
    }
}
