//! Headers of the message lookups: `QUERY_MESSAGE` (12, by key or unique key, through the
//! index file) and `VIEW_MESSAGE_BY_ID` (33, by commit log offset).
//!
//! A found `QUERY_MESSAGE` answers with the matching stored records, concatenated, as the
//! body; `VIEW_MESSAGE_BY_ID` answers with the one stored record and no header fields.

use crate::header::{RpcFields, header_struct};

/// The extra `extFields` key a client sets (to `"true"`) on a `QUERY_MESSAGE` that looks up
/// a unique key (`MixAll.UNIQUE_MSG_QUERY_FLAG`); the broker then stops at the first match.
pub const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";

header_struct! {
    /// `QUERY_MESSAGE` (12) request header (`QueryMessageRequestHeader`).
    pub struct QueryMessageRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `key`: a message key or unique key.
        req key: String => "key",
        /// `maxNum`: most messages wanted.
        req max_num: i32 => "maxNum",
        /// `beginTimestamp`, ms since the epoch.
        req begin_timestamp: i64 => "beginTimestamp",
        /// `endTimestamp`, ms since the epoch.
        req end_timestamp: i64 => "endTimestamp",
        /// [`UNIQUE_KEY_QUERY`]: the key is a unique key (msgId).
        opt unique_key_query: bool => "_UNIQUE_KEY_QUERY",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `QUERY_MESSAGE` response header (`QueryMessageResponseHeader`).
    pub struct QueryMessageResponseHeader {
        /// `indexLastUpdateTimestamp`: newest store time covered by the index.
        req index_last_update_timestamp: i64 => "indexLastUpdateTimestamp",
        /// `indexLastUpdatePhyoffset`: newest commit log offset covered by the index.
        req index_last_update_phyoffset: i64 => "indexLastUpdatePhyoffset",
    }
}

header_struct! {
    /// `VIEW_MESSAGE_BY_ID` (33) request header (`ViewMessageRequestHeader`).
    pub struct ViewMessageRequestHeader {
        /// `topic` (5.x clients send it; 4.x ones do not).
        opt topic: String => "topic",
        /// `offset`: the commit log offset decoded from the offset message id.
        req offset: i64 => "offset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::assert_header_contract;

    #[test]
    fn query_message() {
        assert_header_contract(
            &QueryMessageRequestHeader {
                topic: "T".into(),
                key: "order-42".into(),
                max_num: 32,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
                unique_key_query: Some(true),
                rpc: RpcFields::default(),
            },
            &[
                "topic",
                "key",
                "maxNum",
                "beginTimestamp",
                "endTimestamp",
                "_UNIQUE_KEY_QUERY",
            ],
            &["topic", "key", "maxNum", "beginTimestamp", "endTimestamp"],
        );
        assert_header_contract(
            &QueryMessageResponseHeader {
                index_last_update_timestamp: 1,
                index_last_update_phyoffset: 2,
            },
            &["indexLastUpdateTimestamp", "indexLastUpdatePhyoffset"],
            &["indexLastUpdateTimestamp", "indexLastUpdatePhyoffset"],
        );
    }

    #[test]
    fn view_message() {
        assert_header_contract(
            &ViewMessageRequestHeader {
                topic: None,
                offset: 4096,
            },
            &["offset"],
            &["offset"],
        );
    }
}
