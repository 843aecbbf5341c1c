use std::sync::Arc;

use bytes::BytesMut;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::offset::QueryConsumerOffsetRequestHeader;
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};

use super::*;
use crate::config::BrokerConfig;
use crate::server::handler::testing::{pull_request, request_with, send_request};
use crate::server::mem_store::{MemStore, test_addr};
use crate::server::state::ShardIdentity;

const NOW: u64 = 1_700_000_000_000;

fn service(config: BrokerConfig) -> ShardService<MemStore> {
    let identity = ShardIdentity::of(&config, 0, test_addr(10911));
    ShardService::new(ShardState::new(
        identity,
        Arc::new(config),
        MemStore::new(),
        NOW,
    ))
}

fn frame(command: &RemotingCommand) -> Vec<u8> {
    command.encode_frame().expect("encodes").to_vec()
}

/// The bytes a connection writer would send: buffers as they are, file spans read from
/// their files.
pub(crate) fn written<S: ShardStore>(service: &mut ShardService<S>, conn: ConnId) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut out = Vec::new();
    while let Some(next) = service.take_writes(conn) {
        match next {
            Outbound::Bytes(bytes) => out.extend_from_slice(&bytes),
            Outbound::File(span) => {
                let file = std::fs::File::open(&*span.path).expect("segment opens");
                let mut buf = vec![0; span.len as usize];
                file.read_exact_at(&mut buf, span.offset)
                    .expect("span readable");
                out.extend_from_slice(&buf);
            }
        }
    }
    out
}

fn responses(service: &mut ShardService<MemStore>, conn: ConnId) -> Vec<RemotingCommand> {
    let mut decoder = FrameDecoder::default();
    decoder.extend(&written(service, conn));
    let mut out = Vec::new();
    while let Some(command) = decoder.next_command().expect("valid frames") {
        out.push(command);
    }
    out
}

fn query_offset() -> RemotingCommand {
    request_with(
        RequestCode::QueryConsumerOffset,
        &QueryConsumerOffsetRequestHeader {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            set_zero_if_not_found: None,
            rpc: Default::default(),
        },
    )
}

#[test]
fn responses_are_matched_by_opaque_and_a_parked_pull_does_not_block_the_socket() {
    let mut svc = service(BrokerConfig::standalone());
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    let send = send_request("T", 0, b"first", &[]);
    svc.on_read(conn, &frame(&send), NOW).expect("ok");
    assert_eq!(responses(&mut svc, conn)[0].opaque, send.opaque);

    let pull = pull_request("G", "T", 0, 1, "*", true);
    let query = query_offset();
    let mut bytes = frame(&pull);
    bytes.extend(frame(&query));
    svc.on_read(conn, &bytes, NOW).expect("ok");
    let got = responses(&mut svc, conn);
    assert_eq!(
        got.len(),
        1,
        "only the query is answered; the pull is parked"
    );
    assert_eq!(got[0].opaque, query.opaque);

    let second = send_request("T", 0, b"second", &[]);
    svc.on_read(conn, &frame(&second), NOW).expect("ok");
    let got = responses(&mut svc, conn);
    let opaques: Vec<i32> = got.iter().map(|r| r.opaque).collect();
    assert!(opaques.contains(&pull.opaque) && opaques.contains(&second.opaque));
    let pulled = got
        .iter()
        .find(|r| r.opaque == pull.opaque)
        .expect("pull answered");
    assert_eq!(pulled.code, 0);
}

#[test]
fn frames_split_across_reads_are_reassembled() {
    let mut svc = service(BrokerConfig::standalone());
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    let bytes = frame(&query_offset());
    let (a, b) = bytes.split_at(7);
    svc.on_read(conn, a, NOW).expect("ok");
    assert!(svc.take_writes(conn).is_none());
    svc.on_read(conn, b, NOW).expect("ok");
    assert_eq!(responses(&mut svc, conn).len(), 1);
}

#[test]
fn oneway_requests_get_no_reply() {
    let mut svc = service(BrokerConfig::standalone());
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    let mut request = query_offset();
    request.set_oneway();
    svc.on_read(conn, &frame(&request), NOW).expect("ok");
    assert!(svc.take_writes(conn).is_none());
}

