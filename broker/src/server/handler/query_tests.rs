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

/// A store whose disk reads wait for a gate: a slow disk, to show that a query in flight
/// does not hold up other requests on the shard.
mod slow_disk {
    use std::cell::Cell;
    use std::rc::Rc;

    use bytes::Bytes;

    use crate::server::mem_store::MemStore;
    use crate::server::store::*;

    pub(super) struct GatedStore {
        pub inner: MemStore,
        pub gate: Rc<Cell<bool>>,
    }

    /// Resolves to `value` once the gate opens.
    async fn after_gate<T>(gate: Rc<Cell<bool>>, value: T) -> T {
        std::future::poll_fn(|_| {
            if gate.get() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        value
    }

    impl ShardStore for GatedStore {
        fn append(&mut self, message: PutMessage) -> Result<Appended, StoreError> {
            self.inner.append(message)
        }
        fn durable_offset(&self) -> u64 {
            self.inner.durable_offset()
        }
        fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
            self.inner.min_offset(topic, queue_id)
        }
        fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
            self.inner.max_offset(topic, queue_id)
        }
        fn get(&self, read: &QueueRead<'_>) -> Result<QueueReadResult, StoreError> {
            self.inner.get(read)
        }
        fn read_at(&self, physical_offset: i64) -> Result<Bytes, StoreError> {
            self.inner.read_at(physical_offset)
        }
        fn read_record(&self, physical_offset: i64) -> RecordRead {
            let result = self.inner.read_at(physical_offset);
            RecordRead::Pending(Box::pin(after_gate(self.gate.clone(), result)))
        }
        fn query_by_key_read(
            &self,
            topic: &str,
            key: &str,
            max: usize,
            begin_ms: i64,
            end_ms: i64,
        ) -> RecordsRead {
            let result = self.inner.query_by_key(topic, key, max, begin_ms, end_ms);
            RecordsRead::Pending(Box::pin(after_gate(self.gate.clone(), result)))
        }
        fn is_hot(&self, topic: &str, queue_id: i32, offset: i64) -> bool {
            self.inner.is_hot(topic, queue_id, offset)
        }
        fn offset_by_time(&self, topic: &str, queue_id: i32, ts: i64, b: Boundary) -> i64 {
            self.inner.offset_by_time(topic, queue_id, ts, b)
        }
        fn store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
            self.inner.store_time(topic, queue_id, offset)
        }
        fn query_by_key(
            &self,
            topic: &str,
            key: &str,
            max: usize,
            begin_ms: i64,
            end_ms: i64,
        ) -> Result<Vec<Bytes>, StoreError> {
            self.inner.query_by_key(topic, key, max, begin_ms, end_ms)
        }
        fn commit_log_min_offset(&self) -> i64 {
            self.inner.commit_log_min_offset()
        }
        fn commit_log_max_offset(&self) -> i64 {
            self.inner.commit_log_max_offset()
        }
        fn delete_topic(&mut self, topic: &str) {
            self.inner.delete_topic(topic)
        }
    }
}

#[test]
fn a_slow_query_read_does_not_hold_up_a_send_on_the_same_shard() {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    use crate::config::BrokerConfig;
    use crate::server::deferred::test_spawner::ManualTasks;
    use crate::server::mem_store::{MemStore, test_addr};
    use crate::server::state::ShardIdentity;

    let config = BrokerConfig::standalone();
    let now = 1_700_000_000_000;
    let gate = Rc::new(Cell::new(false));
    let store = slow_disk::GatedStore {
        inner: MemStore::new(),
        gate: gate.clone(),
    };
    let identity = ShardIdentity::of(&config, 0, test_addr(10911));
    let mut state = ShardState::new(identity, Arc::new(config), store, now);
    let tasks = ManualTasks::default();
    let kicked = Rc::new(Cell::new(0));
    let k = kicked.clone();
    state
        .deferred
        .install(tasks.spawner(), Rc::new(move || k.set(k.get() + 1)));

    let sent = state
        .handle(CONN, send_request("T", 0, b"old", &[("KEYS", "k1")]), now)
        .expect("send answered");
    let id = SendMessageResponseHeader::decode(&sent)
        .expect("header")
        .msg_id;
    let (_, offset) = parse_offset_msg_id(&id).expect("id");

    // Two queries go to the (slow) disk: no answer yet.
    let view = request_with(
        RequestCode::ViewMessageById,
        &ViewMessageRequestHeader {
            topic: None,
            offset,
        },
    );
    let view_opaque = view.opaque;
    assert!(state.handle(CONN, view, now).is_none(), "view deferred");
    let query = query_key("k1");
    let query_opaque = query.opaque;
    assert!(state.handle(CONN, query, now).is_none(), "query deferred");
    assert_eq!(tasks.run(), 2, "both reads still waiting for the disk");
    assert_eq!(state.deferred.running(), 2);

    // Meanwhile a send on the same shard is answered at once.
    let second = state
        .handle(CONN, send_request("T", 0, b"new", &[]), now)
        .expect("send answered while the reads wait");
    assert_eq!(second.code, 0);
    state.tick(now);
    assert!(
        state
            .take_outbox()
            .iter()
            .all(|o| o.command.opaque != view_opaque),
        "no query answer before its read completes"
    );

    // The disk answers: the task finishes, kicks the server, and the tick answers.
    gate.set(true);
    assert_eq!(tasks.run(), 0);
    assert_eq!(kicked.get(), 2);
    state.tick(now);
    let out = state.take_outbox();
    let view_answer = out
        .iter()
        .find(|o| o.command.opaque == view_opaque)
        .expect("view answered");
    assert_eq!(view_answer.conn, CONN.id);
    assert_eq!(view_answer.command.code, 0);
    assert_eq!(&records(&view_answer.command.body)[0].body()[..], b"old");
    let query_answer = out
        .iter()
        .find(|o| o.command.opaque == query_opaque)
        .expect("query answered");
    assert_eq!(query_answer.command.code, 0);
    assert_eq!(records(&query_answer.command.body).len(), 1);
}

#[test]
fn deferred_reads_past_the_limit_are_answered_busy() {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    use crate::config::BrokerConfig;
    use crate::server::deferred::{DEFERRED_TASKS_MAX, test_spawner::ManualTasks};
    use crate::server::mem_store::{MemStore, test_addr};
    use crate::server::state::ShardIdentity;

    let config = BrokerConfig::standalone();
    let now = 1_700_000_000_000;
    let store = slow_disk::GatedStore {
        inner: MemStore::new(),
        gate: Rc::new(Cell::new(false)),
    };
    let identity = ShardIdentity::of(&config, 0, test_addr(10911));
    let mut state = ShardState::new(identity, Arc::new(config), store, now);
    let tasks = ManualTasks::default();
    state.deferred.install(tasks.spawner(), Rc::new(|| {}));
    for _ in 0..DEFERRED_TASKS_MAX {
        assert!(state.handle(CONN, query_key("k"), now).is_none());
    }
    let busy = state
        .handle(CONN, query_key("k"), now)
        .expect("refused at once");
    assert_eq!(busy.code, ResponseCode::SystemBusy.as_i32());
}
