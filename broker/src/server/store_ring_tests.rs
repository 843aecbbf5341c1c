//! Tests of the ring mode of [`super::RealStore`] on a real shard: metadata snapshots as ring
//! jobs (coalescing, the acknowledgement fence, the last state written at shutdown) and
//! pulls that need a ConsumeQueue page evicted from memory (read on the ring, answered
//! later).

use std::rc::Rc;
use std::sync::Arc;

use ringmq_wire::RemotingCommand;
use ringmq_wire::body::topic::TopicConfig;

use super::*;
use crate::config::BrokerConfig;
use crate::runtime::{RuntimeConfig, Shard, spawn_local, yield_now};
use crate::server::handler::testing::{CONN, pull_request, records, send_request};
use crate::server::mem_store::test_addr;
use crate::server::state::{ShardIdentity, ShardState};
use crate::store::io::StdFs;
use crate::store::uring::UringFs;

const NOW: u64 = 1_700_000_000_000;

fn ring_state(store_config: StoreConfig) -> ShardState<RealStore<UringFs>> {
    let mut store = RealStore::open_on_ring(UringFs::new(), store_config).expect("store opens");
    store.set_commit_notify(Rc::new(|| {}));
    let config = BrokerConfig::standalone();
    let identity = ShardIdentity::of(&config, 0, test_addr(10911));
    let mut state = ShardState::new(identity, Arc::new(config), store, NOW);
    state
        .deferred
        .install(Rc::new(|task| drop(spawn_local(task))), Rc::new(|| {}));
    state
}

fn test_config(dir: &std::path::Path) -> StoreConfig {
    let mut config = StoreConfig::for_tests(dir);
    config.store_host = test_addr(10911);
    config
}

/// Ticks (letting the shard's tasks run) until `done` holds.
async fn until(
    state: &mut ShardState<RealStore<UringFs>>,
    mut done: impl FnMut(&mut ShardState<RealStore<UringFs>>) -> bool,
) {
    for _ in 0..200_000 {
        if done(state) {
            return;
        }
        state.tick(NOW);
        yield_now().await;
    }
    panic!("condition not reached");
}

/// Ticks until a response with `opaque` is in the outbox.
async fn answer_of(state: &mut ShardState<RealStore<UringFs>>, opaque: i32) -> RemotingCommand {
    let mut found = None;
    until(state, |s| {
        found = s
            .take_outbox()
            .into_iter()
            .find(|o| o.command.opaque == opaque)
            .map(|o| o.command);
        found.is_some()
    })
    .await;
    found.expect("answered")
}

#[test]
fn metadata_snapshots_go_through_the_ring_coalesce_and_survive_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Ok(shard) = Shard::new(&RuntimeConfig::for_tests()) else {
        eprintln!("skipping: io_uring unavailable");
        return;
    };
    shard.block_on(async {
        let mut state = ring_state(test_config(dir.path()));
        state
            .topics
            .create_or_update(TopicConfig::new("First", 4), NOW)
            .expect("topic");
        state.persist_meta().expect("save");
        // The job runs on the ring: the shard was not blocked, the snapshot is not out yet.
        assert_eq!(state.store.meta_jobs_started(), 1);
        assert!(state.store.inner().meta_persist_in_flight());
        // Two changes while it is in flight coalesce into exactly one more job.
        state.offsets.commit("G", "First", 1, 7);
        state.persist_meta().expect("save while in flight");
        state
            .topics
            .create_or_update(TopicConfig::new("Second", 2), NOW)
            .expect("topic");
        state.persist_meta().expect("save while in flight");
        assert_eq!(state.store.meta_jobs_started(), 1);
        until(&mut state, |s| {
            !s.store.inner().meta_persist_in_flight() && !s.store.inner().meta().is_dirty()
        })
        .await;
        assert_eq!(state.store.meta_jobs_started(), 2);
        // A last change right before the stop: drained on the ring, then the clean close.
        state.offsets.commit("G", "First", 1, 9);
        state.persist_meta().expect("last save");
        while state.store.drain_commits() {
            yield_now().await;
        }
        state.persist_meta().expect("shutdown save");
        state.store.shutdown().expect("clean shutdown");
    });
    assert!(!dir.path().join("config/topics.rkyv.tmp").exists());
    let store = RealStore::open(StdFs, test_config(dir.path())).expect("reopen");
    let meta = store.load_meta();
    for name in ["First", "Second"] {
        assert!(
            meta.topics.iter().any(|t| t.topic_name == name),
            "{name} survives"
        );
    }
    assert_eq!(
        meta.offsets
            .get(&("First".to_owned(), "G".to_owned()))
            .and_then(|q| q.get(&1)),
        Some(&9)
    );
}

