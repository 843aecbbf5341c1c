//! Startup recovery: find the true end of the CommitLog and make the ConsumeQueues and the
//! index agree with it.
//!
//! 1. Read the checkpoint: below `min(commit_log_synced, dispatch_persisted)` the CommitLog
//!    is on stable storage and every record has its queue and index entries persisted.
//! 2. Load the ConsumeQueues and the index from their files.
//! 3. Scan the CommitLog from that safe point record by record (magic, size, fields, body CRC,
//!    and the record's own physical offset, which rejects stale bytes of an older record),
//!    re-dispatching each record to its queue and the index. The first record that fails
//!    ends the log: a torn tail is cut there, never served, never acknowledged.
//! 4. Drop queue entries past the end, delete segments past it and, after a crash, zero the
//!    bytes after the end in the last segment so nothing stale can ever chain onto it.
//!
//! A clean stop leaves the checkpoint at the end of the log, so the scan finds nothing to do.

use std::collections::{BTreeMap, HashMap};

use ringmq_wire::WireError;
use ringmq_wire::record::{RecordAt, decode_record_at, property, tag_hash_code};

use super::Queues;
use super::checkpoint::CheckpointFile;
use super::commit_log::{file_name, list_segments};
use super::config::StoreConfig;
use super::consume_queue::{CQ_ENTRY_BYTES, ConsumeQueue, CqEntry};
use super::error::{StoreError, StoreResult};
use super::index::IndexService;
use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};

/// Bytes read per step while scanning (at least one largest record).
const SCAN_WINDOW_BYTES: usize = 4 << 20;