#[test]
fn bad_frame_closes_only_that_connection() {
    let mut svc = service(BrokerConfig::standalone());
    let bad = svc.accept(test_addr(40000)).expect("accepted");
    let good = svc.accept(test_addr(40001)).expect("accepted");
    let result = svc.on_read(bad, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], NOW);
    assert!(matches!(result, Err(CloseReason::BadFrame(_))));
    svc.close(bad);
    let mut garbage_header = BytesMut::new();
    garbage_header.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 5]);
    garbage_header.extend_from_slice(b"{nope");
    let other = svc.accept(test_addr(40002)).expect("accepted");
    assert!(svc.on_read(other, &garbage_header, NOW).is_err());
    svc.on_read(good, &frame(&query_offset()), NOW)
        .expect("still served");
    assert_eq!(responses(&mut svc, good).len(), 1);
}

#[test]
fn connections_past_the_limit_are_refused() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_connections = 1;
    let mut svc = service(config);
    let first = svc.accept(test_addr(40000)).expect("accepted");
    assert!(svc.accept(test_addr(40001)).is_none());
    svc.close(first);
    assert!(svc.accept(test_addr(40002)).is_some());
}

#[test]
fn in_flight_limit_holds_further_requests_until_one_completes() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_in_flight_requests_per_connection = 1;
    let mut svc = service(config);
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    svc.on_read(conn, &frame(&send_request("T", 0, b"x", &[])), NOW)
        .expect("ok");
    responses(&mut svc, conn);
    let pull = pull_request("G", "T", 0, 1, "*", true);
    let query = query_offset();
    let mut bytes = frame(&pull);
    bytes.extend(frame(&query));
    svc.on_read(conn, &bytes, NOW).expect("ok");
    assert!(
        svc.take_writes(conn).is_none(),
        "query waits behind the parked pull"
    );
    let closes = svc.tick(NOW + 15_000);
    assert!(closes.is_empty());
    let got = responses(&mut svc, conn);
    let codes: Vec<(i32, i32)> = got.iter().map(|r| (r.opaque, r.code)).collect();
    assert_eq!(
        codes,
        vec![
            (pull.opaque, ResponseCode::PullNotFound.as_i32()),
            (query.opaque, 0)
        ]
    );
}

fn queue_offsets(responses: &[RemotingCommand]) -> Vec<i64> {
    responses
        .iter()
        .map(|r| {
            assert_eq!(r.code, 0, "{:?}", r.remark);
            ringmq_wire::header::send::SendMessageResponseHeader::decode(r)
                .expect("send response header")
                .queue_offset
        })
        .collect()
}

#[test]
fn deferred_commits_wait_for_the_progress_step_and_ack_in_append_order_once_durable() {
    let mut svc = service(BrokerConfig::standalone());
    svc.set_deferred_commits(true);
    svc.state.store.set_auto_durable(false);
    let a = svc.accept(test_addr(40000)).expect("accepted");
    let b = svc.accept(test_addr(40001)).expect("accepted");
    svc.on_read(a, &frame(&send_request("T", 0, b"a1", &[])), NOW)
        .expect("ok");
    let first_end = svc.state.store.commit_log_max_offset() as u64;
    svc.on_read(a, &frame(&send_request("T", 0, b"a2", &[])), NOW)
        .expect("ok");
    svc.on_read(b, &frame(&send_request("T", 0, b"b1", &[])), NOW)
        .expect("ok");
    assert_eq!(
        svc.state.store.commits(),
        0,
        "reads leave the group commit to the progress step"
    );
    assert!(svc.take_progress_due());
    assert!(!svc.take_progress_due(), "the flag clears");

    assert!(svc.on_progress(NOW).is_empty());
    assert_eq!(
        svc.state.store.commits(),
        1,
        "one commit covers what both connections appended"
    );
    assert!(svc.take_writes(a).is_none() && svc.take_writes(b).is_none());

    // The write holding the first record completed: its acknowledgement only.
    svc.state.store.set_durable_offset(first_end);
    assert!(svc.on_progress(NOW).is_empty());
    assert_eq!(queue_offsets(&responses(&mut svc, a)), vec![0]);
    assert!(
        svc.take_writes(b).is_none(),
        "b's record is not durable yet"
    );

    let end = svc.state.store.commit_log_max_offset() as u64;
    svc.state.store.set_durable_offset(end);
    assert!(svc.on_progress(NOW).is_empty());
    assert_eq!(queue_offsets(&responses(&mut svc, a)), vec![1]);
    assert_eq!(queue_offsets(&responses(&mut svc, b)), vec![2]);
}

