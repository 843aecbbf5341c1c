//! Bad input never takes the server down: garbage, oversize frames and undecodable headers
//! close only their own connection; unknown codes and malformed requests get error answers
//! naming the problem; oneway requests get no answer; other connections carry on.

mod common;

use std::io::Write;

use common::{Server, kv_path, master, request, route};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, SerializeType};

#[test]
fn garbage_and_bad_frames_close_only_their_connection() {
    let (_dir, kv) = kv_path();
    let mut server = Server::start(&kv, &[]);
    let mut healthy = server.connect();
    master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register(&mut healthy);

    // Random garbage: a nonsense length prefix.
    let mut garbage = server.connect();
    garbage
        .stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(garbage.is_closed_by_server());

    // A length over the 16 MiB limit.
    let mut oversize = server.connect();
    oversize
        .stream
        .write_all(&(64u32 << 20).to_be_bytes())
        .unwrap();
    oversize.stream.write_all(&[0; 16]).unwrap();
    assert!(oversize.is_closed_by_server());

    // A well-framed header that is not JSON, and an unknown serialize type.
    for (kind, header) in [(0u8, &b"{not json"[..]), (7u8, &b"xx"[..])] {
        let mut bad = server.connect();
        let mut frame = Vec::new();
        frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&((u32::from(kind) << 24) | header.len() as u32).to_be_bytes());
        frame.extend_from_slice(header);
        bad.stream.write_all(&frame).unwrap();
        assert!(bad.is_closed_by_server());
    }

    // The server and the other connection are unaffected.
    assert!(server.is_running());
    assert!(route(&mut healthy, "T", SerializeType::Json).is_ok());
    let mut fresh = server.connect();
    assert!(route(&mut fresh, "T", SerializeType::RocketMq).is_ok());
}

#[test]
fn unknown_codes_and_malformed_requests_get_error_answers() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut client = server.connect();

    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let mut unknown = RemotingCommand::request_raw(9999);
        unknown.serialize_type = serialize_type;
        let response = client.call(&unknown);
        assert_eq!(
            response.code,
            ResponseCode::RequestCodeNotSupported.as_i32()
        );
        assert!(response.remark.unwrap().contains("9999"));

        // A broker-side code the NameServer does not serve.
        let response = client.call(&request(RequestCode::SendMessageV2, serialize_type, &[]));
        assert_eq!(
            response.code,
            ResponseCode::RequestCodeNotSupported.as_i32()
        );
        assert!(response.remark.unwrap().contains("SEND_MESSAGE_V2(310)"));

        // Missing required field.
        let response = client.call(&request(
            RequestCode::GetRouteinfoByTopic,
            serialize_type,
            &[],
        ));
        assert_eq!(response.code, ResponseCode::SystemError.as_i32());
        assert!(response.remark.unwrap().contains("`topic`"));
    }

    // Bad register body JSON.
    let mut register = master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register_request();
    register.ext_fields.remove("bodyCrc32");
    register.body = bytes::Bytes::from_static(b"{\"topicConfigSerializeWrapper\": [1,");
    let response = client.call(&register);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(
        response
            .remark
            .unwrap()
            .contains("invalid JSON register broker body")
    );

    // Body CRC mismatch.
    let mut register = master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register_request();
    register
        .ext_fields
        .insert("bodyCrc32".into(), "12345".into());
    let response = client.call(&register);
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(response.remark.unwrap().contains("crc32"));

    // A malformed number.
    let response = client.call(&request(
        RequestCode::UnregisterBroker,
        SerializeType::Json,
        &[
            ("brokerName", "b"),
            ("brokerAddr", "a:1"),
            ("clusterName", "c"),
            ("brokerId", "zero"),
        ],
    ));
    assert_eq!(response.code, ResponseCode::SystemError.as_i32());
    assert!(response.remark.unwrap().contains("brokerId"));
}

