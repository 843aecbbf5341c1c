use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageResponseHeader;
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::{RequestCode, ResponseCode};

use super::*;
use crate::server::handler::testing::*;

fn query_key(key: &str) -> RemotingCommand {
    request_with(
        RequestCode::QueryMessage,
        &QueryMessageRequestHeader {
            topic: "T".into(),
            key: key.into(),
            max_num: 32,
            begin_timestamp: 0,
            end_timestamp: i64::MAX,
            unique_key_query: None,
            rpc: Default::default(),
        },
    )
}

#[test]
fn query_by_key_returns_the_indexed_messages() {
    let mut shard = TestShard::new();
    shard.call(send_request("T", 0, b"a", &[("KEYS", "order-1 order-2")]));
    shard.call(send_request("T", 1, b"b", &[("KEYS", "order-2")]));
    let response = shard.call(query_key("order-2"));
    assert_eq!(response.code, 0);
    assert_eq!(records(&response.body).len(), 2);
    let response = shard.call(query_key("order-3"));
    assert_eq!(response.code, ResponseCode::QueryNotFound.as_i32());
    assert_names_field(&shard.call(without(query_key("x"), "key")), "key");
}

#[test]
fn view_by_id_returns_the_record_at_the_offset() {
    let mut shard = TestShard::new();
    let sent = shard.call(send_request("T", 0, b"payload", &[]));
    let id = SendMessageResponseHeader::decode(&sent)
        .expect("header")
        .msg_id;
    let (_, offset) = parse_offset_msg_id(&id).expect("id");
    let request = request_with(
        RequestCode::ViewMessageById,
        &ViewMessageRequestHeader {
            topic: None,
            offset,
        },
    );
    let response = shard.call(request);
    assert_eq!(response.code, 0);
    assert_eq!(&records(&response.body)[0].body()[..], b"payload");
    let missing = request_with(
        RequestCode::ViewMessageById,
        &ViewMessageRequestHeader {
            topic: None,
            offset: 1 << 40,
        },
    );
    assert_eq!(shard.call(missing).code, ResponseCode::SystemError.as_i32());
}
