use crate::server::store::ShardStore;
use ringmq_wire::body::heartbeat::{HeartbeatData, ProducerData};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::SendMessageResponseHeader;
use ringmq_wire::header::transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, commit_or_rollback,
};
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::record::{StoredMessage, sys_flag};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::config::BrokerConfig;
use crate::features::transaction::{CONSUMER_GROUP, parse_op_body};
use crate::server::handler::testing::*;
use crate::server::state::Outgoing;

const HALF: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
const OP: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";

/// Where a half message went: its half-queue offset and CommitLog offset.
#[derive(Debug, Clone, Copy)]
struct Half {
    queue_offset: i64,
    physical: i64,
}

fn send_half(shard: &mut TestShard, topic: &str, queue_id: i32, uniq: &str) -> Half {
    let response = shard.call(send_request(
        topic,
        queue_id,
        uniq.as_bytes(),
        &[
            ("TRAN_MSG", "true"),
            ("PGROUP", "PG"),
            ("UNIQ_KEY", uniq),
            ("TAGS", "TagA"),
        ],
    ));
    assert_eq!(response.code, 0, "half send failed: {:?}", response.remark);
    let header = SendMessageResponseHeader::decode(&response).expect("send response");
    let (_, physical) = parse_offset_msg_id(&header.msg_id).expect("offset msg id");
    Half {
        queue_offset: header.queue_offset,
        physical,
    }
}

fn end_request(half: Half, outcome: i32, from_check: bool) -> RemotingCommand {
    request_with(
        RequestCode::EndTransaction,
        &EndTransactionRequestHeader {
            topic: Some("T".into()),
            producer_group: "PG".into(),
            tran_state_table_offset: half.queue_offset,
            commit_log_offset: half.physical,
            commit_or_rollback: outcome,
            from_transaction_check: Some(from_check),
            msg_id: "U".into(),
            transaction_id: Some("U".into()),
            rpc: Default::default(),
        },
    )
}

fn record_at(shard: &TestShard, topic: &str, queue_id: i32, offset: i64) -> StoredMessage {
    let entry = shard.state.store.entries(topic, queue_id, offset, 1)[0];
    let raw = shard
        .state
        .store
        .read_at(entry.physical_offset)
        .expect("stored record");
    StoredMessage::decode(&raw, true).expect("valid record")
}

fn op_offsets(shard: &TestShard) -> Vec<Vec<i64>> {
    let end = shard.state.store.max_offset(OP, 0);
    (0..end)
        .map(|i| {
            let op = record_at(shard, OP, 0, i);
            assert_eq!(op.tags(), Some("d"));
            parse_op_body(&op.body())
        })
        .collect()
}

fn producer_heartbeat(shard: &mut TestShard, conn_id: u64) {
    let data = HeartbeatData {
        client_id: format!("127.0.0.1@producer-{conn_id}"),
        producer_data_set: vec![ProducerData {
            group_name: "PG".into(),
        }],
        ..HeartbeatData::default()
    };
    let request = RemotingCommand::request(RequestCode::HeartBeat).with_body(data.encode());
    let response = shard
        .call_on(other_conn(conn_id), request)
        .expect("heartbeat answered");
    assert_eq!(response.code, 0);
}

fn checks(outbox: Vec<Outgoing>) -> Vec<(u64, CheckTransactionStateRequestHeader, StoredMessage)> {
    outbox
        .into_iter()
        .filter(|o| o.command.code == RequestCode::CheckTransactionState.as_i32())
        .map(|o| {
            assert!(o.command.is_oneway(), "checks are sent oneway");
            let header = CheckTransactionStateRequestHeader::decode(&o.command).expect("header");
            let record = StoredMessage::decode(&o.command.body, true).expect("record body");
            (o.conn.0, header, record)
        })
        .collect()
}

fn quick_config() -> BrokerConfig {
    let mut config = BrokerConfig::standalone();
    config.transaction.timeout_ms = 1_000;
    config.transaction.check_interval_ms = 500;
    config.transaction.check_max = 3;
    config
}

#[test]
fn commit_puts_the_real_message_and_an_op_entry() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 2, "U1");
    assert_eq!(shard.state.store.max_offset("T", 2), 0, "half is invisible");
    let response = shard.call(end_request(half, commit_or_rollback::COMMIT, false));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(shard.state.store.max_offset("T", 2), 1);
    let real = record_at(&shard, "T", 2, 0);
    assert_eq!(real.body().as_ref(), b"U1");
    assert_eq!(
        real.layout.sys_flag & sys_flag::TRANSACTION_MASK,
        sys_flag::TRANSACTION_COMMIT
    );
    assert_eq!(real.layout.prepared_transaction_offset, half.physical);
    assert_eq!(real.property("TRAN_MSG"), Some("true"));
    assert_eq!(real.property("REAL_TOPIC"), None);
    assert_eq!(real.property("REAL_QID"), None);
    assert_eq!(real.uniq_key(), Some("U1"));
    let tag_entry = shard.state.store.entries("T", 2, 0, 1)[0];
    assert_eq!(
        tag_entry.tags_code,
        ringmq_wire::record::tag_hash_code(Some("TagA"))
    );
    assert_eq!(op_offsets(&shard), vec![vec![half.queue_offset]]);
    assert_eq!(shard.state.transactions.stats.commits, 1);
}

