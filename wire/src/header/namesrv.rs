//! Headers of the NameServer commands (`org.apache.rocketmq.remoting.protocol.header.namesrv`).
//!
//! Field names are the Java field names; each header is a flat `extFields` map of strings.
//! Required fields (Java's `@CFNotNull`) are plain types and decoding fails naming the field
//! when they are missing; nullable ones are `Option`s; Java `boolean` primitives default to
//! `false` when absent.

use crate::command::ExtFields;
use crate::error::WireError;
use crate::header::{CommandHeader, Fields, FieldsMut};

/// How one header field is read from and written to `extFields`.
trait FieldValue: Sized {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError>;
    fn write(&self, ext: &mut ExtFields, name: &str);
}

impl FieldValue for String {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
        fields.string(name)
    }
    fn write(&self, ext: &mut ExtFields, name: &str) {
        ext.put(name, self);
    }
}

impl FieldValue for Option<String> {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
        Ok(fields.opt_string(name))
    }
    fn write(&self, ext: &mut ExtFields, name: &str) {
        ext.put_opt(name, self.as_ref());
    }
}

/// A Java primitive `boolean`: absent reads as `false`.
impl FieldValue for bool {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
        Ok(fields.opt_boolean(name)?.unwrap_or(false))
    }
    fn write(&self, ext: &mut ExtFields, name: &str) {
        ext.put(name, self);
    }
}

impl FieldValue for Option<bool> {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
        fields.opt_boolean(name)
    }
    fn write(&self, ext: &mut ExtFields, name: &str) {
        ext.put_opt(name, *self);
    }
}

macro_rules! number_field {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
                fields.number(name)
            }
            fn write(&self, ext: &mut ExtFields, name: &str) {
                ext.put(name, self);
            }
        }
        impl FieldValue for Option<$ty> {
            fn read(fields: &Fields<'_>, name: &'static str) -> Result<Self, WireError> {
                fields.opt_number(name)
            }
            fn write(&self, ext: &mut ExtFields, name: &str) {
                ext.put_opt(name, *self);
            }
        }
    )*};
}
number_field!(i32, i64);

macro_rules! header {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $wire:literal ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl CommandHeader for $name {
            fn write_to(&self, fields: &mut ExtFields) {
                $( FieldValue::write(&self.$field, fields, $wire); )*
            }

            fn read_from(fields: &Fields<'_>) -> Result<Self, WireError> {
                Ok($name { $( $field: FieldValue::read(fields, $wire)?, )* })
            }
        }
    )*};
}