/// The schedule topic for delayed messages.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// RocketMQ's default delay levels (`messageDelayLevel`), in ms.
pub const DELAY_LEVELS_MS: [i64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// The ConsumeQueue tag slot of a record: the delivery time for a delayed message in the
/// schedule topic (store time + its level's delay, `delay_levels_ms` being the configured
/// levels, [`StoreConfig::delay_levels_ms`]), else the TAGS hash code. A level past the last
/// one counts as the last (as RocketMQ clamps it); an empty table as no delay.
pub fn tag_code_of(
    topic: &str,
    properties: &[u8],
    store_timestamp: i64,
    delay_levels_ms: &[i64],
) -> i64 {
    if topic == SCHEDULE_TOPIC
        && let Some(level) = ringmq_wire::record::property_value(properties, property::DELAY)
            .and_then(|l| l.parse::<usize>().ok())
    {
        let delay = match delay_levels_ms.len() {
            0 => 0,
            n => delay_levels_ms[level.clamp(1, n) - 1],
        };
        return store_timestamp + delay;
    }
    tag_hash_code(ringmq_wire::record::property_value(
        properties,
        property::TAGS,
    ))
}

pub(super) struct Outcome<File> {
    pub end: u64,
    pub scan_start: u64,
    pub queues: Queues<File>,
    pub index: IndexService<File>,
    pub checkpoint: CheckpointFile<File>,
    pub last_store_timestamp: i64,
}

/// Loads every queue; each keeps at most an equal share of the memory budget of entries
/// pointing below `hot_from` (the scan start: entries from there on may be rewritten).
async fn load_queues<F: StoreFs>(
    fs: &F,
    config: &StoreConfig,
    cl_min: u64,
    hot_from: u64,
) -> StoreResult<Queues<F::File>> {
    let root = config.consume_queue_dir();
    let mut queues: Queues<F::File> = HashMap::new();
    let topics = fs
        .list_dir(&root)
        .map_err(|e| StoreError::io("list", &root, e))?;
    let mut found = Vec::new();
    for topic in topics {
        let tdir = root.join(&topic);
        let Ok(ids) = fs.list_dir(&tdir) else {
            continue;
        };
        for id in ids {
            if let Ok(queue_id) = id.parse::<i32>() {
                found.push((topic.clone(), queue_id, tdir.join(&id)));
            }
        }
    }
    let budget = config.consume_queue_cache_bytes / CQ_ENTRY_BYTES as usize;
    let keep = budget / found.len().max(1);
    for (topic, queue_id, dir) in found {
        let q =
            ConsumeQueue::load(fs, dir, config.cq_entries_per_file, cl_min, keep, hot_from).await?;
        queues.entry(topic).or_default().insert(queue_id, q);
    }
    Ok(queues)
}

enum Stop {
    /// Unwritten (zero) bytes: the log simply ends.
    Clean,
    /// A torn or damaged record.
    Damaged(String),
}

pub(super) async fn recover<F: StoreFs>(
    fs: &F,
    config: &StoreConfig,
    crashed: bool,
) -> StoreResult<Outcome<F::File>> {
    let checkpoint = CheckpointFile::open(fs, &config.checkpoint_path()).await?;
    let cp = checkpoint.get();
    let cl_dir = config.commit_log_dir();
    let segs = list_segments(fs, &cl_dir)?;
    let seg_bytes = config.segment_bytes;
    let cl_min = segs.first().copied().unwrap_or(0);
    let safe = cp.commit_log_synced.min(cp.dispatch_persisted);
    let seg_of = |o: u64| o / seg_bytes * seg_bytes;
    let scan_start = if segs.contains(&seg_of(safe)) {
        safe.max(cl_min)
    } else {
        cl_min
    };
    let mut queues = load_queues(fs, config, cl_min, scan_start).await?;
    let mut index = IndexService::open(fs, &config.index_dir(), config.index).await?;
    let index_end = index.end_phy_offset();

    // Queue entries from the scan start on are rebuilt from the CommitLog: whatever the files
    // hold there may predate a crash and point at bytes that now hold other records.
    for topic_queues in queues.values_mut() {
        for q in topic_queues.values_mut() {
            q.truncate_from_phys(scan_start);
        }
    }
    let mut offset = scan_start;
    let mut last_ts = cp.physic_msg_timestamp;
    let mut stop = Stop::Clean;
    let mut scanned = 0u64;

    'segments: while segs.contains(&seg_of(offset)) {
        let seg = seg_of(offset);
        let path = cl_dir.join(file_name(seg));
        let file = fs
            .open(
                &path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("open", &path, e))?;
        loop {
            let pos = offset - seg;
            let want = (SCAN_WINDOW_BYTES.max(config.max_record_bytes()) as u64)
                .min(seg_bytes - pos) as usize;
            let (buf, n) = file.read_at(vec![0; want], pos).await;
            let n = n.map_err(|e| StoreError::io("read", &path, e))?;
            let reaches_end = pos + n as u64 >= seg_bytes;
            let mut at = 0usize;
            loop {
                if at + 8 <= n && buf[at..at + 8].iter().all(|b| *b == 0) {
                    break 'segments;
                }
                match decode_record_at(&buf[at..n], offset as usize, true) {
                    Ok(RecordAt::Message(layout)) => {
                        if layout.physical_offset != offset as i64 {
                            stop = Stop::Damaged(format!(
                                "record at {offset} says it is at {}",
                                layout.physical_offset
                            ));
                            break 'segments;
                        }
                        let rec = &buf[at..at + layout.total_size];
                        let topic =
                            std::str::from_utf8(&rec[layout.topic.clone()]).unwrap_or_default();
                        // The CRC covers only the body: check the fields that name files.
                        if !super::is_valid_topic(topic)
                            || layout.queue_id < 0
                            || layout.queue_offset < 0
                        {
                            stop = Stop::Damaged(format!(
                                "record at {offset} has an invalid topic, queue id or queue offset"
                            ));
                            break 'segments;
                        }
                        let props = &rec[layout.properties.clone()];
                        redispatch(
                            &mut queues,
                            config,
                            topic,
                            layout.queue_id,
                            layout.queue_offset,
                            CqEntry {
                                phys: offset,
                                size: layout.total_size as u32,
                                tag_code: tag_code_of(
                                    topic,
                                    props,
                                    layout.store_timestamp,
                                    &config.delay_levels_ms,
                                ),
                            },
                        );
                        if config.index_enabled && (offset as i64) > index_end {
                            let uniq =
                                ringmq_wire::record::property_value(props, property::UNIQ_KEY);
                            let keys = ringmq_wire::record::property_value(props, property::KEYS)
                                .unwrap_or_default();
                            index.put(
                                fs,
                                uniq.into_iter().chain(keys.split(property::KEY_SEPARATOR)),
                                topic,
                                offset,
                                layout.store_timestamp,
                            )?;
                        }
                        last_ts = last_ts.max(layout.store_timestamp);
                        offset += layout.total_size as u64;
                        at += layout.total_size;
                        scanned += 1;
                    }
                    Ok(RecordAt::Blank { total_size }) => {
                        if offset - seg + total_size as u64 != seg_bytes {
                            stop = Stop::Damaged(format!(
                                "blank record at {offset} of {total_size} bytes does not end the segment"
                            ));
                            break 'segments;
                        }
                        offset = seg + seg_bytes;
                        continue 'segments;
                    }
                    Err(WireError::Truncated { .. }) if !reaches_end && at > 0 => break,
                    Err(e) => {
                        stop = Stop::Damaged(e.to_string());
                        break 'segments;
                    }
                }
            }
        }
    }
    let end = offset;
    if let Stop::Damaged(reason) = &stop {
        tracing::warn!(target: "store::recovery", end, %reason, "commit log cut at a torn or damaged record");
    }
    for topic_queues in queues.values_mut() {
        for q in topic_queues.values_mut() {
            q.truncate_past(end);
        }
    }
    for s in segs.iter().copied().filter(|s| *s > seg_of(end)) {
        let path = cl_dir.join(file_name(s));
        fs.remove_file(&path)
            .map_err(|e| StoreError::io("remove", &path, e))?;
    }
    if matches!(stop, Stop::Damaged(_)) && segs.contains(&seg_of(end)) {
        zero_tail(
            fs,
            &cl_dir.join(file_name(seg_of(end))),
            end - seg_of(end),
            seg_bytes,
        )
        .await?;
    }
    if index_end >= end as i64 {
        index.seal_active();
    }
    tracing::info!(target: "store::recovery", crashed, scan_start, end, scanned, "recovery done");
    Ok(Outcome {
        end,
        scan_start,
        queues,
        index,
        checkpoint,
        last_store_timestamp: last_ts,
    })
}