#[test]
fn rollback_writes_only_the_op_entry() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 0, "U1");
    let response = shard.call(end_request(half, commit_or_rollback::ROLLBACK, false));
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(shard.state.store.max_offset("T", 0), 0);
    assert_eq!(op_offsets(&shard), vec![vec![half.queue_offset]]);
    assert_eq!(shard.state.transactions.stats.rollbacks, 1);
}

#[test]
fn a_second_end_for_the_same_half_commits_nothing_more() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 0, "U1");
    assert_eq!(
        shard
            .call(end_request(half, commit_or_rollback::COMMIT, false))
            .code,
        0
    );
    for outcome in [commit_or_rollback::COMMIT, commit_or_rollback::ROLLBACK] {
        let response = shard.call(end_request(half, outcome, true));
        assert_eq!(response.code, 0);
        assert!(
            response
                .remark
                .unwrap_or_default()
                .contains("already decided")
        );
    }
    assert_eq!(shard.state.store.max_offset("T", 0), 1, "committed once");
    assert_eq!(op_offsets(&shard).len(), 1);
    assert_eq!(shard.state.transactions.stats.duplicate_ends, 2);
}

#[test]
fn oneway_end_commits_without_a_reply() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 0, "U1");
    let mut request = end_request(half, commit_or_rollback::COMMIT, false);
    request.set_oneway();
    assert!(shard.call_raw(request).is_none());
    assert_eq!(shard.state.store.max_offset("T", 0), 1);
    assert!(shard.outbox().is_empty(), "nothing deferred either");
}

#[test]
fn unknown_state_changes_nothing() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 0, "U1");
    let response = shard.call(end_request(half, commit_or_rollback::NOT_TYPE, false));
    assert_eq!(response.code, 0);
    assert!(response.remark.unwrap_or_default().contains("check back"));
    assert_eq!(shard.state.store.max_offset("T", 0), 0);
    assert_eq!(shard.state.store.max_offset(OP, 0), 0);
}

#[test]
fn ends_that_do_not_match_a_half_message_are_refused_with_the_reason() {
    let mut shard = TestShard::new();
    let half = send_half(&mut shard, "T", 0, "U1");
    let plain = shard.call(send_request("T", 0, b"plain", &[]));
    let plain_header = SendMessageResponseHeader::decode(&plain).expect("header");
    let (_, plain_physical) = parse_offset_msg_id(&plain_header.msg_id).expect("id");
    let cases: Vec<(RemotingCommand, &str)> = vec![
        (
            end_request(
                Half {
                    queue_offset: 0,
                    physical: 987_654,
                },
                commit_or_rollback::COMMIT,
                false,
            ),
            "Find prepared transaction message failed",
        ),
        (
            end_request(
                Half {
                    queue_offset: 0,
                    physical: plain_physical,
                },
                commit_or_rollback::COMMIT,
                false,
            ),
            "not a half message",
        ),
        (
            end_request(
                Half {
                    queue_offset: 5,
                    physical: half.physical,
                },
                commit_or_rollback::ROLLBACK,
                false,
            ),
            "transaction state table offset wrong",
        ),
        (
            {
                let mut request = end_request(half, commit_or_rollback::COMMIT, false);
                request
                    .ext_fields
                    .insert("producerGroup".into(), "OTHER".into());
                request
            },
            "producer group wrong",
        ),
        (
            end_request(half, 5, false),
            "commitOrRollback 5 is not a transaction outcome",
        ),
    ];
    for (request, reason) in cases {
        let response = shard.call(request);
        assert_eq!(
            response.code,
            ResponseCode::SystemError.as_i32(),
            "{reason}"
        );
        let remark = response.remark.unwrap_or_default();
        assert!(remark.contains(reason), "{remark:?} lacks {reason:?}");
    }
    assert_eq!(shard.state.store.max_offset(OP, 0), 0, "nothing decided");
    let response = shard.call(without(
        end_request(half, commit_or_rollback::COMMIT, false),
        "commitLogOffset",
    ));
    assert_names_field(&response, "commitLogOffset");
}

