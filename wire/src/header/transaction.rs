//! Headers of the transaction commands: `END_TRANSACTION` (37, producer → broker: commit or
//! roll back a half message) and `CHECK_TRANSACTION_STATE` (39, broker → producer: ask about
//! a half message left undecided).

use crate::header::{RpcFields, header_struct};

/// Values of `commitOrRollback` (`MessageSysFlag` transaction types).
pub mod commit_or_rollback {
    /// Not a transaction outcome: the producer does not know yet (check again later).
    pub const NOT_TYPE: i32 = 0;
    /// Prepared (half) message.
    pub const PREPARED: i32 = 0x4;
    /// Commit: make the message visible.
    pub const COMMIT: i32 = 0x8;
    /// Roll back: drop the message.
    pub const ROLLBACK: i32 = 0xC;
}

header_struct! {
    /// `END_TRANSACTION` (37) request header (`EndTransactionRequestHeader`), usually one-way.
    pub struct EndTransactionRequestHeader {
        /// `topic` (5.x).
        opt topic: String => "topic",
        /// `producerGroup`.
        req producer_group: String => "producerGroup",
        /// `tranStateTableOffset`: the half message's consume queue offset.
        req tran_state_table_offset: i64 => "tranStateTableOffset",
        /// `commitLogOffset`: the half message's commit log offset.
        req commit_log_offset: i64 => "commitLogOffset",
        /// `commitOrRollback`, see [`commit_or_rollback`].
        req commit_or_rollback: i32 => "commitOrRollback",
        /// `fromTransactionCheck`: this answers a `CHECK_TRANSACTION_STATE` (absent = false).
        opt from_transaction_check: bool => "fromTransactionCheck",
        /// `msgId`: the message's unique id.
        req msg_id: String => "msgId",
        /// `transactionId`.
        opt transaction_id: String => "transactionId",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `CHECK_TRANSACTION_STATE` (39) request header (`CheckTransactionStateRequestHeader`),
    /// sent one-way by the broker; the body is the half message's stored record.
    pub struct CheckTransactionStateRequestHeader {
        /// `topic` (5.x).
        opt topic: String => "topic",
        /// `tranStateTableOffset`.
        req tran_state_table_offset: i64 => "tranStateTableOffset",
        /// `commitLogOffset`.
        req commit_log_offset: i64 => "commitLogOffset",
        /// `msgId`: the message's unique id.
        opt msg_id: String => "msgId",
        /// `transactionId`.
        opt transaction_id: String => "transactionId",
        /// `offsetMsgId`: the broker's offset message id.
        opt offset_msg_id: String => "offsetMsgId",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::assert_header_contract;

    #[test]
    fn end_transaction() {
        assert_header_contract(
            &EndTransactionRequestHeader {
                topic: Some("T".into()),
                producer_group: "PG".into(),
                tran_state_table_offset: 7,
                commit_log_offset: 8192,
                commit_or_rollback: commit_or_rollback::COMMIT,
                from_transaction_check: Some(true),
                msg_id: "7F000001".into(),
                transaction_id: Some("tx".into()),
                rpc: RpcFields::default(),
            },
            &[
                "topic",
                "producerGroup",
                "tranStateTableOffset",
                "commitLogOffset",
                "commitOrRollback",
                "fromTransactionCheck",
                "msgId",
                "transactionId",
            ],
            &[
                "producerGroup",
                "tranStateTableOffset",
                "commitLogOffset",
                "commitOrRollback",
                "msgId",
            ],
        );
    }

    #[test]
    fn check_transaction_state() {
        assert_header_contract(
            &CheckTransactionStateRequestHeader {
                topic: None,
                tran_state_table_offset: 1,
                commit_log_offset: 2,
                msg_id: Some("u".into()),
                transaction_id: Some("tx".into()),
                offset_msg_id: Some("o".into()),
                rpc: RpcFields::default(),
            },
            &[
                "tranStateTableOffset",
                "commitLogOffset",
                "msgId",
                "transactionId",
                "offsetMsgId",
            ],
            &["tranStateTableOffset", "commitLogOffset"],
        );
    }
}
