//! SIGKILL tests: a child process appends in `async` or `sync` mode and prints every
//! acknowledged append; the parent kills it with SIGKILL mid-stream, reopens the store and
//! checks that every acknowledged record is there, byte for byte.
//!
//! The child is this test binary itself, re-executed on the ignored `child_appender` test
//! with the data directory and flush mode in environment variables.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ringmq_broker::store::io::{StdFs, block_on};
use ringmq_broker::store::{AppendMessage, FlushMode, GetMessage, GetStatus, Store, StoreConfig};

const DIR_ENV: &str = "RINGMQ_KILL_TEST_DIR";
const MODE_ENV: &str = "RINGMQ_KILL_TEST_MODE";
/// Appends the child makes at most (it is normally killed long before).
const CHILD_APPENDS_MAX: u64 = 2_000_000;
/// Acknowledgements the parent waits for before killing.
const ACKS_BEFORE_KILL: usize = 2_000;

fn body_of(i: u64) -> Vec<u8> {
    format!("message-{i:010}-").repeat(20).into_bytes()
}

fn config(dir: &std::path::Path, mode: FlushMode) -> StoreConfig {
    StoreConfig {
        flush_mode: mode,
        segment_bytes: 1 << 20,
        ..StoreConfig::for_tests(dir)
    }
}

#[test]
#[ignore = "helper process for the SIGKILL tests; started by them"]
fn child_appender() {
    let dir = std::env::var(DIR_ENV).expect("child needs its data directory");
    let mode: FlushMode = std::env::var(MODE_ENV)
        .expect("child needs a mode")
        .parse()
        .unwrap();
    let mut store = block_on(Store::open(StdFs, config(dir.as_ref(), mode))).unwrap();
    let mut pending = Vec::new();
    let mut out = std::io::stdout().lock();
    for i in 0..CHILD_APPENDS_MAX {
        let body = body_of(i);
        let queue = (i % 4) as i32;
        let ticket = store
            .append(&AppendMessage::new("KillTopic", queue, &body))
            .unwrap();
        pending.push((i, queue, ticket));
        if i % 8 == 7 {
            block_on(store.commit_step()).unwrap();
            for (i, queue, t) in pending.drain(..) {
                assert!(store.is_acknowledged(&t));
                use std::io::Write;
                writeln!(
                    out,
                    "ACK {i} {queue} {} {}",
                    t.queue_offset, t.physical_offset
                )
                .unwrap();
            }
            use std::io::Write;
            out.flush().unwrap();
        }
        if i % 512 == 0 {
            block_on(store.persist_step()).unwrap();
        }
    }
}

fn kill_and_check(mode: FlushMode, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_appender",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir.path())
        .env(MODE_ENV, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: Vec<(u64, i32, u64, u64)> = Vec::new();
    let parse = |line: &str| -> Option<(u64, i32, u64, u64)> {
        let mut it = line.strip_prefix("ACK ")?.split(' ');
        Some((
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        ))
    };
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = parse(&line) {
            acked.push(a);
        }
        if acked.len() >= ACKS_BEFORE_KILL {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acks printed before the kill landed count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acked.push(a);
        }
    }
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "child stopped early: {} acks",
        acked.len()
    );

    let store = block_on(Store::open(StdFs, config(dir.path(), mode))).unwrap();
    assert!(store.recovered_from_crash);
    let mut found: HashMap<(i32, u64), (u64, Vec<u8>)> = HashMap::new();
    for queue in 0..4 {
        let mut offset = store.min_offset("KillTopic", queue);
        loop {
            let res = block_on(store.get_message(&GetMessage {
                topic: "KillTopic",
                queue_id: queue,
                offset,
                max_count: 32,
                max_bytes: usize::MAX,
                tag_codes: None,
                file_ranges: false,
            }))
            .unwrap();
            if res.status != GetStatus::Found {
                break;
            }
            for r in &res.records {
                let msg = block_on(store.read_message_at(r.physical_offset))
                    .unwrap()
                    .unwrap();
                found.insert(
                    (queue, r.queue_offset),
                    (r.physical_offset, msg.body().to_vec()),
                );
            }
            offset = res.next_offset;
        }
    }
    for (i, queue, queue_offset, phys) in &acked {
        let Some((got_phys, body)) = found.get(&(*queue, *queue_offset)) else {
            panic!("{name}: acknowledged message {i} (queue {queue} offset {queue_offset}) lost");
        };
        assert_eq!(got_phys, phys, "{name}: message {i} moved");
        assert_eq!(body, &body_of(*i), "{name}: message {i} changed");
    }
    let report = block_on(ringmq_broker::store::verify::verify(
        &StdFs,
        dir.path(),
        1 << 20,
    ))
    .unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
}

#[test]
fn sigkill_loses_no_acknowledged_message_async() {
    kill_and_check(FlushMode::Async, "async");
}

#[test]
fn sigkill_loses_no_acknowledged_message_sync() {
    kill_and_check(FlushMode::Sync, "sync");
}