fn redispatch<File: StoreFile>(
    queues: &mut Queues<File>,
    config: &StoreConfig,
    topic: &str,
    queue_id: i32,
    queue_offset: i64,
    entry: CqEntry,
) {
    if !queues.contains_key(topic) {
        queues.insert(topic.to_owned(), BTreeMap::new());
    }
    let Some(topic_queues) = queues.get_mut(topic) else {
        return;
    };
    let q = topic_queues.entry(queue_id).or_insert_with(|| {
        ConsumeQueue::new(
            config
                .consume_queue_dir()
                .join(topic)
                .join(queue_id.to_string()),
            config.cq_entries_per_file,
            0,
        )
    });
    let Ok(qo) = u64::try_from(queue_offset) else {
        return;
    };
    if qo < q.min_offset() {
        return;
    }
    if qo < q.max_offset() {
        if q.get(qo).is_some_and(|e| e == entry) {
            return;
        }
        q.truncate_from(qo);
    }
    if qo == q.max_offset() {
        q.push(entry);
    } else if q.max_offset() == q.min_offset() {
        q.reset_to(qo);
        q.push(entry);
    } else {
        tracing::error!(target: "store::recovery", topic, queue_id, queue_offset = qo,
            expected = q.max_offset(), "queue offset gap in the commit log; record not queued");
    }
}

/// Zeroes every non-zero stretch of `path` from `from` to `seg_bytes`.
async fn zero_tail<F: StoreFs>(
    fs: &F,
    path: &std::path::Path,
    from: u64,
    seg_bytes: u64,
) -> StoreResult<()> {
    const STEP: u64 = 1 << 20;
    let file = fs
        .open(
            path,
            OpenMode {
                create: false,
                direct: false,
            },
        )
        .map_err(|e| StoreError::io("open", path, e))?;
    let mut pos = from;
    while pos < seg_bytes {
        let len = STEP.min(seg_bytes - pos) as usize;
        let (buf, n) = file.read_at(vec![0; len], pos).await;
        let n = n.map_err(|e| StoreError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            let (_, r) = file.write_at(AlignedBuf::zeroed(n), n, pos).await;
            r.map_err(|e| StoreError::io("write", path, e))?;
        }
        pos += n as u64;
    }
    file.sync_data()
        .await
        .map_err(|e| StoreError::io("fdatasync", path, e))
}