#[test]
fn without_deferred_commits_each_read_commits_at_once() {
    let mut svc = service(BrokerConfig::standalone());
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    svc.on_read(conn, &frame(&send_request("T", 0, b"x", &[])), NOW)
        .expect("ok");
    assert_eq!(svc.state.store.commits(), 1);
    assert!(!svc.take_progress_due());
    assert_eq!(queue_offsets(&responses(&mut svc, conn)), vec![0]);
}

#[test]
fn the_progress_step_runs_and_commits_requests_a_held_connection_buffered() {
    let mut config = BrokerConfig::standalone();
    config.limits.max_in_flight_requests_per_connection = 1;
    let mut svc = service(config);
    svc.set_deferred_commits(true);
    let held = svc.accept(test_addr(40000)).expect("accepted");
    let other = svc.accept(test_addr(40001)).expect("accepted");
    svc.on_read(held, &frame(&send_request("T", 0, b"first", &[])), NOW)
        .expect("ok");
    assert_eq!(queue_offsets(&responses(&mut svc, held)), vec![0]);
    // A parked pull holds `held` at its limit; the send behind it waits in the decoder.
    let pull = pull_request("G", "T", 0, 1, "*", true);
    let mut bytes = frame(&pull);
    bytes.extend(frame(&send_request("T", 1, b"behind the pull", &[])));
    svc.on_read(held, &bytes, NOW).expect("ok");
    assert!(svc.take_writes(held).is_none());
    // A send on another connection wakes the pull: `held` may run its send now.
    svc.on_read(other, &frame(&send_request("T", 0, b"wake", &[])), NOW)
        .expect("ok");
    let commits = svc.state.store.commits();
    assert!(svc.on_progress(NOW).is_empty());
    assert!(
        svc.state.store.commits() > commits,
        "what the held connection appended is committed in the same step"
    );
    let got = responses(&mut svc, held);
    let codes: Vec<(i32, i32)> = got.iter().map(|r| (r.opaque, r.code)).collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert_eq!(codes[0], (pull.opaque, 0), "the woken pull first");
    assert_eq!(codes[1].1, 0, "then the send it held");
}

#[test]
fn closing_a_connection_removes_its_consumers() {
    let mut svc = service(BrokerConfig::standalone());
    let conn = svc.accept(test_addr(40000)).expect("accepted");
    let heartbeat = crate::server::handler::testing::heartbeat_request("c1", "G", "T", "*");
    svc.on_read(conn, &frame(&heartbeat), NOW).expect("ok");
    assert_eq!(svc.state.consumers.client_ids("G"), vec!["c1"]);
    svc.close(conn);
    assert!(svc.state.consumers.client_ids("G").is_empty());
    assert_eq!(svc.connections(), 0);
}

/// A service over the real store with no tail cache: every written record is cold.
fn cold_service(
    dir: &std::path::Path,
) -> ShardService<crate::server::store_adapter::RealStore<crate::store::io::StdFs>> {
    let mut config = BrokerConfig::standalone();
    config.store.splice_pulls = true;
    cold_service_with(dir, config)
}

fn cold_service_with(
    dir: &std::path::Path,
    config: BrokerConfig,
) -> ShardService<crate::server::store_adapter::RealStore<crate::store::io::StdFs>> {
    use crate::store::{StoreConfig, io::StdFs};
    let mut store_config = StoreConfig::for_tests(dir);
    store_config.direct_io = false;
    store_config.tail_cache_bytes = 0;
    store_config.store_host = test_addr(10911);
    let store =
        crate::server::store_adapter::RealStore::open(StdFs, store_config).expect("store opens");
    let identity = ShardIdentity::of(&config, 0, test_addr(10911));
    ShardService::new(ShardState::new(identity, Arc::new(config), store, NOW))
}

