//! Headers of the client-membership and consumer commands: `UNREGISTER_CLIENT` (35),
//! `CONSUMER_SEND_MSG_BACK` (36), `GET_CONSUMER_LIST_BY_GROUP` (38) and
//! `NOTIFY_CONSUMER_IDS_CHANGED` (40, broker → client).
//!
//! `HEART_BEAT` (34), `LOCK_BATCH_MQ` (41) and `UNLOCK_BATCH_MQ` (42) carry no header fields
//! beyond the RPC ones; their content is a JSON body (see [`crate::body`]). The responses of
//! 35 and 38 have no header fields either (38 answers with
//! [`crate::body::consumer::GetConsumerListByGroupResponseBody`]).

use crate::header::send::{RpcFields, header_struct};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::send::assert_header_contract;

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
}