#[test]
fn an_undecided_half_is_checked_back_and_committed_from_the_check() {
    let mut shard = TestShard::with_config(quick_config());
    producer_heartbeat(&mut shard, 7);
    let half = send_half(&mut shard, "T", 3, "U1");
    shard.now_ms = 1_700_000_000_000; // the born time send_request writes
    shard.advance(600);
    assert!(checks(shard.outbox()).is_empty(), "too young to check");
    shard.advance(1_000);
    let mut sent = checks(shard.outbox());
    assert_eq!(sent.len(), 1);
    let (conn, header, record) = sent.remove(0);
    assert_eq!(conn, 7, "sent to the producer's connection");
    assert_eq!(header.msg_id.as_deref(), Some("U1"));
    assert_eq!(header.topic.as_deref(), Some("T"));
    assert!(
        header.tran_state_table_offset > half.queue_offset,
        "a new copy"
    );
    assert_eq!(record.topic(), "T");
    assert_eq!(record.layout.queue_id, 3);
    assert_eq!(record.property("TRANSACTION_CHECK_TIMES"), Some("1"));
    assert_eq!(record.property("PGROUP"), Some("PG"));
    assert_eq!(record.layout.physical_offset, header.commit_log_offset);
    assert_eq!(record.body().as_ref(), b"U1");
    let copy = Half {
        queue_offset: header.tran_state_table_offset,
        physical: header.commit_log_offset,
    };
    assert_eq!(
        shard
            .call(end_request(copy, commit_or_rollback::COMMIT, true))
            .code,
        0
    );
    assert_eq!(shard.state.store.max_offset("T", 3), 1);
    assert_eq!(
        op_offsets(&shard),
        vec![vec![copy.queue_offset, half.queue_offset]]
    );
    // The producer's own end for the first copy arrives late: already decided.
    let late = shard.call(end_request(half, commit_or_rollback::COMMIT, false));
    assert!(late.remark.unwrap_or_default().contains("already decided"));
    assert_eq!(shard.state.store.max_offset("T", 3), 1);
    shard.advance(5_000);
    assert!(checks(shard.outbox()).is_empty(), "decided: no more checks");
    let progress = shard.state.offsets.query(CONSUMER_GROUP, HALF, 0);
    assert_eq!(progress, Some(shard.state.store.max_offset(HALF, 0)));
}

#[test]
fn a_half_checked_check_max_times_moves_to_the_check_max_topic() {
    let mut shard = TestShard::with_config(quick_config());
    shard.now_ms = 1_700_000_000_000;
    send_half(&mut shard, "T", 0, "U1");
    // No producer connected: checks are counted anyway, as RocketMQ does.
    for _ in 0..4 {
        shard.advance(1_100);
    }
    let stats = shard.state.transactions.stats;
    assert_eq!(stats.checks_without_producer, 3);
    assert_eq!(stats.discarded, 1);
    let moved = record_at(&shard, "TRANS_CHECK_MAX_TIME_TOPIC", 0, 0);
    assert_eq!(moved.uniq_key(), Some("U1"));
    assert_eq!(moved.property("TRANSACTION_CHECK_TIMES"), Some("3"));
    assert!(
        shard
            .state
            .topics
            .get("TRANS_CHECK_MAX_TIME_TOPIC")
            .is_some()
    );
    shard.advance(5_000);
    assert_eq!(shard.state.transactions.stats.discarded, 1, "moved once");
    assert_eq!(shard.state.store.max_offset("T", 0), 0);
}

#[test]
fn decided_offsets_are_rebuilt_from_the_op_queue() {
    let mut shard = TestShard::with_config(quick_config());
    let half = send_half(&mut shard, "T", 0, "U1");
    assert_eq!(
        shard
            .call(end_request(half, commit_or_rollback::ROLLBACK, false))
            .code,
        0
    );
    // A fresh service over the same store (as after a restart) learns the decision from
    // the op queue.
    shard.state.transactions =
        crate::features::transaction::TransactionService::new(500, shard.now_ms);
    let again = shard.call(end_request(half, commit_or_rollback::COMMIT, false));
    assert!(again.remark.unwrap_or_default().contains("already decided"));
    assert_eq!(shard.state.store.max_offset("T", 0), 0);
}

#[test]
fn a_check_is_sent_only_once_its_half_copy_is_durable() {
    let mut shard = TestShard::with_config(quick_config());
    producer_heartbeat(&mut shard, 7);
    send_half(&mut shard, "T", 0, "U1");
    shard.state.store.set_auto_durable(false);
    shard.advance(1_600);
    assert!(
        checks(shard.outbox()).is_empty(),
        "an answer to this check could not find the copy yet"
    );
    let end = shard.state.store.commit_log_max_offset() as u64;
    shard.state.store.set_durable_offset(end);
    shard.state.after_requests(shard.now_ms);
    assert_eq!(checks(shard.outbox()).len(), 1);
    assert_eq!(shard.state.transactions.stats.checks_sent, 1);
}