#[test]
fn oneway_requests_get_no_answer_and_answers_follow_opaque() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut client = server.connect();
    let mut oneway = request(
        RequestCode::PutKvConfig,
        SerializeType::Json,
        &[("namespace", "ns"), ("key", "k"), ("value", "v")],
    );
    oneway.set_oneway();
    client.send(&oneway);
    // Pipeline several requests; every answer carries its request's opaque.
    let requests: Vec<_> = (0..8)
        .map(|i| {
            request(
                RequestCode::GetRouteinfoByTopic,
                if i % 2 == 0 {
                    SerializeType::Json
                } else {
                    SerializeType::RocketMq
                },
                &[("topic", "none")],
            )
        })
        .collect();
    for request in &requests {
        client.send(request);
    }
    let mut opaques: Vec<i32> = (0..requests.len())
        .map(|_| client.receive().opaque)
        .collect();
    opaques.sort_unstable();
    let mut expected: Vec<i32> = requests.iter().map(|r| r.opaque).collect();
    expected.sort_unstable();
    assert_eq!(
        opaques, expected,
        "no answer to the oneway request, one to each other"
    );
    // The oneway write did happen.
    common::eventually("oneway put applied", || {
        client
            .call(&request(
                RequestCode::GetKvConfig,
                SerializeType::Json,
                &[("namespace", "ns"), ("key", "k")],
            ))
            .code
            == 0
    });
}

#[test]
fn namesrv_config_get_and_update() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &[]);
    let mut client = server.connect();
    let get = || request(RequestCode::GetNamesrvConfig, SerializeType::Json, &[]);
    let text = String::from_utf8(client.call(&get()).body.to_vec()).unwrap();
    assert!(text.contains("orderMessageEnable=false"));

    let mut update = request(RequestCode::UpdateNamesrvConfig, SerializeType::Json, &[]);
    update.body = bytes::Bytes::from_static(b"orderMessageEnable=true\n");
    assert_eq!(client.call(&update).code, 0);
    let text = String::from_utf8(client.call(&get()).body.to_vec()).unwrap();
    assert!(text.contains("orderMessageEnable=true"));

    let mut refused = request(
        RequestCode::UpdateNamesrvConfig,
        SerializeType::RocketMq,
        &[],
    );
    refused.body = bytes::Bytes::from_static(b"kvConfigPath=/tmp/elsewhere\n");
    let response = client.call(&refused);
    assert_eq!(response.code, ResponseCode::NoPermission.as_i32());
    assert!(response.remark.unwrap().contains("kvConfigPath"));
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &["--max-connections", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    assert!(route(&mut first, "none", SerializeType::Json).is_err());
    assert!(route(&mut second, "none", SerializeType::Json).is_err());
    let mut third = server.connect();
    assert!(third.is_closed_by_server(), "a third connection is refused");
    // Once one closes, a new connection is served again.
    drop(first);
    common::eventually("a freed slot is reusable", || {
        let mut again = server.connect();
        again.send(&request(
            RequestCode::GetRouteinfoByTopic,
            SerializeType::Json,
            &[("topic", "none")],
        ));
        !again.is_closed_by_server_quick()
    });
}

/// Regression guard for the decoder path: well-framed frames with random header words and
/// bytes (both serialize types, random lengths) never take the server down.
#[test]
fn random_frames_never_kill_the_server() {
    let (_dir, kv) = kv_path();
    let mut server = Server::start(&kv, &[]);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..64 {
        let mut conn = server.connect();
        let content_len = (next() % 200) as usize + 4;
        let mut frame = Vec::with_capacity(4 + content_len);
        frame.extend_from_slice(&(content_len as u32).to_be_bytes());
        let kind = (next() % 2) as u32;
        let header_len = (next() % content_len as u64) as u32;
        frame.extend_from_slice(&((kind << 24) | header_len).to_be_bytes());
        frame.extend((4..content_len).map(|_| next() as u8));
        conn.stream.write_all(&frame).unwrap();
        // Each frame is answered (possibly with an error) or closes the connection; either
        // way the process lives on. Close our side without waiting.
    }
    assert!(server.is_running());
    let mut client = server.connect();
    master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register(&mut client);
    assert!(route(&mut client, "T", SerializeType::Json).is_ok());
}

#[test]
fn idle_connections_are_closed() {
    let (_dir, kv) = kv_path();
    let server = Server::start(&kv, &["--connection-idle-ms", "300"]);
    let mut idle = server.connect();
    assert!(route(&mut idle, "none", SerializeType::Json).is_err());
    // Say nothing more: the server closes the connection after the idle limit.
    assert!(idle.is_closed_by_server());
}
