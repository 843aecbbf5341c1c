//! Store tests: behaviour, fault injection over [`SimFs`], and property tests.

use std::path::Path;

use proptest::prelude::*;
use ringmq_wire::record::{Properties, property};

use super::io::{StdFs, block_on};
use super::sim::{RebootKind, SimFs, SimRng};
use super::*;

fn props(tag: &str, keys: &str, uniq: &str) -> Vec<u8> {
    let mut p = Properties::new();
    if !tag.is_empty() {
        p.insert(property::TAGS, tag);
    }
    if !keys.is_empty() {
        p.insert(property::KEYS, keys);
    }
    if !uniq.is_empty() {
        p.insert(property::UNIQ_KEY, uniq);
    }
    p.encode().unwrap().into_bytes()
}

fn sim_config(mode: FlushMode) -> StoreConfig {
    StoreConfig {
        flush_mode: mode,
        // A tiny queue memory budget: the fault, retention and property tests read most
        // queue entries back from the queue files.
        consume_queue_cache_bytes: 16 * consume_queue::CQ_ENTRY_BYTES as usize,
        ..StoreConfig::for_tests("/shard-0")
    }
}

/// Every visible record of every queue, as (physical offset, topic, queue id, queue offset,
/// body), in CommitLog order; each one read back with its CRC checked.
fn read_all<F: StoreFs>(store: &Store<F>) -> Appended {
    let mut out = Vec::new();
    for (topic, qid) in store.queue_ids() {
        let mut offset = store.min_offset(&topic, qid);
        loop {
            let res = block_on(store.get_message(&GetMessage {
                topic: &topic,
                queue_id: qid,
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
                    .expect("queue entry must point at a valid record");
                assert_eq!(msg.topic(), topic);
                assert_eq!(msg.layout.queue_offset as u64, r.queue_offset);
                out.push((
                    r.physical_offset,
                    topic.clone(),
                    qid,
                    r.queue_offset,
                    msg.body().to_vec(),
                ));
            }
            offset = res.next_offset;
        }
    }
    out.sort_by_key(|r| r.0);
    out
}

#[test]
fn append_commit_read_reopen_on_std_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_tests(dir.path());
    let mut store = block_on(Store::open(StdFs, config.clone())).unwrap();
    let p = props("TagA", "k1 k2", "UNIQ1");
    let mut tickets = Vec::new();
    for i in 0..50u32 {
        let body = format!("body-{i}");
        let mut m = AppendMessage::new("TopicA", (i % 2) as i32, body.as_bytes());
        m.properties = &p;
        tickets.push(store.append(&m).unwrap());
    }
    assert!(
        !store.is_acknowledged(&tickets[0]),
        "async: nothing acked before the write"
    );
    assert_eq!(
        store.max_offset("TopicA", 0),
        0,
        "unacknowledged records are invisible"
    );
    block_on(store.commit_step()).unwrap();
    assert!(tickets.iter().all(|t| store.is_acknowledged(t)));
    assert_eq!(store.max_offset("TopicA", 0), 25);
    assert_eq!(tickets[3].queue_offset, 1);

    let tag = ringmq_wire::record::tag_hash_code(Some("TagA"));
    let res = block_on(store.get_message(&GetMessage {
        topic: "TopicA",
        queue_id: 1,
        offset: 3,
        max_count: 4,
        max_bytes: usize::MAX,
        tag_codes: Some(&[tag]),
        file_ranges: false,
    }))
    .unwrap();
    assert_eq!(res.status, GetStatus::Found);
    assert_eq!(res.records.len(), 4);
    assert_eq!(res.next_offset, 7);
    let other = block_on(store.get_message(&GetMessage {
        topic: "TopicA",
        queue_id: 1,
        offset: 0,
        max_count: 4,
        max_bytes: usize::MAX,
        tag_codes: Some(&[tag + 1]),
        file_ranges: false,
    }))
    .unwrap();
    assert_eq!(other.status, GetStatus::NoMatchedMessage);

    let by_key = block_on(store.query_by_key("TopicA", "k2", 100, 0, i64::MAX)).unwrap();
    assert_eq!(by_key.len(), 50);
    let by_uniq = block_on(store.query_by_key("TopicA", "UNIQ1", 5, 0, i64::MAX)).unwrap();
    assert_eq!(by_uniq.len(), 5);
    assert!(
        block_on(store.query_by_key("TopicB", "k2", 5, 0, i64::MAX))
            .unwrap()
            .is_empty()
    );
    let t = block_on(store.offset_by_timestamp("TopicA", 0, tickets[10].store_timestamp)).unwrap();
    assert!(t <= 5, "first offset at or after the 10th message's time");
    assert_eq!(
        block_on(store.offset_by_timestamp("TopicA", 0, i64::MAX)).unwrap(),
        25
    );

    // A second store on the same directory is refused while the first is open.
    let second = block_on(Store::open(StdFs, config.clone()));
    assert!(
        matches!(second, Err(StoreError::Io { op: "lock", .. })),
        "{second:?}"
    );
    block_on(store.close()).unwrap();
    assert!(!dir.path().join("abort").exists());
    let store = block_on(Store::open(StdFs, config)).unwrap();
    assert!(!store.recovered_from_crash);
    assert_eq!(store.max_offset("TopicA", 0), 25);
    assert_eq!(read_all(&store).len(), 50);
    let by_key = block_on(store.query_by_key("TopicA", "k1", 3, 0, i64::MAX)).unwrap();
    assert_eq!(by_key.len(), 3, "index survives a restart");
}

#[test]
fn segments_roll_with_blank_records_and_verify_is_clean() {
    let fs = SimFs::new(3);
    let config = sim_config(FlushMode::Sync);
    let seg = config.segment_bytes;
    let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
    let body = vec![7u8; 3000];
    let mut last = None;
    for i in 0..400 {
        last = Some(
            store
                .append(&AppendMessage::new("T", i % 3, &body))
                .unwrap(),
        );
        if i % 17 == 0 {
            block_on(store.commit_step()).unwrap();
        }
    }
    block_on(store.commit_step()).unwrap();
    let last = last.unwrap();
    assert!(last.physical_offset > 3 * seg, "several segments were used");
    assert_eq!(read_all(&store).len(), 400);
    block_on(store.close()).unwrap();
    let report = block_on(verify::verify(&fs, Path::new("/shard-0"), seg)).unwrap();
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    assert_eq!(report.records, 400);
    // Damage one body byte of the first record: verify names the file and the offset.
    let path = Path::new("/shard-0/commitlog/00000000000000000000");
    fs.flip_random_bit(path, 100..200).unwrap();
    let report = block_on(verify::verify(&fs, Path::new("/shard-0"), seg)).unwrap();
    assert_eq!(report.damage[0].path, path);
    assert_eq!(report.damage[0].offset, 0);
    // The damaged record is never served: reading it is an error, not a response.
    let store = block_on(Store::open(fs.clone(), config)).unwrap();
    let first_queue = store.queue_ids()[0].clone();
    let res = block_on(store.get_message(&GetMessage {
        topic: &first_queue.0,
        queue_id: first_queue.1,
        offset: 0,
        max_count: 1,
        max_bytes: usize::MAX,
        tag_codes: None,
        file_ranges: false,
    }));
    assert!(matches!(res, Err(StoreError::Corrupt { .. })), "{res:?}");
}

#[test]
fn topics_that_could_escape_the_directory_are_refused() {
    assert!(is_valid_topic("%RETRY%group-1|x_y"));
    for bad in ["", "../etc", "a/b", "a b", "é"] {
        assert!(!is_valid_topic(bad), "{bad}");
    }
    let mut store = block_on(Store::open(SimFs::new(1), sim_config(FlushMode::Async))).unwrap();
    let err = store
        .append(&AppendMessage::new("../x", 0, b"x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Message(_)), "{err}");
}

#[test]
fn busy_when_the_disk_is_behind() {
    let fs = SimFs::new(4);
    let config = StoreConfig {
        write_buffers_max: 2,
        segment_bytes: 4 << 20,
        ..sim_config(FlushMode::Async)
    };
    let mut store = block_on(Store::open(fs, config)).unwrap();
    let body = vec![1u8; 4000];
    let mut busy = None;
    for _ in 0..1000 {
        match store.append(&AppendMessage::new("T", 0, &body)) {
            Ok(_) => {}
            Err(e) => {
                busy = Some(e);
                break;
            }
        }
    }
    assert!(matches!(busy, Some(StoreError::Busy { .. })), "{busy:?}");
    block_on(store.commit_step()).unwrap();
    store.append(&AppendMessage::new("T", 0, &body)).unwrap();
}

#[test]
fn busy_at_segment_rolls_keeps_the_log_consistent() {
    // Regression: a roll refused with Busy used to leave a blank record in the buffer
    // without moving the append offset. Many body sizes, so that some roll meets an empty
    // buffer budget.
    for size in (1000..4000).step_by(233) {
        let fs = SimFs::new(size as u64);
        let config = StoreConfig {
            write_buffers_max: 2,
            ..sim_config(FlushMode::Async)
        };
        let seg = config.segment_bytes;
        let mut store = block_on(Store::open(fs.clone(), config)).unwrap();
        let body = vec![size as u8; size];
        let mut small = 0;
        for i in 0..300u32 {
            loop {
                match store.append(&AppendMessage::new("T", (i % 3) as i32, &body)) {
                    Ok(_) => break,
                    Err(StoreError::Busy { .. }) => {
                        block_on(store.commit_step()).unwrap();
                        // Another producer's small message gets in first.
                        store.append(&AppendMessage::new("Small", 0, b"s")).unwrap();
                        small += 1;
                    }
                    Err(e) => panic!("size {size}: {e}"),
                }
            }
        }
        block_on(store.commit_step()).unwrap();
        assert_eq!(read_all(&store).len(), 300 + small, "size {size}");
        block_on(store.close()).unwrap();
        let report = block_on(verify::verify(&fs, Path::new("/shard-0"), seg)).unwrap();
        assert!(report.damage.is_empty(), "size {size}: {:?}", report.damage);
        assert_eq!(report.records as usize, 300 + small, "size {size}");
    }
}

#[test]
fn memory_mode_acks_on_append_and_sync_mode_after_fsync() {
    let mut store = block_on(Store::open(SimFs::new(5), sim_config(FlushMode::Memory))).unwrap();
    let t = store.append(&AppendMessage::new("T", 0, b"x")).unwrap();
    assert!(store.is_acknowledged(&t));
    let mut store = block_on(Store::open(SimFs::new(5), sim_config(FlushMode::Sync))).unwrap();
    let t = store.append(&AppendMessage::new("T", 0, b"x")).unwrap();
    assert!(!store.is_acknowledged(&t));
    block_on(store.commit_step()).unwrap();
    assert!(store.is_acknowledged(&t));
    assert_eq!(store.commit_log().synced_offset(), t.end_offset());
}

#[test]
fn retention_deletes_old_segments_but_not_pinned_ones() {
    let fs = SimFs::new(6);
    let config = StoreConfig {
        file_reserved_hours: 1,
        tail_cache_bytes: 0,
        ..sim_config(FlushMode::Sync)
    };
    let seg = config.segment_bytes;
    fs.set_now_ms(0);
    let mut store = block_on(Store::open(fs.clone(), config)).unwrap();
    let body = vec![9u8; 3000];
    for _ in 0..300 {
        store.append(&AppendMessage::new("T", 0, &body)).unwrap();
        block_on(store.commit_step()).unwrap();
    }
    block_on(store.persist_step()).unwrap();
    assert!(store.commit_log().append_offset() > 2 * seg);
    // Pin the first segment with a splice-style read.
    let pinned = block_on(store.get_message(&GetMessage {
        topic: "T",
        queue_id: 0,
        offset: 0,
        max_count: 1,
        max_bytes: usize::MAX,
        tag_codes: None,
        file_ranges: true,
    }))
    .unwrap();
    let four_am_next_day = 86_400_000 + 4 * 3_600_000;
    let report = block_on(store.retention_step(four_am_next_day)).unwrap();
    assert!(matches!(pinned.records[0].data, RecordData::File(_)));
    assert!(
        report.deleted_segments.is_empty(),
        "a pinned segment is kept"
    );
    drop(pinned);
    // Outside deleteWhen and below the disk thresholds nothing is deleted.
    let report = block_on(store.retention_step(four_am_next_day + 3_600_000)).unwrap();
    assert!(report.deleted_segments.is_empty());
    let report = block_on(store.retention_step(four_am_next_day)).unwrap();
    assert!(!report.deleted_segments.is_empty());
    let min = store.min_offset("T", 0);
    assert!(min > 0);
    let res = block_on(store.get_message(&GetMessage {
        topic: "T",
        queue_id: 0,
        offset: 0,
        max_count: 1,
        max_bytes: usize::MAX,
        tag_codes: None,
        file_ranges: false,
    }))
    .unwrap();
    assert_eq!(res.status, GetStatus::OffsetTooSmall);
    assert_eq!(res.next_offset, min);
    // Disk pressure: over 90 % appends are refused.
    fs.set_disk_used_ratio(0.95);
    let report = block_on(store.retention_step(four_am_next_day + 3_600_000)).unwrap();
    assert!(report.disk_full);
    assert!(matches!(
        store.append(&AppendMessage::new("T", 0, b"x")),
        Err(StoreError::DiskFull { .. })
    ));
    // After a restart, the retained range is what the queue reports.
    block_on(store.close()).unwrap();
    let store = block_on(Store::open(fs, sim_config(FlushMode::Sync))).unwrap();
    assert_eq!(store.min_offset("T", 0), min);
    assert_eq!(read_all(&store).len() as u64, 300 - min);
}

/// A record as the tests compare it: physical offset, topic, queue id, queue offset, body.
type Rec = (u64, String, i32, u64, Vec<u8>);
type Appended = Vec<Rec>;

/// Random appends, commits and persists until the simulated crash (or 600 steps). Returns
/// what was appended, in order, and how many of those were acknowledged.
fn crash_phase(
    store: &mut Store<SimFs>,
    fs: &SimFs,
    rng: &mut SimRng,
    salt: u64,
) -> (Appended, usize) {
    fs.crash_after(rng.below(120));
    let topics = ["TopicA", "TopicB"];
    let mut appended: Vec<(AppendTicket, Rec)> = Vec::new();
    let mut acked = 0usize;
    for step in 0..600u64 {
        if fs.is_crashed() {
            break;
        }
        match rng.below(10) {
            0..=5 => {
                let topic = topics[rng.below(2) as usize];
                let qid = rng.below(3) as i32;
                let len = rng.below(2500) as usize;
                let body: Vec<u8> = (0..len).map(|i| (i as u64 ^ salt ^ step) as u8).collect();
                let p = props("t", &format!("k{step}"), "");
                let mut m = AppendMessage::new(topic, qid, &body);
                m.properties = &p;
                if let Ok(t) = store.append(&m) {
                    let rec = (
                        t.physical_offset,
                        topic.to_owned(),
                        qid,
                        t.queue_offset,
                        body,
                    );
                    appended.push((t, rec));
                }
            }
            6..=8 => {
                if block_on(store.commit_step()).is_ok() {
                    acked = appended
                        .iter()
                        .take_while(|a| store.is_acknowledged(&a.0))
                        .count();
                }
            }
            _ if rng.below(2) == 0 => {
                let _ = block_on(store.persist_step());
            }
            _ => {
                // As in ring mode: the persist job (queue/index/checkpoint writes) is out
                // while appends and commits go on; a crash may tear any of its writes.
                let Ok(Some(job)) = block_on(store.begin_persist(false)) else {
                    continue;
                };
                for _ in 0..rng.below(4) {
                    let body = vec![step as u8; rng.below(900) as usize];
                    let mut m = AppendMessage::new(topics[0], 0, &body);
                    let p = props("t", "", &format!("u{step}"));
                    m.properties = &p;
                    if let Ok(t) = store.append(&m) {
                        let rec = (
                            t.physical_offset,
                            topics[0].to_owned(),
                            0,
                            t.queue_offset,
                            body,
                        );
                        appended.push((t, rec));
                    }
                }
                if block_on(store.commit_step()).is_ok() {
                    acked = appended
                        .iter()
                        .take_while(|a| store.is_acknowledged(&a.0))
                        .count();
                }
                let done = block_on(job.run());
                let _ = store.finish_persist(done);
            }
        }
    }
    (appended.into_iter().map(|a| a.1).collect(), acked)
}

/// Recovered records must be exactly a prefix of `expected`, at least `must_keep` long.
fn check_prefix(got: &Appended, expected: &Appended, must_keep: usize) -> Result<(), String> {
    if got.len() > expected.len() {
        return Err(format!(
            "recovered {} records, appended {}",
            got.len(),
            expected.len()
        ));
    }
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        return Err(format!(
            "record {i} differs: recovered phys {} expected {}",
            got[i].0, expected[i].0
        ));
    }
    if got.len() < must_keep {
        return Err(format!(
            "{must_keep} acknowledged records, only {} recovered",
            got.len()
        ));
    }
    Ok(())
}

/// One fault-injection run: two rounds of (random work, crash, reboot, recover), checking
/// after each that the visible records are a prefix of everything appended with every
/// acknowledged one present (when the mode promises it). The second round exercises
/// recovery over the leftovers of the first (stale queue entries, zeroed tails).
fn fault_run(seed: u64, mode: FlushMode, reboot: RebootKind) -> Result<(), String> {
    let fs = SimFs::new(seed);
    let mut rng = SimRng::new(seed.wrapping_mul(0x9E37_79B9));
    let config = sim_config(mode);
    let mut store = block_on(Store::open(fs.clone(), config.clone())).map_err(|e| e.to_string())?;
    let mut expected: Appended = Vec::new();
    for round in 0..2u64 {
        let (appended, acked) = crash_phase(&mut store, &fs, &mut rng, seed ^ (round << 32));
        drop(store);
        // Round 1 picks its own reboot kind, so a power loss can follow a process kill.
        let kind = match (round, rng.below(2)) {
            (0, _) => reboot,
            (_, 0) => RebootKind::ProcessKill,
            _ => RebootKind::PowerLoss,
        };
        fs.reboot(kind);
        store = block_on(Store::open(fs.clone(), config.clone()))
            .map_err(|e| format!("round {round}: reopen: {e}"))?;
        let kept_before = expected.len();
        expected.extend(appended);
        let promised = matches!(
            (mode, kind),
            (FlushMode::Sync, _) | (FlushMode::Async, RebootKind::ProcessKill)
        );
        let must_keep = if promised { kept_before + acked } else { 0 };
        let got = read_all(&store);
        check_prefix(&got, &expected, must_keep).map_err(|e| format!("round {round}: {e}"))?;
        expected.truncate(got.len());
    }
    // The store goes on: new appends continue every queue densely.
    for (topic, qid) in store.queue_ids() {
        let max = store.max_offset(&topic, qid);
        let t = store
            .append(&AppendMessage::new(&topic, qid, b"after"))
            .map_err(|e| e.to_string())?;
        if t.queue_offset != max {
            return Err(format!(
                "{topic}/{qid}: next queue offset {} after max {max}",
                t.queue_offset
            ));
        }
    }
    block_on(store.commit_step()).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn fault_injection_recovers_a_prefix_with_every_ack() {
    let cases = [
        (FlushMode::Sync, RebootKind::PowerLoss),
        (FlushMode::Sync, RebootKind::ProcessKill),
        (FlushMode::Async, RebootKind::ProcessKill),
        (FlushMode::Async, RebootKind::PowerLoss),
    ];
    let seeds: u64 = std::env::var("RINGMQ_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    for (mode, reboot) in cases {
        for seed in 0..seeds {
            if let Err(e) = fault_run(seed, mode, reboot) {
                panic!("seed {seed} ({mode:?}, {reboot:?}) failed: {e}");
            }
        }
    }
}

#[test]
fn bit_flips_never_serve_a_bad_record() {
    for seed in 0..40u64 {
        let fs = SimFs::new(seed);
        let config = sim_config(FlushMode::Sync);
        let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
        for i in 0..60 {
            store
                .append(&AppendMessage::new("T", i % 2, &[i as u8; 700]))
                .unwrap();
        }
        block_on(store.commit_step()).unwrap();
        let end = store.commit_log().append_offset();
        drop(store); // crash: abort file left behind
        let path = Path::new("/shard-0/commitlog/00000000000000000000");
        fs.flip_random_bit(path, 0..end).unwrap();
        fs.reboot(RebootKind::ProcessKill);
        let store = block_on(Store::open(fs.clone(), config)).unwrap();
        for (topic, qid) in store.queue_ids() {
            for offset in store.min_offset(&topic, qid)..store.max_offset(&topic, qid) {
                let res = block_on(store.get_message(&GetMessage {
                    topic: &topic,
                    queue_id: qid,
                    offset,
                    max_count: 1,
                    max_bytes: usize::MAX,
                    tag_codes: None,
                    file_ranges: false,
                }));
                match res {
                    Ok(r) => {
                        for rec in r.records {
                            let RecordData::Memory(b) = rec.data else {
                                continue;
                            };
                            let dec = ringmq_wire::record::decode_record_at(&b, 0, true);
                            assert!(
                                dec.is_ok(),
                                "seed {seed}: a record failing its CRC was served"
                            );
                        }
                    }
                    Err(StoreError::Corrupt { .. }) => {}
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Queue offsets are dense per queue, physical offsets grow, and every queue entry points
    /// at a record of its own topic, queue and offset — before and after a restart.
    #[test]
    fn offsets_dense_and_queues_match_the_log(
        ops in proptest::collection::vec((0u8..3, 0i32..4, 0usize..3000, any::<bool>()), 1..150)
    ) {
        let fs = SimFs::new(11);
        let config = sim_config(FlushMode::Async);
        let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
        let mut next: std::collections::HashMap<(u8, i32), u64> = Default::default();
        let mut last_phys = None;
        for (t, q, len, commit) in &ops {
            let topic = format!("T{t}");
            let body = vec![*t; *len];
            let ticket = store.append(&AppendMessage::new(&topic, *q, &body)).unwrap();
            let expected = next.entry((*t, *q)).or_default();
            prop_assert_eq!(ticket.queue_offset, *expected);
            *expected += 1;
            if let Some(p) = last_phys { prop_assert!(ticket.physical_offset > p); }
            last_phys = Some(ticket.physical_offset);
            if *commit { block_on(store.commit_step()).unwrap(); }
        }
        block_on(store.commit_step()).unwrap();
        let all = read_all(&store);
        prop_assert_eq!(all.len(), ops.len());
        block_on(store.close()).unwrap();
        let store = block_on(Store::open(fs, config)).unwrap();
        prop_assert_eq!(read_all(&store), all);
        for ((t, q), n) in next {
            prop_assert_eq!(store.max_offset(&format!("T{t}"), q), n);
        }
    }

    /// With a queue memory budget of a few entries (most entries read back from queue files
    /// of 50 entries), queues still match the log: every pull, every time lookup, after a
    /// clean restart and after a crash; memory stays within the budget after each persist.
    #[test]
    fn queues_match_the_log_with_a_tiny_memory_budget(
        budget in 0usize..6,
        ops in proptest::collection::vec((0i32..3, 0usize..600, 0u8..4), 1..400)
    ) {
        let fs = SimFs::new(13);
        let config = StoreConfig {
            consume_queue_cache_bytes: budget * consume_queue::CQ_ENTRY_BYTES as usize,
            cq_entries_per_file: 50,
            ..sim_config(FlushMode::Sync)
        };
        let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
        let mut times: Vec<(i32, u64, i64)> = Vec::new();
        for (q, len, step) in &ops {
            let t = store.append(&AppendMessage::new("T", *q, &vec![*step; *len])).unwrap();
            times.push((*q, t.queue_offset, t.store_timestamp));
            if *step >= 2 { block_on(store.commit_step()).unwrap(); }
            if *step == 3 {
                block_on(store.persist_step()).unwrap();
                prop_assert!(store.queue_entries_in_memory() <= budget);
            }
        }
        block_on(store.commit_step()).unwrap();
        block_on(store.persist_step()).unwrap();
        prop_assert!(store.queue_entries_in_memory() <= budget);
        let all = read_all(&store);
        prop_assert_eq!(all.len(), ops.len());
        // Each record by its own offset, one at a time (old ones come from the files).
        for (phys, topic, qid, offset, _) in &all {
            let res = block_on(store.get_message(&GetMessage {
                topic, queue_id: *qid, offset: *offset, max_count: 1,
                max_bytes: usize::MAX, tag_codes: None, file_ranges: false,
            })).unwrap();
            prop_assert_eq!(res.records.len(), 1);
            prop_assert_eq!(res.records[0].physical_offset, *phys);
        }
        // Time lookups binary-search over evicted entries: the first at or after a time.
        for (q, offset, ts) in &times {
            let found = block_on(store.offset_by_timestamp("T", *q, *ts)).unwrap();
            prop_assert!(found <= *offset);
            let first_at = times.iter().filter(|(q2, _, t2)| q2 == q && *t2 >= *ts).map(|x| x.1).min();
            prop_assert_eq!(Some(found), first_at);
        }
        block_on(store.close()).unwrap();
        let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
        prop_assert_eq!(read_all(&store), all.clone());
        // More appends, then a crash before any persist: recovery rebuilds the tail.
        for i in 0..20u8 {
            store.append(&AppendMessage::new("T", i32::from(i % 3), &[i; 100])).unwrap();
        }
        block_on(store.commit_step()).unwrap();
        drop(store);
        fs.reboot(RebootKind::ProcessKill);
        let store = block_on(Store::open(fs, config)).unwrap();
        let again = read_all(&store);
        prop_assert_eq!(again.len(), all.len() + 20);
        prop_assert_eq!(&again[..all.len()], &all[..]);
    }

    /// Retention never deletes a segment that an outstanding file-range read pins, and the
    /// queue's min offset never passes a pinned record.
    #[test]
    fn retention_never_deletes_a_pinned_segment(pinned_offsets in proptest::collection::vec(0u64..240, 0..4)) {
        let fs = SimFs::new(12);
        let config = StoreConfig {
            tail_cache_bytes: 0,
            file_reserved_hours: 0,
            ..sim_config(FlushMode::Sync)
        };
        let mut store = block_on(Store::open(fs.clone(), config)).unwrap();
        let body = vec![3u8; 3000];
        for i in 0..250 {
            store.append(&AppendMessage::new("T", 0, &body)).unwrap();
            if i % 10 == 9 {
                block_on(store.commit_step()).unwrap();
            }
        }
        block_on(store.commit_step()).unwrap();
        let mut pins = Vec::new();
        for offset in &pinned_offsets {
            let res = block_on(store.get_message(&GetMessage {
                topic: "T",
                queue_id: 0,
                offset: *offset,
                max_count: 1,
                max_bytes: usize::MAX,
                tag_codes: None,
                file_ranges: true,
            }))
            .unwrap();
            pins.extend(res.records);
        }
        fs.set_disk_used_ratio(0.88); // forcibly: everything unpinned is deletable
        block_on(store.retention_step(4 * 3_600_000)).unwrap();
        for r in &pins {
            let RecordData::File(range) = &r.data else { continue };
            prop_assert!(store.commit_log().segment(range.segment).is_some(), "pinned segment {} deleted", range.segment);
            prop_assert!(store.min_offset("T", 0) <= r.queue_offset);
        }
        if pins.is_empty() {
            prop_assert!(store.commit_log().min_offset() > 0, "unpinned old segments are deleted");
        }
    }
}

/// Regression: recovery rebuilt the tag slot (delivery time) of `SCHEDULE_TOPIC_XXXX` records
/// with RocketMQ's default delay levels whatever the configured ones were.
#[test]
fn recovery_rebuilds_schedule_slots_with_the_configured_delay_levels() {
    let fs = SimFs::new(7);
    let config = StoreConfig {
        delay_levels_ms: vec![3_000, 7_000, 11_000],
        ..sim_config(FlushMode::Sync)
    };
    let mut store = block_on(Store::open(fs.clone(), config.clone())).unwrap();
    let mut tickets = Vec::new();
    for level in ["1", "2", "3", "9"] {
        let mut p = Properties::new();
        p.insert(property::DELAY, level);
        let p = p.encode().unwrap().into_bytes();
        let mut m = AppendMessage::new(recovery::SCHEDULE_TOPIC, 0, b"later");
        m.properties = &p;
        tickets.push(store.append(&m).unwrap());
    }
    block_on(store.commit_step()).unwrap();
    // Crash before any ConsumeQueue persist: recovery rebuilds every slot from the CommitLog.
    drop(store);
    fs.reboot(RebootKind::ProcessKill);
    let store = block_on(Store::open(fs.clone(), config)).unwrap();
    assert!(store.recovered_from_crash);
    let res = block_on(store.get_message(&GetMessage {
        topic: recovery::SCHEDULE_TOPIC,
        queue_id: 0,
        offset: 0,
        max_count: 16,
        max_bytes: usize::MAX,
        tag_codes: None,
        file_ranges: false,
    }))
    .unwrap();
    let slots: Vec<i64> = res.records.iter().map(|r| r.tag_code).collect();
    let want: Vec<i64> = tickets
        .iter()
        .zip([3_000, 7_000, 11_000, 11_000])
        .map(|(t, delay)| t.store_timestamp + delay)
        .collect();
    assert_eq!(slots, want);
}
