//! Golden byte vectors of `SEND_MESSAGE_V2` (310) as stock clients send it, pinned byte for
//! byte: a JSON header with numeric and boolean `extFields` values (C++ and Node clients),
//! the same request as the Java client writes it (string values), and a ROCKETMQ binary
//! header (the Java benchmark tools). Each decodes into the typed V2 header and converts to
//! V1; the Java-written ones re-encode to the identical bytes.

use bytes::Bytes;
use ringmq_wire::code::{LanguageCode, RequestCode};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::{SendMessageRequestHeader, SendMessageRequestHeaderV2};
use ringmq_wire::{FrameDecoder, RemotingCommand, SerializeType};

/// The header of the C++/Node-style request: numbers and booleans as JSON scalars.
const STOCK_JSON_HEADER: &str = r#"{"code":310,"extFields":{"a":"ProducerGroupName","b":"TopicTest","c":"TBW102","d":4,"e":3,"f":0,"g":1700000000123,"h":0,"i":"KEYS\u0001order-1\u0002TAGS\u0001TagA\u0002WAIT\u0001true\u0002","j":0,"k":false,"m":false},"flag":0,"language":"CPP","opaque":42,"serializeTypeCurrentRPC":"JSON","version":401}"#;

const BODY: &[u8] = b"Hello RocketMQ 0";

fn decode_one(bytes: &[u8]) -> RemotingCommand {
    let mut decoder = FrameDecoder::default();
    decoder.extend(bytes);
    let command = decoder
        .next_command()
        .expect("golden frame decodes")
        .expect("golden frame is complete");
    assert_eq!(decoder.buffered(), 0, "golden frame has trailing bytes");
    command
}

fn expected_v1() -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "ProducerGroupName".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_123,
        flag: 0,
        properties: Some("KEYS\u{1}order-1\u{2}TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}".into()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(false),
        max_reconsume_times: None,
        rpc: Default::default(),
    }
}

#[test]
fn stock_json_send_v2_with_numeric_and_boolean_values() {
    // 0x142 = 322 = 4 + 302-byte header + 16-byte body; 0x12e = 302, type 0 (JSON).
    let mut golden = vec![0x00, 0x00, 0x01, 0x42, 0x00, 0x00, 0x01, 0x2e];
    golden.extend_from_slice(STOCK_JSON_HEADER.as_bytes());
    golden.extend_from_slice(BODY);

    let command = decode_one(&golden);
    assert_eq!(command.request_code(), Some(RequestCode::SendMessageV2));
    assert_eq!(command.language, LanguageCode::Cpp);
    assert_eq!(command.version, 401);
    assert_eq!(command.opaque, 42);
    assert_eq!(command.serialize_type, SerializeType::Json);
    assert_eq!(&command.body[..], BODY);
    // Numbers and booleans were coerced to strings, as fastjson does.
    assert_eq!(command.ext("e"), Some("3"));
    assert_eq!(command.ext("g"), Some("1700000000123"));
    assert_eq!(command.ext("k"), Some("false"));

    let v2 = SendMessageRequestHeaderV2::decode(&command).expect("typed V2 header");
    assert_eq!(v2.e, 3);
    assert_eq!(v2.k, Some(false));
    assert_eq!(v2.l, None);
    assert_eq!(v2.clone().into_v1(), expected_v1());
    assert_eq!(
        SendMessageRequestHeader::decode_any(&command),
        Ok(expected_v1())
    );
    assert_eq!(SendMessageRequestHeaderV2::from(expected_v1()), v2);
}

#[test]
fn java_json_send_v2_re_encodes_byte_for_byte() {
    // What the Java client writes: fastjson's alphabetical order, every value a string.
    let header = STOCK_JSON_HEADER
        .replace(
            r#""d":4,"e":3,"f":0,"g":1700000000123,"h":0"#,
            r#""d":"4","e":"3","f":"0","g":"1700000000123","h":"0""#,
        )
        .replace(
            r#""j":0,"k":false,"m":false"#,
            r#""j":"0","k":"false","m":"false""#,
        )
        .replace(r#""language":"CPP""#, r#""language":"JAVA""#);
    let mut golden = Vec::new();
    golden.extend_from_slice(&((4 + header.len() + BODY.len()) as u32).to_be_bytes());
    golden.extend_from_slice(&(header.len() as u32).to_be_bytes());
    golden.extend_from_slice(header.as_bytes());
    golden.extend_from_slice(BODY);
    assert_eq!(
        &golden[..8],
        &[0x00, 0x00, 0x01, 0x53, 0x00, 0x00, 0x01, 0x3f]
    );

    let command = decode_one(&golden);
    assert_eq!(command.language, LanguageCode::Java);
    assert_eq!(
        SendMessageRequestHeaderV2::decode(&command).map(SendMessageRequestHeaderV2::into_v1),
        Ok(expected_v1())
    );
    assert_eq!(
        &command.encode_frame().expect("re-encodes")[..],
        &golden[..]
    );

    // The typed header written back gives the same extFields.
    let mut rebuilt = RemotingCommand::request(RequestCode::SendMessageV2);
    SendMessageRequestHeaderV2::decode(&command)
        .expect("typed")
        .encode_into(&mut rebuilt);
    assert_eq!(rebuilt.ext_fields, command.ext_fields);
}

/// A ROCKETMQ binary `SEND_MESSAGE_V2`: code 310, JAVA, version 474, opaque 43, fields `a`..`n`
/// in order, 3-byte body.
const BINARY_SEND_V2: &str = concat!(
    "000000bf010000b801360001da0000002b0000000000000000000000a3000161",
    "00000002504700016200000009546f7069635465737400016300000006544257",
    "3130320001640000000134000165000000013300016600000001300001670000",
    "000d3137303030303030303031323300016800000001300001690000000a5441",
    "475301546167410200016a000000013000016b0000000566616c736500016c00",
    "000002313600016d0000000566616c736500016e0000000862726f6b65722d61",
    "010203",
);

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn binary_send_v2() {
    let golden = unhex(BINARY_SEND_V2);
    let command = decode_one(&golden);
    assert_eq!(command.serialize_type, SerializeType::RocketMq);
    assert_eq!(command.code, 310);
    assert_eq!(command.version, 474);
    assert_eq!(command.opaque, 43);
    assert_eq!(command.remark, None);
    assert_eq!(command.body, Bytes::from_static(&[1, 2, 3]));

    let v2 = SendMessageRequestHeaderV2::decode(&command).expect("typed V2 header");
    assert_eq!(v2.a, "PG");
    assert_eq!(v2.g, 1_700_000_000_123);
    assert_eq!(v2.i.as_deref(), Some("TAGS\u{1}TagA\u{2}"));
    assert_eq!(v2.l, Some(16));
    assert_eq!(v2.n.as_deref(), Some("broker-a"));
    let v1 = v2.into_v1();
    assert_eq!(v1.max_reconsume_times, Some(16));
    assert_eq!(v1.rpc.broker_name.as_deref(), Some("broker-a"));
    assert_eq!(
        &command.encode_frame().expect("re-encodes")[..],
        &golden[..]
    );
}

#[test]
fn send_v2_with_a_missing_field_names_it() {
    let header = STOCK_JSON_HEADER.replace(r#""b":"TopicTest","#, "");
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header.as_bytes());
    let command = decode_one(&frame);
    let error = SendMessageRequestHeaderV2::decode(&command).unwrap_err();
    assert_eq!(error.to_string(), "missing required field `b`");
    assert_eq!(
        error.response_code(),
        ringmq_wire::ResponseCode::SystemError
    );
}
