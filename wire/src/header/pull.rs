//! Headers of `PULL_MESSAGE` (11) and `LITE_PULL_MESSAGE` (361), and the pull response.
//!
//! The response code says what happened (`SUCCESS` = found, `PULL_NOT_FOUND`,
//! `PULL_RETRY_IMMEDIATELY`, `PULL_OFFSET_MOVED`); the body of a found response is the stored
//! records, concatenated.

use crate::header::{RpcFields, header_struct};

/// `PullSysFlag` bits of [`PullMessageRequestHeader::sys_flag`].
pub mod pull_sys_flag {
    /// The request carries `commitOffset` to store.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// The broker may hold the request (long polling) up to `suspendTimeoutMillis`.
    pub const SUSPEND: i32 = 0x2;
    /// The request carries its own `subscription` expression.
    pub const SUBSCRIPTION: i32 = 0x4;
    /// Class filter mode (removed filter servers; never honoured).
    pub const CLASS_FILTER: i32 = 0x8;
    /// The request comes from a lite pull consumer.
    pub const LITE_PULL: i32 = 0x10;
}

header_struct! {
    /// `PULL_MESSAGE` (11) / `LITE_PULL_MESSAGE` (361) request header
    /// (`PullMessageRequestHeader`).
    pub struct PullMessageRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// `topic`.
        req topic: String => "topic",
        /// `queueId`.
        req queue_id: i32 => "queueId",
        /// `queueOffset`: first offset wanted.
        req queue_offset: i64 => "queueOffset",
        /// `maxMsgNums`: most messages wanted.
        req max_msg_nums: i32 => "maxMsgNums",
        /// `sysFlag`, see [`pull_sys_flag`].
        req sys_flag: i32 => "sysFlag",
        /// `commitOffset`: the consumer's offset to store (with [`pull_sys_flag::COMMIT_OFFSET`]).
        req commit_offset: i64 => "commitOffset",
        /// `suspendTimeoutMillis`: the longest the broker may hold the request.
        req suspend_timeout_millis: i64 => "suspendTimeoutMillis",
        /// `subscription`: the filter expression (with [`pull_sys_flag::SUBSCRIPTION`]).
        opt subscription: String => "subscription",
        /// `subVersion`: the subscription's version.
        req sub_version: i64 => "subVersion",
        /// `expressionType`: `TAG` (default) or `SQL92`.
        opt expression_type: String => "expressionType",
        /// `maxMsgBytes`: most bytes wanted.
        opt max_msg_bytes: i32 => "maxMsgBytes",
        /// `requestSource` (proxy).
        opt request_source: i32 => "requestSource",
        /// `proxyFrowardClientId` (sic; `proxyForwardClientId` accepted): the client behind a
        /// proxy.
        opt proxy_forward_client_id: String => "proxyFrowardClientId" | "proxyForwardClientId",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

impl PullMessageRequestHeader {
    /// Whether a sys flag bit (see [`pull_sys_flag`]) is set.
    pub fn has_flag(&self, bit: i32) -> bool {
        self.sys_flag & bit != 0
    }
}

header_struct! {
    /// Pull response header (`PullMessageResponseHeader`).
    pub struct PullMessageResponseHeader {
        /// `suggestWhichBrokerId`: where the consumer should pull next (0 = master).
        req suggest_which_broker_id: i64 => "suggestWhichBrokerId",
        /// `nextBeginOffset`: the offset to pull from next.
        req next_begin_offset: i64 => "nextBeginOffset",
        /// `minOffset` of the queue.
        req min_offset: i64 => "minOffset",
        /// `maxOffset` of the queue.
        req max_offset: i64 => "maxOffset",
        /// `offsetDelta` (static topics).
        opt offset_delta: i64 => "offsetDelta",
        /// `topicSysFlag`.
        opt topic_sys_flag: i32 => "topicSysFlag",
        /// `groupSysFlag`.
        opt group_sys_flag: i32 => "groupSysFlag",
        /// `forbiddenType` (5.x group forbidding).
        opt forbidden_type: i32 => "forbiddenType",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ExtFields;
    use crate::error::WireError;
    use crate::header::{CommandHeader, Fields};

    fn request() -> PullMessageRequestHeader {
        PullMessageRequestHeader {
            consumer_group: "CG".into(),
            topic: "TopicTest".into(),
            queue_id: 2,
            queue_offset: 100,
            max_msg_nums: 32,
            sys_flag: pull_sys_flag::COMMIT_OFFSET | pull_sys_flag::SUSPEND,
            commit_offset: 90,
            suspend_timeout_millis: 15_000,
            subscription: Some("TagA || TagB".into()),
            sub_version: 1_700_000_000_000,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
            request_source: None,
            proxy_forward_client_id: Some("client-1".into()),
            rpc: RpcFields::default(),
        }
    }

    #[test]
    fn request_round_trip_with_misspelled_name() {
        let mut fields = ExtFields::new();
        request().write_to(&mut fields);
        assert_eq!(fields["proxyFrowardClientId"], "client-1");
        assert_eq!(fields["suspendTimeoutMillis"], "15000");
        assert_eq!(
            PullMessageRequestHeader::read_from(&Fields(&fields)),
            Ok(request())
        );
        let header = PullMessageRequestHeader::read_from(&Fields(&fields)).unwrap();
        assert!(header.has_flag(pull_sys_flag::SUSPEND));
        assert!(!header.has_flag(pull_sys_flag::SUBSCRIPTION));
    }

    #[test]
    fn alias_is_accepted() {
        let mut fields = ExtFields::new();
        request().write_to(&mut fields);
        let id = fields.remove("proxyFrowardClientId").unwrap();
        fields.insert("proxyForwardClientId".into(), id);
        assert_eq!(
            PullMessageRequestHeader::read_from(&Fields(&fields)),
            Ok(request())
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        let mut fields = ExtFields::new();
        request().write_to(&mut fields);
        fields.remove("subVersion");
        assert_eq!(
            PullMessageRequestHeader::read_from(&Fields(&fields)),
            Err(WireError::MissingField {
                field: "subVersion"
            })
        );
    }

    #[test]
    fn response_round_trip() {
        let header = PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: 132,
            min_offset: 0,
            max_offset: 500,
            offset_delta: None,
            topic_sys_flag: Some(0),
            group_sys_flag: None,
            forbidden_type: None,
        };
        let mut fields = ExtFields::new();
        header.write_to(&mut fields);
        assert_eq!(fields.len(), 5);
        assert_eq!(
            PullMessageResponseHeader::read_from(&Fields(&fields)),
            Ok(header)
        );
    }
}
