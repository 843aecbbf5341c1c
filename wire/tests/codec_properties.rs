//! Property tests of the codecs: arbitrary commands round-trip through both header
//! encodings; every truncation of a valid frame asks for more bytes (stream) or fails
//! (content), never panics; arbitrary bytes never panic the frame decoder, the command
//! decoder, the typed headers or the JSON bodies.

use bytes::Bytes;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use ringmq_wire::body::consumer::{
    ConsumerConnection, ConsumerOffsetSerializeWrapper, LockBatchRequestBody, MessageQueue,
};
use ringmq_wire::body::heartbeat::HeartbeatData;
use ringmq_wire::body::stats::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
use ringmq_wire::body::subscription::SubscriptionGroupWrapper;
use ringmq_wire::code::LanguageCode;
use ringmq_wire::command::ExtFields;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::pull::PullMessageRequestHeader;
use ringmq_wire::header::send::{SendMessageRequestHeader, SendMessageRequestHeaderV2};
use ringmq_wire::{FrameDecoder, RemotingCommand, SerializeType};

fn language() -> impl Strategy<Value = LanguageCode> {
    proptest::sample::select(LanguageCode::ALL.to_vec())
}

/// Any command one of the two encodings can carry (binary headers have 16-bit codes and
/// versions, and cannot tell a null remark from an empty one).
fn command(serialize_type: SerializeType) -> impl Strategy<Value = RemotingCommand> {
    (
        0..=i32::from(u16::MAX),
        language(),
        0..=i32::from(u16::MAX),
        any::<i32>(),
        any::<i32>(),
        proptest::option::of("\\PC{1,40}"),
        btree_map("[a-zA-Z_]{1,12}|\\PC{1,8}", "\\PC{0,40}", 0..12),
        vec(any::<u8>(), 0..256),
    )
        .prop_map(
            move |(code, language, version, opaque, flag, remark, ext_fields, body)| {
                RemotingCommand {
                    code,
                    language,
                    version,
                    opaque,
                    flag,
                    remark,
                    ext_fields: ext_fields.into_iter().collect(),
                    body: Bytes::from(body),
                    serialize_type,
                }
            },
        )
}

fn any_command() -> impl Strategy<Value = RemotingCommand> {
    prop_oneof![
        command(SerializeType::Json),
        command(SerializeType::RocketMq)
    ]
}