#[test]
fn cold_pull_bodies_are_file_spans_framed_with_their_length_among_memory_responses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut svc = cold_service(dir.path());
    let conn = svc.accept(test_addr(5000)).expect("accepted");
    let mut sends = Vec::new();
    for i in 0..20 {
        let body = format!("cold message {i} {}", "x".repeat(i * 7));
        sends.extend(frame(&send_request("T", 0, body.as_bytes(), &[])));
    }
    svc.on_read(conn, &sends, NOW).expect("sends");
    svc.tick(NOW);
    let acks = written(&mut svc, conn);
    assert!(!acks.is_empty(), "send acknowledgements");

    // One batch: a cold pull, a memory-only answer, another cold pull, a pull at the end.
    let mut batch = Vec::new();
    let mut first = pull_request("G", "T", 0, 0, "*", false);
    first.opaque = 101;
    let mut offset_query = query_offset();
    offset_query.opaque = 102;
    let mut second = pull_request("G", "T", 0, 12, "*", false);
    second.opaque = 103;
    let mut at_end = pull_request("G", "T", 0, 20, "*", false);
    at_end.opaque = 104;
    for request in [&first, &offset_query, &second, &at_end] {
        batch.extend(frame(request));
    }
    svc.on_read(conn, &batch, NOW).expect("pulls");
    // The writer sees file spans (sent with splice), not copies.
    let mut spans = 0;
    let mut bytes = Vec::new();
    while let Some(next) = svc.take_writes(conn) {
        match next {
            Outbound::Bytes(b) => bytes.extend_from_slice(&b),
            Outbound::File(span) => {
                spans += 1;
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0; span.len as usize];
                std::fs::File::open(&*span.path)
                    .expect("segment")
                    .read_exact_at(&mut buf, span.offset)
                    .expect("span readable");
                bytes.extend_from_slice(&buf);
            }
        }
    }
    // Records stored back to back are one span per response.
    assert_eq!(spans, 2);
    let mut decoder = FrameDecoder::default();
    decoder.extend(&bytes);
    let mut answers = Vec::new();
    while let Some(command) = decoder.next_command().expect("valid frames") {
        answers.push(command);
    }
    assert_eq!(decoder.buffered(), 0, "no stray bytes");
    let opaques: Vec<i32> = answers.iter().map(|a| a.opaque).collect();
    assert_eq!(opaques, vec![101, 102, 103, 104]);
    let got = |answer: &RemotingCommand| -> Vec<String> {
        ringmq_wire::record::decode_records(&answer.body, true, 64)
            .expect("records with good CRCs")
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body()).into_owned())
            .collect()
    };
    let first_bodies = got(&answers[0]);
    assert_eq!(first_bodies.len(), 20);
    assert_eq!(first_bodies[0], "cold message 0 ");
    let second_bodies = got(&answers[2]);
    assert_eq!(second_bodies.len(), 8);
    assert_eq!(
        second_bodies[7],
        format!("cold message 19 {}", "x".repeat(19 * 7))
    );
    assert_eq!(answers[3].response_code(), Some(ResponseCode::PullNotFound));
    // Each record is the stored bytes: it reads back identically by physical offset.
    for message in ringmq_wire::record::decode_records(&answers[2].body, true, 64).expect("records")
    {
        let stored = svc
            .state
            .store
            .read_at(message.layout.physical_offset)
            .expect("stored record");
        assert_eq!(stored, message.raw);
    }
}

#[test]
fn with_splice_pulls_off_cold_bodies_are_copied_into_the_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::standalone();
    config.store.splice_pulls = false;
    let mut svc = cold_service_with(dir.path(), config);
    let conn = svc.accept(test_addr(5000)).expect("accepted");
    let mut sends = Vec::new();
    for i in 0..5 {
        sends.extend(frame(&send_request(
            "T",
            0,
            format!("m{i}").as_bytes(),
            &[],
        )));
    }
    svc.on_read(conn, &sends, NOW).expect("sends");
    svc.tick(NOW);
    written(&mut svc, conn);
    svc.on_read(conn, &frame(&pull_request("G", "T", 0, 0, "*", false)), NOW)
        .expect("pull");
    let mut pieces = Vec::new();
    while let Some(next) = svc.take_writes(conn) {
        pieces.push(next);
    }
    assert_eq!(pieces.len(), 1, "one buffer, no file span: {pieces:?}");
    let Some(Outbound::Bytes(bytes)) = pieces.pop() else {
        panic!("expected bytes");
    };
    let mut decoder = FrameDecoder::default();
    decoder.extend(&bytes);
    let answer = decoder.next_command().expect("frame").expect("one frame");
    let messages = ringmq_wire::record::decode_records(&answer.body, true, 64).expect("records");
    assert_eq!(messages.len(), 5);
}