#[test]
fn a_send_is_not_acknowledged_before_a_topic_change_saved_with_it_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Ok(shard) = Shard::new(&RuntimeConfig::for_tests()) else {
        eprintln!("skipping: io_uring unavailable");
        return;
    };
    shard.block_on(async {
        let mut state = ring_state(test_config(dir.path()));
        let send = send_request("Fenced", 0, b"held", &[]);
        assert!(state.handle(CONN, send, NOW).is_none());
        let before = state.store.durable_offset();
        state
            .topics
            .create_or_update(TopicConfig::new("Fenced", 4), NOW)
            .expect("topic");
        state.persist_meta().expect("save");
        state.after_requests(NOW);
        let mut fenced_steps = 0;
        until(&mut state, |s| {
            if s.store.inner().meta_config_pending() {
                // Nothing past what was acknowledged at the change is acknowledged now.
                assert_eq!(s.store.durable_offset(), before);
                fenced_steps += 1;
            }
            !s.store.inner().meta_config_pending()
                && s.store.durable_offset() == s.store.inner().ack_offset()
                && !s.store.inner().commit_in_flight()
        })
        .await;
        assert!(fenced_steps > 0, "the change was pending at least once");
        assert!(state.store.durable_offset() > before);
        while state.store.drain_commits() {
            yield_now().await;
        }
        state.store.shutdown().expect("clean shutdown");
    });
}

#[test]
fn a_pull_of_an_evicted_queue_page_reads_it_on_the_ring_and_answers_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Ok(shard) = Shard::new(&RuntimeConfig::for_tests()) else {
        eprintln!("skipping: io_uring unavailable");
        return;
    };
    shard.block_on(async {
        let mut config = test_config(dir.path());
        // 16 entries of memory: almost every entry is read back from the queue files.
        config.consume_queue_cache_bytes = 16 * 20;
        let mut state = ring_state(config);
        // Two queue files of 1000 entries: pages 0..1000 and 1000..1100.
        let n = 1100;
        for i in 0..n {
            let body = format!("body-{i:05}");
            assert!(
                state
                    .handle(CONN, send_request("Cold", 0, body.as_bytes(), &[]), NOW)
                    .is_none()
            );
            if i % 50 == 49 {
                state.after_requests(NOW);
                until(&mut state, |s| !s.store.inner().commit_in_flight()).await;
            }
        }
        state.after_requests(NOW);
        until(&mut state, |s| {
            s.store.inner().ack_offset() == s.store.inner().commit_log().append_offset()
        })
        .await;
        // Persist on the ring until the queue's entries are written and evicted.
        until(&mut state, |s| {
            s.store.persist().expect("persist");
            !s.store.inner().persist_in_flight() && s.store.inner().queue_entries_in_memory() <= 16
        })
        .await;
        let (ring_before, blocking_before) = state.store.inner().queue_page_reads();
        // 0: page 0 is read on the ring; 990: page 0 is cached, page 1000 is read on the
        // ring; 300: page 0 is cached, answered at once.
        for (offset, deferred) in [(0i64, true), (990, true), (300, false)] {
            let pull = pull_request("G", "Cold", 0, offset, "*", false);
            let opaque = pull.opaque;
            let answer = match state.handle(CONN, pull, NOW) {
                Some(answer) => {
                    assert!(!deferred, "pull at {offset} answered at once");
                    answer
                }
                None => {
                    assert!(deferred, "pull at {offset} deferred");
                    answer_of(&mut state, opaque).await
                }
            };
            assert_eq!(answer.code, 0, "{:?}", answer.remark);
            let got = records(&answer.body);
            assert_eq!(got.len(), 32);
            for (i, message) in got.iter().enumerate() {
                let want = format!("body-{:05}", offset + i as i64);
                assert_eq!(&message.body()[..], want.as_bytes());
            }
        }
        let (ring_after, blocking_after) = state.store.inner().queue_page_reads();
        // Every page came through the ring, none on the shard thread.
        assert_eq!(ring_after, ring_before + 2);
        assert_eq!(blocking_after, blocking_before);
        while state.store.drain_commits() {
            yield_now().await;
        }
        state.store.shutdown().expect("clean shutdown");
    });
}
