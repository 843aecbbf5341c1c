//! Bad input against the real `ringmq-broker` binary, over plain sockets: garbage bytes and
//! an oversized frame close only their own connection; a request missing a required field
//! is answered with an error naming the field; an unknown request code is answered
//! `REQUEST_CODE_NOT_SUPPORTED` naming the code. A connection opened before all that keeps
//! being served, and new ones are accepted.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::offset::GetMaxOffsetRequestHeader;
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};
use support::{Broker, BrokerOptions, Namesrv, START_TIMEOUT, wait_for};

const NETWORK_WAIT: Duration = Duration::from_secs(20);

fn connect(addr: &str) -> TcpStream {
    let stream = wait_for("the broker to accept connections", START_TIMEOUT, || {
        TcpStream::connect(addr).ok()
    });
    stream
        .set_read_timeout(Some(NETWORK_WAIT))
        .expect("read timeout");
    stream
}

fn write(stream: &mut TcpStream, command: &RemotingCommand) {
    let bytes = command.encode_frame().expect("encodable");
    stream.write_all(&bytes).expect("write");
}

fn read(stream: &mut TcpStream) -> RemotingCommand {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("read length");
    let mut content = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut content).expect("read frame");
    RemotingCommand::decode(content.into()).expect("decode")
}

/// Whether the broker closed `stream` (EOF or reset) instead of answering.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn max_offset() -> RemotingCommand {
    let mut request = RemotingCommand::request(RequestCode::GetMaxOffset);
    GetMaxOffsetRequestHeader {
        topic: "AnyTopic".into(),
        queue_id: 0,
        committed: None,
        rpc: Default::default(),
    }
    .encode_into(&mut request);
    request
}

#[test]
fn bad_input_gets_the_right_error_and_other_connections_keep_being_served() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-bad".into(),
            shards: 1,
            ..BrokerOptions::default()
        },
    );
    let addr = broker.shard_addr(0);
    let mut good = connect(&addr);
    write(&mut good, &max_offset());
    assert_eq!(read(&mut good).code, ResponseCode::Success.as_i32());

    // Garbage: a length that is not followed by a valid header.
    let mut garbage = connect(&addr);
    garbage
        .write_all(&[
            0, 0, 0, 12, 0, 0, 0, 6, b'{', b'n', b'o', b'p', b'e', b'!', 0, 0,
        ])
        .expect("write");
    assert!(closed(&mut garbage), "garbage closes its connection");

    // A frame longer than any the broker accepts (the length is all it needs to see).
    let mut oversized = connect(&addr);
    oversized
        .write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 2, b'{', b'}'])
        .expect("write");
    assert!(
        closed(&mut oversized),
        "an oversized frame closes its connection"
    );

    // A request missing a required field: an error naming it, the connection stays.
    let mut missing = connect(&addr);
    let mut request = max_offset();
    request.ext_fields.remove("topic");
    write(&mut missing, &request);
    let response = read(&mut missing);
    assert_ne!(response.code, ResponseCode::Success.as_i32());
    assert!(
        response.remark.as_deref().unwrap_or("").contains("topic"),
        "{response:?}"
    );
    // An unknown code on the same connection.
    write(&mut missing, &RemotingCommand::request_raw(77_777));
    let response = read(&mut missing);
    assert_eq!(
        response.code,
        ResponseCode::RequestCodeNotSupported.as_i32()
    );
    assert!(
        response.remark.as_deref().unwrap_or("").contains("77777"),
        "{response:?}"
    );

    // The first connection and a new one are still served.
    write(&mut good, &max_offset());
    assert_eq!(read(&mut good).code, ResponseCode::Success.as_i32());
    let mut fresh = connect(&addr);
    write(&mut fresh, &max_offset());
    assert_eq!(read(&mut fresh).code, ResponseCode::Success.as_i32());
}