/// The `bodyCrc32` of a `REGISTER_BROKER` request: CRC32 of the body with the top bit
/// cleared, as RocketMQ's `UtilAll.crc32` computes it.
pub fn register_body_crc32(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

header! {
    /// `GET_ROUTEINFO_BY_TOPIC` (105) request.
    GetRouteInfoRequestHeader {
        /// The topic.
        topic: String => "topic",
        /// Set by ≥ 4.9.4 clients: they accept standard JSON only (ringmq always writes it).
        accept_standard_json_only: Option<bool> => "acceptStandardJsonOnly",
    }

    /// `REGISTER_BROKER` (103) request; the body is a `RegisterBrokerBody`.
    RegisterBrokerRequestHeader {
        /// The broker group name.
        broker_name: String => "brokerName",
        /// The broker's `ip:port`.
        broker_addr: String => "brokerAddr",
        /// The broker's cluster.
        cluster_name: String => "clusterName",
        /// The broker's HA (replication) address.
        ha_server_addr: String => "haServerAddr",
        /// 0 for a master, ≥ 1 for a slave.
        broker_id: i64 => "brokerId",
        /// How long the NameServer keeps the broker without news (5.x; default 120 s).
        heartbeat_timeout_millis: Option<i64> => "heartbeatTimeoutMillis",
        /// Whether a slave may act as master (5.x); absent from 4.x brokers.
        enable_acting_master: Option<bool> => "enableActingMaster",
        /// Whether the body is in the compressed form.
        compressed: bool => "compressed",
        /// CRC32 of the body; 0 = not checked.
        body_crc32: Option<i32> => "bodyCrc32",
    }

    /// `REGISTER_BROKER` (103) response; the body is the `ORDER_TOPIC_CONFIG` `KVTable`.
    RegisterBrokerResponseHeader {
        /// For a slave: its master's HA address.
        ha_server_addr: Option<String> => "haServerAddr",
        /// For a slave: its master's address.
        master_addr: Option<String> => "masterAddr",
    }

    /// `UNREGISTER_BROKER` (104) request.
    UnregisterBrokerRequestHeader {
        /// The broker group name.
        broker_name: String => "brokerName",
        /// The broker's `ip:port`.
        broker_addr: String => "brokerAddr",
        /// The broker's cluster.
        cluster_name: String => "clusterName",
        /// The broker's id within its group.
        broker_id: i64 => "brokerId",
    }

    /// `BROKER_HEARTBEAT` (904) request (5.x brokers, usually oneway).
    BrokerHeartbeatRequestHeader {
        /// The broker's cluster.
        cluster_name: String => "clusterName",
        /// The broker's `ip:port`.
        broker_addr: String => "brokerAddr",
        /// The broker group name.
        broker_name: String => "brokerName",
        /// The broker's id within its group.
        broker_id: Option<i64> => "brokerId",
        /// Controller epoch (controller mode only).
        epoch: Option<i32> => "epoch",
        /// The broker's max CommitLog offset (controller mode only).
        max_offset: Option<i64> => "maxOffset",
        /// The broker's confirmed offset (controller mode only).
        confirm_offset: Option<i64> => "confirmOffset",
    }

    /// `QUERY_DATA_VERSION` (322) request; the body is the broker's `DataVersion`.
    QueryDataVersionRequestHeader {
        /// The broker group name.
        broker_name: String => "brokerName",
        /// The broker's `ip:port`.
        broker_addr: String => "brokerAddr",
        /// The broker's cluster.
        cluster_name: String => "clusterName",
        /// The broker's id within its group.
        broker_id: i64 => "brokerId",
    }

    /// `QUERY_DATA_VERSION` (322) response; the body is the NameServer's `DataVersion`.
    QueryDataVersionResponseHeader {
        /// Whether the broker's version differs from the NameServer's.
        changed: bool => "changed",
    }

    /// `WIPE_WRITE_PERM_OF_BROKER` (205) request.
    WipeWritePermOfBrokerRequestHeader {
        /// The broker group whose write permission is removed.
        broker_name: String => "brokerName",
    }

    /// `WIPE_WRITE_PERM_OF_BROKER` (205) response.
    WipeWritePermOfBrokerResponseHeader {
        /// How many topics lost write permission on that broker.
        wipe_topic_count: i32 => "wipeTopicCount",
    }

    /// `ADD_WRITE_PERM_OF_BROKER` (327) request.
    AddWritePermOfBrokerRequestHeader {
        /// The broker group whose write permission is restored.
        broker_name: String => "brokerName",
    }

    /// `ADD_WRITE_PERM_OF_BROKER` (327) response.
    AddWritePermOfBrokerResponseHeader {
        /// How many topics regained write permission on that broker.
        add_topic_count: i32 => "addTopicCount",
    }

    /// `DELETE_TOPIC_IN_NAMESRV` (216) request.
    DeleteTopicFromNamesrvRequestHeader {
        /// The topic.
        topic: String => "topic",
        /// If set, only that cluster's queues of the topic are removed.
        cluster_name: Option<String> => "clusterName",
    }

    /// `REGISTER_TOPIC_IN_NAMESRV` (217) request; the body is a `TopicRouteData` whose
    /// `queueDatas` are registered.
    RegisterTopicRequestHeader {
        /// The topic.
        topic: String => "topic",
    }

    /// `GET_TOPICS_BY_CLUSTER` (224) request.
    GetTopicsByClusterRequestHeader {
        /// The cluster.
        cluster: String => "cluster",
    }

    /// `PUT_KV_CONFIG` (100) request.
    PutKvConfigRequestHeader {
        /// The namespace.
        namespace: String => "namespace",
        /// The key.
        key: String => "key",
        /// The value.
        value: String => "value",
    }

    /// `GET_KV_CONFIG` (101) request.
    GetKvConfigRequestHeader {
        /// The namespace.
        namespace: String => "namespace",
        /// The key.
        key: String => "key",
    }

    /// `GET_KV_CONFIG` (101) response.
    GetKvConfigResponseHeader {
        /// The value, if the key exists.
        value: Option<String> => "value",
    }

    /// `DELETE_KV_CONFIG` (102) request.
    DeleteKvConfigRequestHeader {
        /// The namespace.
        namespace: String => "namespace",
        /// The key.
        key: String => "key",
    }

    /// `GET_KVLIST_BY_NAMESPACE` (219) request.
    GetKvListByNamespaceRequestHeader {
        /// The namespace.
        namespace: String => "namespace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::RequestCode;
    use crate::command::{RemotingCommand, SerializeType};

    fn round_trip<H: CommandHeader + PartialEq + std::fmt::Debug>(header: H) {
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let mut command = RemotingCommand::request(RequestCode::RegisterBroker);
            command.serialize_type = serialize_type;
            header.encode_into(&mut command);
            let frame = command.encode_frame().unwrap();
            let decoded = RemotingCommand::decode(frame.slice(4..)).unwrap();
            assert_eq!(H::decode(&decoded).unwrap(), header);
        }
    }

    #[test]
    fn headers_round_trip_in_both_encodings() {
        round_trip(RegisterBrokerRequestHeader {
            broker_name: "broker-a".into(),
            broker_addr: "10.0.0.1:10911".into(),
            cluster_name: "DefaultCluster".into(),
            ha_server_addr: "10.0.0.1:10912".into(),
            broker_id: 0,
            heartbeat_timeout_millis: Some(120_000),
            enable_acting_master: Some(false),
            compressed: true,
            body_crc32: Some(-12345),
        });
        round_trip(GetRouteInfoRequestHeader {
            topic: "TopicTest".into(),
            accept_standard_json_only: None,
        });
        round_trip(RegisterBrokerResponseHeader {
            ha_server_addr: Some("h:1".into()),
            master_addr: None,
        });
        round_trip(BrokerHeartbeatRequestHeader {
            cluster_name: "c".into(),
            broker_addr: "a:1".into(),
            broker_name: "b".into(),
            broker_id: Some(1),
            epoch: None,
            max_offset: Some(10),
            confirm_offset: None,
        });
        round_trip(QueryDataVersionResponseHeader { changed: true });
        round_trip(WipeWritePermOfBrokerResponseHeader {
            wipe_topic_count: 3,
        });
        round_trip(DeleteTopicFromNamesrvRequestHeader {
            topic: "t".into(),
            cluster_name: Some("c".into()),
        });
        round_trip(PutKvConfigRequestHeader {
            namespace: "ns".into(),
            key: "k".into(),
            value: "v w".into(),
        });
    }

    /// Pinned bytes of a binary-header `GET_ROUTEINFO_BY_TOPIC` as a Java client (JAVA,
    /// version 474, opaque 1) sends it, worked out by hand from the layout.
    #[test]
    fn golden_binary_route_request() {
        let mut command = RemotingCommand::request(RequestCode::GetRouteinfoByTopic);
        command.serialize_type = SerializeType::RocketMq;
        command.language = crate::code::LanguageCode::Java;
        command.version = 474;
        command.opaque = 1;
        GetRouteInfoRequestHeader {
            topic: "TopicTest".into(),
            accept_standard_json_only: None,
        }
        .encode_into(&mut command);
        let mut expected = vec![
            0x00, 0x00, 0x00, 0x2d, // frame length 45
            0x01, 0x00, 0x00, 0x29, // ROCKETMQ, header length 41
            0x00, 0x69, // code 105
            0x00, // JAVA
            0x01, 0xda, // version 474
            0x00, 0x00, 0x00, 0x01, // opaque
            0x00, 0x00, 0x00, 0x00, // flag
            0x00, 0x00, 0x00, 0x00, // no remark
            0x00, 0x00, 0x00, 0x14, // extFields: 20 bytes
            0x00, 0x05,
        ];
        expected.extend_from_slice(b"topic");
        expected.extend_from_slice(&[0x00, 0x00, 0x00, 0x09]);
        expected.extend_from_slice(b"TopicTest");
        assert_eq!(command.encode_frame().unwrap().as_ref(), &expected[..]);
        let decoded = RemotingCommand::decode(bytes::Bytes::from(expected).slice(4..)).unwrap();
        assert_eq!(
            GetRouteInfoRequestHeader::decode(&decoded).unwrap().topic,
            "TopicTest"
        );
    }

    #[test]
    fn body_crc_is_java_masked_crc32() {
        // CRC32("123456789") = 0xCBF43926; Java masks the top bit.
        assert_eq!(register_body_crc32(b"123456789"), 0x4BF4_3926);
        assert_eq!(register_body_crc32(b""), 0);
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let mut ext = ExtFields::new();
        ext.put("brokerName", "b");
        ext.put("brokerAddr", "a:1");
        ext.put("clusterName", "c");
        ext.put("haServerAddr", "a:2");
        assert_eq!(
            RegisterBrokerRequestHeader::read_from(&Fields(&ext)),
            Err(WireError::MissingField { field: "brokerId" })
        );
        ext.put("brokerId", "x");
        assert!(matches!(
            RegisterBrokerRequestHeader::read_from(&Fields(&ext)),
            Err(WireError::InvalidField {
                field: "brokerId",
                ..
            })
        ));
        ext.put("brokerId", "1");
        let header = RegisterBrokerRequestHeader::read_from(&Fields(&ext)).unwrap();
        assert!(!header.compressed);
        assert_eq!(header.enable_acting_master, None);
        assert_eq!(
            GetRouteInfoRequestHeader::read_from(&Fields(&ExtFields::new())),
            Err(WireError::MissingField { field: "topic" })
        );
    }
}