/// Drains a decoder; returns the commands and whether it stopped on an error.
fn drain(decoder: &mut FrameDecoder) -> (Vec<RemotingCommand>, bool) {
    let mut out = Vec::new();
    loop {
        match decoder.next_command() {
            Ok(Some(command)) => out.push(command),
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fn decode_everything(bytes: &[u8]) {
    let mut decoder = FrameDecoder::new(64 * 1024);
    decoder.extend(bytes);
    let (commands, _) = drain(&mut decoder);
    let content = RemotingCommand::decode(Bytes::copy_from_slice(bytes));
    for command in commands.iter().chain(content.as_ref().ok()) {
        let _ = SendMessageRequestHeader::decode_any(command);
        let _ = PullMessageRequestHeader::decode(command);
        decode_bodies(&command.body);
    }
    decode_bodies(bytes);
}

fn decode_bodies(body: &[u8]) {
    let _ = HeartbeatData::decode(body);
    let _ = LockBatchRequestBody::decode(body);
    let _ = ConsumerConnection::decode(body);
    let _ = ConsumerOffsetSerializeWrapper::decode(body);
    let _ = SubscriptionGroupWrapper::decode(body);
    let _ = TopicStatsTable::decode(body);
    let _ = ConsumeStats::decode(body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn commands_round_trip_in_both_encodings(command in any_command()) {
        let bytes = command.encode_frame().expect("encodes");
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes);
        let (decoded, failed) = drain(&mut decoder);
        prop_assert!(!failed);
        prop_assert_eq!(decoded, vec![command.clone()]);
        prop_assert_eq!(decoder.buffered(), 0);
        // And the content decoder alone.
        prop_assert_eq!(RemotingCommand::decode(bytes.slice(4..)).expect("decodes"), command);
    }

    #[test]
    fn every_truncation_needs_more_or_fails(command in any_command()) {
        let bytes = command.encode_frame().expect("encodes");
        let header_end = 8 + command.encode_header().expect("header").len();
        for cut in 0..bytes.len() {
            // As a stream: a prefix is never a frame.
            let mut decoder = FrameDecoder::default();
            decoder.extend(&bytes[..cut]);
            prop_assert_eq!(decoder.next_command(), Ok(None), "cut {}", cut);
            // As content with a lying length: cut inside the header must fail, cut inside the
            // body gives the shorter body.
            if cut >= 4 {
                let result = RemotingCommand::decode(bytes.slice(4..cut));
                if cut < header_end {
                    prop_assert!(result.is_err(), "cut {} inside the header decoded", cut);
                } else {
                    prop_assert_eq!(result.expect("header complete").body, command.body.slice(..cut - header_end));
                }
            }
        }
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(
        first in any_command(),
        second in any_command(),
        split in any::<prop::sample::Index>(),
    ) {
        let mut bytes = first.encode_frame().expect("encodes").to_vec();
        bytes.extend_from_slice(&second.encode_frame().expect("encodes"));
        let at = split.index(bytes.len() + 1);
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes[..at]);
        let (mut got, failed) = drain(&mut decoder);
        prop_assert!(!failed);
        decoder.extend(&bytes[at..]);
        let (rest, failed) = drain(&mut decoder);
        prop_assert!(!failed);
        got.extend(rest);
        prop_assert_eq!(got, vec![first, second]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_plausible_prefix_never_panic(
        serialize_type in 0u8..3,
        header in vec(any::<u8>(), 0..256),
        body in vec(any::<u8>(), 0..64),
        header_len_delta in -4i32..4,
    ) {
        let header_len = (header.len() as i32 + header_len_delta).max(0) as u32;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
        bytes.extend_from_slice(&((u32::from(serialize_type) << 24) | header_len).to_be_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&body);
        decode_everything(&bytes);
    }

    #[test]
    fn json_headers_with_random_values_never_panic(
        ext in btree_map("[a-n]", prop_oneof![
            "\\PC{0,12}".prop_map(serde_json::Value::String),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            any::<f64>().prop_map(serde_json::Value::from),
        ], 0..14),
    ) {
        let header = serde_json::json!({"code": 310, "language": "CPP", "version": 1,
            "opaque": 1, "flag": 0, "extFields": ext});
        let text = header.to_string();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((4 + text.len()) as u32).to_be_bytes());
        bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
        bytes.extend_from_slice(text.as_bytes());
        let mut decoder = FrameDecoder::default();
        decoder.extend(&bytes);
        let command = decoder.next_command().expect("valid JSON").expect("complete");
        let _ = SendMessageRequestHeaderV2::decode(&command);
    }

    #[test]
    fn v2_headers_round_trip_and_convert(
        strings in vec("\\PC{0,20}", 4),
        numbers in (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>(), any::<i32>()),
        optional in (proptest::option::of(any::<i32>()), proptest::option::of(any::<bool>()),
                     proptest::option::of(any::<i32>()), proptest::option::of(any::<bool>())),
        broker in proptest::option::of("[a-z-]{1,12}"),
    ) {
        let header = SendMessageRequestHeaderV2 {
            a: strings[0].clone(),
            b: strings[1].clone(),
            c: strings[2].clone(),
            d: numbers.0,
            e: numbers.1,
            f: numbers.2,
            g: numbers.3,
            h: numbers.4,
            i: Some(strings[3].clone()),
            j: optional.0,
            k: optional.1,
            l: optional.2,
            m: optional.3,
            n: broker,
            rpc: Default::default(),
        };
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let mut command = RemotingCommand::request_raw(310);
            command.serialize_type = serialize_type;
            header.encode_into(&mut command);
            let decoded = RemotingCommand::decode(command.encode_frame().expect("encodes").slice(4..))
                .expect("decodes");
            prop_assert_eq!(SendMessageRequestHeaderV2::decode(&decoded), Ok(header.clone()));
            let v1 = SendMessageRequestHeader::decode_any(&decoded).expect("converts");
            prop_assert_eq!(SendMessageRequestHeaderV2::from(v1), header.clone());
        }
    }

    #[test]
    fn queue_keyed_stats_round_trip(
        entries in btree_map(
            ("\\PC{0,10}", "[{}\\[\\]\":,a-z\\\\]{0,10}", any::<i32>()),
            (any::<i64>(), any::<i64>(), any::<i64>()),
            0..8,
        ),
        // serde_json parses floats to within one ulp; quarters are exact.
        tps in (-4_000_000i32..4_000_000).prop_map(|v| f64::from(v) / 4.0),
    ) {
        let mut topic = TopicStatsTable { topic_put_tps: tps, ..Default::default() };
        let mut consume = ConsumeStats { consume_tps: tps, ..Default::default() };
        for ((t, b, q), (x, y, z)) in entries {
            let queue = MessageQueue::new(t, b, q);
            topic.offset_table.insert(queue.clone(), TopicOffset { last_update_timestamp: x, max_offset: y, min_offset: z });
            consume.offset_table.insert(queue, OffsetWrapper { broker_offset: x, consumer_offset: y, last_timestamp: z, pull_offset: x });
        }
        prop_assert_eq!(TopicStatsTable::decode(&topic.encode()).expect("decodes"), topic);
        prop_assert_eq!(ConsumeStats::decode(&consume.encode()).expect("decodes"), consume);
    }
}

/// Every strict prefix of a valid JSON body is an error, never a panic.
#[test]
fn truncated_bodies_are_errors() {
    let bodies: [(&str, &[u8]); 4] = [
        (
            "heartbeat",
            br#"{"clientID":"c@1","consumerDataSet":[{"consumeType":1,"groupName":"CG","subscriptionDataSet":[{"subVersion":"1","topic":"T"}]}],"producerDataSet":[{"groupName":"PG"}]}"#,
        ),
        (
            "topic stats",
            br#"{"offsetTable":{{"brokerName":"b","queueId":2,"topic":"t"}:{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":0}},"topicPutTps":0.0}"#,
        ),
        ("offsets", br#"{"offsetTable":{"T@CG":{0:12,1:40}}}"#),
        (
            "lock",
            br#"{"clientId":"c","consumerGroup":"g","mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}"#,
        ),
    ];
    for (name, body) in bodies {
        let full_ok = match name {
            "heartbeat" => HeartbeatData::decode(body).is_ok(),
            "topic stats" => TopicStatsTable::decode(body).is_ok(),
            "offsets" => ConsumerOffsetSerializeWrapper::decode(body).is_ok(),
            _ => LockBatchRequestBody::decode(body).is_ok(),
        };
        assert!(full_ok, "{name} golden decodes");
        for cut in 0..body.len() {
            let prefix = &body[..cut];
            let ok = match name {
                "heartbeat" => HeartbeatData::decode(prefix).is_ok(),
                "topic stats" => TopicStatsTable::decode(prefix).is_ok(),
                "offsets" => ConsumerOffsetSerializeWrapper::decode(prefix).is_ok(),
                _ => LockBatchRequestBody::decode(prefix).is_ok(),
            };
            assert!(!ok, "{name} prefix of {cut} bytes decoded");
        }
    }
}

/// Typed headers read from an empty or junk-filled `extFields` fail naming a field.
#[test]
fn typed_headers_on_empty_fields_name_the_first_missing_field() {
    let empty = ExtFields::new();
    let error =
        SendMessageRequestHeaderV2::read_from(&ringmq_wire::header::Fields(&empty)).unwrap_err();
    assert_eq!(error.to_string(), "missing required field `a`");
    let error =
        PullMessageRequestHeader::read_from(&ringmq_wire::header::Fields(&empty)).unwrap_err();
    assert_eq!(error.to_string(), "missing required field `consumerGroup`");
}
