//! Headers of the client-membership and consumer commands: `UNREGISTER_CLIENT` (35),
//! `CONSUMER_SEND_MSG_BACK` (36), `GET_CONSUMER_LIST_BY_GROUP` (38) and
//! `NOTIFY_CONSUMER_IDS_CHANGED` (40, broker → client).
//!
//! `HEART_BEAT` (34), `LOCK_BATCH_MQ` (41) and `UNLOCK_BATCH_MQ` (42) carry no header fields
//! beyond the RPC ones; their content is a JSON body (see [`crate::body`]). The responses of
//! 35 and 38 have no header fields either (38 answers with
//! [`crate::body::consumer::GetConsumerListByGroupResponseBody`]).

use crate::header::{RpcFields, header_struct};

header_struct! {
    /// `UNREGISTER_CLIENT` (35) request header (`UnregisterClientRequestHeader`).
    pub struct UnregisterClientRequestHeader {
        /// `clientID` (sic, upper-case `ID`).
        req client_id: String => "clientID",
        /// `producerGroup` being left, if any.
        opt producer_group: String => "producerGroup",
        /// `consumerGroup` being left, if any.
        opt consumer_group: String => "consumerGroup",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `CONSUMER_SEND_MSG_BACK` (36) request header (`ConsumerSendMsgBackRequestHeader`): a
    /// consumer hands back a message it failed to consume, for retry.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// `offset`: the message's commit log offset.
        req offset: i64 => "offset",
        /// `group`: the consumer group.
        req group: String => "group",
        /// `delayLevel`: 0 = broker decides (3 + reconsume times), -1 = straight to DLQ.
        req delay_level: i32 => "delayLevel",
        /// `originMsgId`.
        opt origin_msg_id: String => "originMsgId",
        /// `originTopic`.
        opt origin_topic: String => "originTopic",
        /// `unitMode` (absent = false).
        opt unit_mode: bool => "unitMode",
        /// `maxReconsumeTimes`: the group's limit before the dead-letter queue.
        opt max_reconsume_times: i32 => "maxReconsumeTimes",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_CONSUMER_LIST_BY_GROUP` (38) request header (`GetConsumerListByGroupRequestHeader`).
    pub struct GetConsumerListByGroupRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `NOTIFY_CONSUMER_IDS_CHANGED` (40) request header (`NotifyConsumerIdsChangedRequestHeader`),
    /// sent one-way by the broker to every consumer of a group whose membership changed.
    pub struct NotifyConsumerIdsChangedRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `GET_CONSUMER_RUNNING_INFO` (307) request header
    /// (`GetConsumerRunningInfoRequestHeader`): an administrator asks the broker, which asks the
    /// client `clientId`; the client answers with a
    /// [`crate::body::client::ConsumerRunningInfo`] body.
    pub struct GetConsumerRunningInfoRequestHeader {
        /// `consumerGroup`.
        req consumer_group: String => "consumerGroup",
        /// `clientId`: the client asked.
        req client_id: String => "clientId",
        /// `jstackEnable`: include a thread dump (absent reads as false).
        opt jstack_enable: bool => "jstackEnable",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

header_struct! {
    /// `RESET_CONSUMER_CLIENT_OFFSET` (220, broker → client) and `INVOKE_BROKER_TO_RESET_OFFSET`
    /// (222, admin → broker) request header (`ResetOffsetRequestHeader`). On 220 the body is a
    /// [`crate::body::client::ResetOffsetBody`] with the offset of every queue; on 222 the
    /// broker computes those from `timestamp` (or takes `offset` for the one queue `queueId`).
    pub struct ResetOffsetRequestHeader {
        /// `topic`.
        req topic: String => "topic",
        /// `group`: the consumer group.
        req group: String => "group",
        /// `timestamp`: reset to the first message stored at or after this time, ms since the
        /// epoch (`-1` on 222 when `offset` is given).
        req timestamp: i64 => "timestamp",
        /// `isForce`: also move offsets forward (otherwise only backward).
        req is_force: bool => "isForce",
        /// `queueId` (5.x, 222 only): one queue; Java writes `-1` for "all queues".
        opt queue_id: i32 => "queueId",
        /// `offset` (5.x, 222 only): the offset for `queueId`.
        opt offset: i64 => "offset",
        /// The RPC fields.
        flat rpc: RpcFields => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::RequestCode;
    use crate::command::RemotingCommand;
    use crate::header::{CommandHeader, assert_header_contract};

    #[test]
    fn unregister_client() {
        assert_header_contract(
            &UnregisterClientRequestHeader {
                client_id: "10.0.0.1@123".into(),
                producer_group: None,
                consumer_group: Some("CG".into()),
                rpc: RpcFields::default(),
            },
            &["clientID", "consumerGroup"],
            &["clientID"],
        );
    }

    #[test]
    fn send_back() {
        assert_header_contract(
            &ConsumerSendMsgBackRequestHeader {
                offset: 1024,
                group: "CG".into(),
                delay_level: 0,
                origin_msg_id: Some("AC11000100002A9F0000000000000400".into()),
                origin_topic: Some("T".into()),
                unit_mode: Some(false),
                max_reconsume_times: Some(16),
                rpc: RpcFields::default(),
            },
            &[
                "offset",
                "group",
                "delayLevel",
                "originMsgId",
                "originTopic",
                "unitMode",
                "maxReconsumeTimes",
            ],
            &["offset", "group", "delayLevel"],
        );
    }

    #[test]
    fn consumer_list_and_notify() {
        assert_header_contract(
            &GetConsumerListByGroupRequestHeader {
                consumer_group: "CG".into(),
                rpc: RpcFields::default(),
            },
            &["consumerGroup"],
            &["consumerGroup"],
        );
        assert_header_contract(
            &NotifyConsumerIdsChangedRequestHeader {
                consumer_group: "CG".into(),
                rpc: RpcFields::default(),
            },
            &["consumerGroup"],
            &["consumerGroup"],
        );
    }

    #[test]
    fn running_info_request() {
        assert_header_contract(
            &GetConsumerRunningInfoRequestHeader {
                consumer_group: "CG".into(),
                client_id: "10.0.0.5@123".into(),
                jstack_enable: Some(false),
                rpc: RpcFields::default(),
            },
            &["consumerGroup", "clientId", "jstackEnable"],
            &["consumerGroup", "clientId"],
        );
        // As a Java broker relays it (a 5.x header also carries the RPC fields).
        let mut command = RemotingCommand::request(RequestCode::GetConsumerRunningInfo);
        for (key, value) in [
            ("consumerGroup", "CG"),
            ("clientId", "10.0.0.5@123"),
            ("jstackEnable", "true"),
            ("bname", "broker-a"),
        ] {
            command.ext_fields.insert(key.into(), value.into());
        }
        let header = GetConsumerRunningInfoRequestHeader::decode(&command).unwrap();
        assert_eq!(header.jstack_enable, Some(true));
        assert_eq!(header.rpc.broker_name.as_deref(), Some("broker-a"));
    }

    #[test]
    fn reset_offset_request() {
        assert_header_contract(
            &ResetOffsetRequestHeader {
                topic: "T".into(),
                group: "CG".into(),
                timestamp: 1_700_000_000_000,
                is_force: true,
                queue_id: Some(-1),
                offset: Some(5),
                rpc: RpcFields::default(),
            },
            &[
                "topic",
                "group",
                "timestamp",
                "isForce",
                "queueId",
                "offset",
            ],
            &["topic", "group", "timestamp", "isForce"],
        );
        // What a Java broker sends to the client on 220: no queueId/offset.
        let mut command = RemotingCommand::request(RequestCode::ResetConsumerClientOffset);
        for (key, value) in [
            ("topic", "T"),
            ("group", "CG"),
            ("timestamp", "1700000000000"),
            ("isForce", "false"),
        ] {
            command.ext_fields.insert(key.into(), value.into());
        }
        let header = ResetOffsetRequestHeader::decode(&command).unwrap();
        assert_eq!(header.timestamp, 1_700_000_000_000);
        assert!(!header.is_force);
        assert_eq!((header.queue_id, header.offset), (None, None));
    }
}
