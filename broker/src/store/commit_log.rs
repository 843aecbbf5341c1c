//! The CommitLog: segment files, the aligned write buffers and group commit.
//!
//! Contract (one per shard, on the shard's thread):
//! * [`CommitLog::append`] encodes a record once into the active aligned write buffer and
//!   returns its physical offset; it never waits. It refuses with [`StoreError::Busy`] when
//!   the write budget (`write_buffers_max` buffers) is used up.
//! * Group commit is split in two halves around an owned [`CommitJob`]:
//!   [`CommitLog::begin_commit`] (submit) swaps the active buffer for a fresh one that starts
//!   with a copy of the partly filled last page and takes every dirty buffer into the job
//!   (whole 4 KiB pages, `O_DIRECT` where the file allows it, `fdatasync` in sync mode);
//!   [`CommitLog::finish_commit`] (complete) takes the buffers back and advances
//!   `written_offset` / `synced_offset`. One job is in flight at a time; appends go on into
//!   the new buffer while it runs. [`CommitLog::commit_step`] is both halves in one call.
//! * The write buffers (`write_buffers_max` of them) are allocated once at open, from
//!   [`StoreFs::write_buffers`] (which registers them with the ring where it can).
//! * A record never straddles two segments: when it does not fit (with 8 bytes to spare),
//!   the segment is closed by a blank record and the record goes to the next one.
//! * After a failed write the log is failed-stopped: no more appends or acknowledgements.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use ringmq_wire::record::{BLANK_RECORD_BYTES_MIN, RECORD_BYTES_MAX, encode_blank};

use super::commit_job::{CommitDone, CommitJob, JobAllocate, JobCreate, JobWrite};
use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, IO_ALIGN, OpenMode, StoreFile, StoreFs, align_down, align_up};
use super::tail_cache::TailCache;

/// Largest record for a given body limit: body, the largest properties string and topic, and
/// the fixed fields (with IPv6 hosts and a V2 topic length, rounded up).
pub const fn record_bytes_max(max_body_bytes: usize) -> usize {
    max_body_bytes
        + ringmq_wire::limits::PROPERTIES_BYTES_MAX
        + ringmq_wire::limits::TOPIC_BYTES_MAX
        + 128
}

/// Smallest capacity of one write buffer: the largest record plus the partial page carried
/// over from the previous buffer (and a blank record), so any record fits a fresh buffer.
pub const fn write_buffer_bytes_min(max_body_bytes: usize) -> usize {
    record_bytes_max(max_body_bytes) + 2 * IO_ALIGN
}

const _: () =
    assert!(record_bytes_max(ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX) <= RECORD_BYTES_MAX);

/// The 20-digit file name of an offset.
pub fn file_name(offset: u64) -> String {
    format!("{offset:020}")
}

/// Parses a 20-digit file name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// One segment file: a writer handle (direct when possible) and a buffered reader handle.
#[derive(Debug)]
pub struct Segment<File> {
    /// Commit log offset of the first byte.
    pub start: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// Shared with commit jobs in flight, which must keep the file open.
    writer: Rc<File>,
    /// Buffered handle for reads (and for `splice`).
    pub reader: File,
    allocated: bool,
}

impl<File> Segment<File> {
    /// A segment a commit job created and preallocated.
    pub(super) fn created(start: u64, path: PathBuf, writer: File, reader: File) -> Self {
        Segment {
            start,
            path,
            writer: Rc::new(writer),
            reader,
            allocated: true,
        }
    }
}

impl<File: StoreFile> Segment<File> {
    /// Whether writes to this segment bypass the page cache (`O_DIRECT` accepted).
    pub fn is_direct(&self) -> bool {
        self.writer.is_direct()
    }
}

/// A write buffer destined for one segment, starting at an aligned file position.
#[derive(Debug)]
struct WriteChunk {
    segment: u64,
    file_pos: u64,
    buf: AlignedBuf,
    len: usize,
}

impl WriteChunk {
    fn end_offset(&self) -> u64 {
        self.segment + self.file_pos + self.len as u64
    }
}

/// Sizes and behaviour of a [`CommitLog`].
#[derive(Debug, Clone)]
pub struct CommitLogConfig {
    /// Segment size in bytes.
    pub segment_bytes: u64,
    /// Capacity of one write buffer (raised to [`write_buffer_bytes_min`]).
    pub write_buffer_bytes: usize,
    /// Largest record accepted ([`record_bytes_max`] of the body limit).
    pub max_record_bytes: usize,
    /// Write buffers that may hold unwritten data at once; the in-flight budget.
    pub write_buffers_max: usize,
    /// `fdatasync` after every commit (sync flush mode).
    pub sync: bool,
    /// Ask for `O_DIRECT` on segment writers.
    pub direct_io: bool,
    /// Bytes of recent records kept in memory.
    pub tail_cache_bytes: usize,
}

/// Where a record of the log lives on disk: for `splice` or a buffered read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// Start offset of the segment (its file name).
    pub segment: u64,
    /// Position within the segment file.
    pub file_pos: u64,
    /// Length in bytes.
    pub len: u32,
}

/// The CommitLog of one shard; see the module docs for the contract.
#[derive(Debug)]
pub struct CommitLog<F: StoreFs> {
    fs: F,
    dir: PathBuf,
    config: CommitLogConfig,
    segments: BTreeMap<u64, Segment<F::File>>,
    append_offset: u64,
    written_offset: u64,
    synced_offset: u64,
    active: Option<WriteChunk>,
    sealed: VecDeque<WriteChunk>,
    spare: Vec<AlignedBuf>,
    buffers_live: usize,
    /// Sequence number of the commit job in flight, if any.
    in_flight: Option<u64>,
    next_seq: u64,
    /// Commits run on the shard's ring: [`CommitLog::sync`] then asks the next job for the
    /// `fdatasync` instead of blocking the shard.
    ring_mode: bool,
    sync_requested: bool,
    failed: Option<String>,
    tail: TailCache,
    /// Segments a commit job created (through the ring), installed by `finish_commit`.
    created: Rc<RefCell<Vec<Segment<F::File>>>>,
    /// Segments opened on the shard thread because appends reached them before a job had
    /// created them (see `begin_commit`); 0 in normal operation.
    blocking_opens: u64,
}

impl<F: StoreFs> CommitLog<F> {
    /// Opens the log over the segments found in `dir`, with its end at `end_offset` (as
    /// established by recovery). Segments past the end's segment must already be removed.
    pub async fn open(
        fs: F,
        dir: &Path,
        config: CommitLogConfig,
        end_offset: u64,
    ) -> StoreResult<Self> {
        let buffer_min = config.max_record_bytes + 2 * IO_ALIGN;
        if config.segment_bytes < (2 * buffer_min) as u64
            || !config.segment_bytes.is_multiple_of(IO_ALIGN as u64)
        {
            return Err(StoreError::Config(format!(
                "segment_bytes {} must be a multiple of {IO_ALIGN} and at least {}",
                config.segment_bytes,
                2 * buffer_min
            )));
        }
        fs.create_dir_all(dir)
            .map_err(|e| StoreError::io("create directory", dir, e))?;
        let mut log = CommitLog {
            fs,
            dir: dir.to_path_buf(),
            tail: TailCache::new(config.tail_cache_bytes),
            config: CommitLogConfig {
                write_buffer_bytes: config.write_buffer_bytes.max(buffer_min),
                write_buffers_max: config.write_buffers_max.max(2),
                ..config
            },
            segments: BTreeMap::new(),
            append_offset: end_offset,
            written_offset: end_offset,
            synced_offset: end_offset,
            active: None,
            sealed: VecDeque::new(),
            spare: Vec::new(),
            buffers_live: 0,
            in_flight: None,
            next_seq: 0,
            ring_mode: false,
            sync_requested: false,
            failed: None,
            created: Rc::new(RefCell::new(Vec::new())),
            blocking_opens: 0,
        };
        log.spare = log
            .fs
            .write_buffers(log.config.write_buffers_max, log.config.write_buffer_bytes);
        log.buffers_live = log.spare.len();
        for start in list_segments(&log.fs, dir)? {
            log.open_segment(start, false)?;
        }
        let seg = log.segment_start(end_offset);
        if !log.segments.contains_key(&seg) {
            log.open_segment(seg, true)?;
        }
        let pos = end_offset - seg;
        let file_pos = align_down(pos);
        let mut buf = log.take_buffer()?;
        if pos > file_pos {
            // Reload the partial last page so the next write rewrites it whole.
            let (page, n) = log.segments[&seg]
                .reader
                .read_at(vec![0; IO_ALIGN], file_pos)
                .await;
            let n = n.map_err(|e| StoreError::io("read", &log.segments[&seg].path, e))?;
            let want = (pos - file_pos) as usize;
            if n < want {
                return Err(StoreError::Corrupt {
                    what: "commit log segment",
                    path: log.segments[&seg].path.clone(),
                    offset: file_pos + n as u64,
                    reason: format!("file ends before the recovered end {end_offset}"),
                });
            }
            buf[..want].copy_from_slice(&page[..want]);
        }
        log.active = Some(WriteChunk {
            segment: seg,
            file_pos,
            buf,
            len: (pos - file_pos) as usize,
        });
        Ok(log)
    }

    /// Start offset of the segment holding `offset`.
    pub fn segment_start(&self, offset: u64) -> u64 {
        offset / self.config.segment_bytes * self.config.segment_bytes
    }

    /// The segment size.
    pub fn segment_bytes(&self) -> u64 {
        self.config.segment_bytes
    }

    fn open_segment(&mut self, start: u64, create: bool) -> StoreResult<()> {
        let path = self.dir.join(file_name(start));
        let writer = self
            .fs
            .open(
                &path,
                OpenMode {
                    create,
                    direct: self.config.direct_io,
                },
            )
            .map_err(|e| StoreError::io("open", &path, e))?;
        let reader = self
            .fs
            .open(
                &path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("open", &path, e))?;
        let allocated = !create;
        self.segments.insert(
            start,
            Segment {
                start,
                path,
                writer: Rc::new(writer),
                reader,
                allocated,
            },
        );
        Ok(())
    }

    fn take_buffer(&mut self) -> StoreResult<AlignedBuf> {
        if let Some(buf) = self.spare.pop() {
            return Ok(buf);
        }
        self.buffers_live += 1;
        Ok(AlignedBuf::zeroed(self.config.write_buffer_bytes))
    }

    /// Next record's physical offset: the end of everything appended.
    pub fn append_offset(&self) -> u64 {
        self.append_offset
    }
    /// End of what the disk has been handed and confirmed written.
    pub fn written_offset(&self) -> u64 {
        self.written_offset
    }
    /// End of what is known to be on stable storage (`fdatasync`ed).
    pub fn synced_offset(&self) -> u64 {
        self.synced_offset
    }
    /// Start offset of the oldest segment.
    pub fn min_offset(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }
    /// Segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment<F::File>> {
        self.segments.values()
    }
    /// The failure that stopped the log, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }
    /// Bytes appended but not yet written.
    pub fn pending_bytes(&self) -> u64 {
        self.append_offset - self.written_offset
    }

    fn budget_bytes(&self) -> u64 {
        (self.config.write_buffers_max * self.config.write_buffer_bytes) as u64
    }

    /// Appends one record of `len` bytes, encoded by `encode` straight into the write buffer
    /// at the physical offset it is given. Returns that offset.
    pub fn append(
        &mut self,
        len: usize,
        encode: impl FnOnce(&mut [u8], u64) -> StoreResult<()>,
    ) -> StoreResult<u64> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::Failed(reason.clone()));
        }
        if len > self.config.max_record_bytes {
            return Err(StoreError::Message(ringmq_wire::WireError::TooLong {
                what: "record",
                len,
                max: self.config.max_record_bytes,
            }));
        }
        let seg_bytes = self.config.segment_bytes;
        let pos = self.append_offset - self.segment_start(self.append_offset);
        if pos + (len + BLANK_RECORD_BYTES_MIN) as u64 > seg_bytes {
            self.roll_segment()?;
        }
        self.ensure_room(len)?;
        let offset = self.append_offset;
        let chunk = self
            .active
            .as_mut()
            .ok_or_else(|| StoreError::Failed("no write buffer".into()))?;
        let at = chunk.len;
        encode(&mut chunk.buf[at..at + len], offset)?;
        chunk.len += len;
        self.append_offset += len as u64;
        self.tail.push(offset, &chunk.buf[at..at + len]);
        Ok(offset)
    }

    /// Closes the current segment with a blank record and moves to the next one.
    fn roll_segment(&mut self) -> StoreResult<()> {
        let seg = self.segment_start(self.append_offset);
        let remaining = (seg + self.config.segment_bytes - self.append_offset) as usize;
        self.ensure_room(BLANK_RECORD_BYTES_MIN)?;
        let next = seg + self.config.segment_bytes;
        // The next segment's file is created by a commit job (normally well before, once
        // this one is half full); appends into it only fill write buffers.
        // Everything that can fail comes before the first change, so a refused roll leaves
        // the buffers and offsets as they were.
        let buf = self.new_buffer_or_busy()?;
        let chunk = self
            .active
            .as_mut()
            .ok_or_else(|| StoreError::Failed("no write buffer".into()))?;
        let at = chunk.len;
        encode_blank(&mut chunk.buf[at..at + BLANK_RECORD_BYTES_MIN], remaining)?;
        chunk.len += BLANK_RECORD_BYTES_MIN;
        let old = self.active.replace(WriteChunk {
            segment: next,
            file_pos: 0,
            buf,
            len: 0,
        });
        self.sealed.extend(old);
        self.append_offset = next;
        self.tail.seal();
        Ok(())
    }

    fn new_buffer_or_busy(&mut self) -> StoreResult<AlignedBuf> {
        if self.spare.is_empty() && self.buffers_live >= self.config.write_buffers_max {
            return Err(StoreError::Busy {
                pending_bytes: self.pending_bytes(),
                budget_bytes: self.budget_bytes(),
            });
        }
        self.take_buffer()
    }

    /// Makes room for `len` bytes in the active buffer, sealing it if full.
    fn ensure_room(&mut self, len: usize) -> StoreResult<()> {
        let Some(chunk) = self.active.as_ref() else {
            return Err(StoreError::Failed("no write buffer".into()));
        };
        if chunk.len + len <= chunk.buf.capacity() {
            return Ok(());
        }
        let buf = self.new_buffer_or_busy()?;
        let old = self.swap_active(buf)?;
        self.sealed.push_back(old);
        Ok(())
    }

    /// Replaces the active buffer by `buf`, which gets a copy of the partial last page (the
    /// page is written again, whole, with whatever follows it). Returns the old buffer.
    fn swap_active(&mut self, mut buf: AlignedBuf) -> StoreResult<WriteChunk> {
        let old = self
            .active
            .take()
            .ok_or_else(|| StoreError::Failed("no write buffer".into()))?;
        let carry_from = align_down(old.len as u64) as usize;
        let carry = old.len - carry_from;
        buf[..carry].copy_from_slice(&old.buf[carry_from..old.len]);
        self.active = Some(WriteChunk {
            segment: old.segment,
            file_pos: old.file_pos + carry_from as u64,
            buf,
            len: carry,
        });
        Ok(old)
    }

    /// Whether there is anything appended that a commit would write.
    pub fn has_pending(&self) -> bool {
        self.append_offset > self.written_offset
            || (self.config.sync && self.synced_offset < self.written_offset)
    }

    /// Group commit: writes everything appended so far (and syncs in sync mode). Returns the
    /// new acknowledged offset (`written_offset`, or `synced_offset` in sync mode). Both
    /// halves ([`Self::begin_commit`], [`Self::finish_commit`]) in one call, with the
    /// blocking-safe file operations.
    ///
    /// Poll it to completion: a commit dropped mid-way stops the log (see
    /// [`StoreError::Failed`]), since what reached the disk is then unknown. Not to be called
    /// while a job from [`Self::begin_commit`] is out: that too stops the log.
    pub async fn commit_step(&mut self) -> StoreResult<u64> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::Failed(reason.clone()));
        }
        if self.in_flight.is_some() {
            // `&mut self` rules out a concurrent commit: this one was dropped mid-way, so
            // what reached the disk is unknown. Fail-stop; a restart recovers.
            let reason = "a commit was abandoned before completing; restart to recover".to_owned();
            self.failed = Some(reason.clone());
            return Err(StoreError::Failed(reason));
        }
        let Some(job) = self.begin_commit(false)? else {
            return Ok(self.ack_offset());
        };
        let done = job.run().await;
        self.finish_commit(done)
    }

    /// Whether a commit job is out (taken by [`Self::begin_commit`], not yet finished).
    pub fn commit_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Runs commits on the shard's ring: from now on [`Self::sync`] does not block but asks
    /// the next job for the `fdatasync`. Turn it off before a blocking shutdown.
    pub fn set_ring_mode(&mut self, on: bool) {
        self.ring_mode = on;
    }

    /// Submit half of a group commit: takes everything appended so far into a job (and, in
    /// sync mode or when a sync was asked for, the `fdatasync`s covering it), preparing
    /// segments on the way. `None` when there is nothing to do or a job is already in flight.
    /// `ring` selects the ring operations ([`crate::store::io::StoreFile::write_at_ring`]):
    /// the job must then run as a task of the shard.
    pub fn begin_commit(&mut self, ring: bool) -> StoreResult<Option<CommitJob<F>>> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::Failed(reason.clone()));
        }
        let want_sync = self.sync_requested && self.synced_offset < self.written_offset;
        if self.in_flight.is_some() || !(self.has_pending() || want_sync) {
            return Ok(None);
        }
        self.open_missing_segments()?;
        let (create, allocate) = self.prepare_segments();
        let target = self.append_offset;
        let mut chunks = std::mem::take(&mut self.sealed);
        if let Some(active) = self.active.as_ref()
            && active.len > 0
            && active.end_offset() > self.written_offset
        {
            // Swap in a fresh buffer carrying the partial last page, so appends go on while
            // the old one is being written.
            let buf = self.take_buffer()?;
            chunks.push_back(self.swap_active(buf)?);
        }
        let writes = self.job_writes(chunks)?;
        let syncs = if self.config.sync || self.sync_requested {
            let from = self.segment_start(self.synced_offset);
            self.segments
                .range(from..=target)
                .map(|(_, s)| (s.writer.clone(), s.path.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let target_synced = (!syncs.is_empty() || self.config.sync).then_some(target);
        self.sync_requested = false;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight = Some(seq);
        Ok(Some(CommitJob {
            seq,
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            create,
            created: self.created.clone(),
            allocate,
            writes,
            syncs,
            target_written: target,
            target_synced,
            ring,
        }))
    }

    /// The writes of a job. Consecutive chunks of one segment overlap by the partial page the
    /// later one carries: the earlier is written up to that page only, so that no two writes
    /// of a job touch the same page and all can be in flight together.
    fn job_writes(&mut self, chunks: VecDeque<WriteChunk>) -> StoreResult<Vec<JobWrite<F::File>>> {
        let mut writes = Vec::with_capacity(chunks.len());
        let mut chunks = chunks.into_iter().peekable();
        while let Some(mut chunk) = chunks.next() {
            let carried_on = chunks.peek().is_some_and(|next| {
                next.segment == chunk.segment
                    && next.file_pos == chunk.file_pos + align_down(chunk.len as u64)
            });
            let write_len = if carried_on {
                align_down(chunk.len as u64) as usize
            } else {
                align_up(chunk.len as u64) as usize
            };
            if write_len == 0 {
                self.spare.push(chunk.buf);
                continue;
            }
            chunk.buf[chunk.len.min(write_len)..write_len].fill(0);
            let seg = self
                .segments
                .get(&chunk.segment)
                .ok_or_else(|| StoreError::Failed(format!("segment {} vanished", chunk.segment)))?;
            writes.push(JobWrite {
                file: seg.writer.clone(),
                path: seg.path.clone(),
                buf: chunk.buf,
                write_len,
                file_pos: chunk.file_pos,
            });
        }
        Ok(writes)
    }

    /// Complete half of a group commit: takes the job's buffers back and advances the
    /// written (and synced) offsets. A failed job stops the log. Returns the new ack offset.
    pub fn finish_commit(&mut self, done: CommitDone) -> StoreResult<u64> {
        if self.in_flight != Some(done.seq) {
            let reason = format!(
                "commit job {} finished but {:?} was in flight",
                done.seq, self.in_flight
            );
            self.failed = Some(reason.clone());
            return Err(StoreError::Failed(reason));
        }
        self.in_flight = None;
        self.spare.extend(done.buffers);
        for segment in self.created.borrow_mut().drain(..) {
            self.segments.entry(segment.start).or_insert(segment);
        }
        for start in &done.allocated {
            if let Some(seg) = self.segments.get_mut(start) {
                seg.allocated = true;
            }
        }
        if let Err(e) = done.result {
            tracing::error!(target: "store::commit_log", error = %e, "commit failed; the store stops accepting writes");
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.written_offset = self.written_offset.max(done.target_written);
        if let Some(synced) = done.target_synced {
            self.synced_offset = self.synced_offset.max(synced);
        }
        // Keep at most the budget of spare buffers (one extra may have been taken to let a
        // commit start with the budget used up).
        while self.spare.len() > 1 && self.buffers_live > self.config.write_buffers_max {
            self.spare.pop();
            self.buffers_live -= 1;
        }
        Ok(self.ack_offset())
    }

    /// Asks the job to create the next segment once the active one is half full, and lists
    /// the segments to preallocate, so appends never wait on file creation or allocation.
    fn prepare_segments(&mut self) -> (Vec<JobCreate>, Vec<JobAllocate<F::File>>) {
        let seg = self.segment_start(self.append_offset);
        let half = seg + self.config.segment_bytes / 2;
        let next = seg + self.config.segment_bytes;
        let len = self.config.segment_bytes;
        let create = if self.append_offset >= half && !self.segments.contains_key(&next) {
            vec![JobCreate {
                start: next,
                path: self.dir.join(file_name(next)),
                direct: self.config.direct_io,
                len,
            }]
        } else {
            Vec::new()
        };
        let allocate = self
            .segments
            .values()
            .filter(|s| !s.allocated)
            .map(|s| JobAllocate {
                file: s.writer.clone(),
                path: s.path.clone(),
                start: s.start,
                len,
            })
            .collect();
        (create, allocate)
    }

    /// Opens, on the calling thread, the segments that buffered data is destined for but no
    /// job has created yet. Only happens when appends cross half a segment and the segment
    /// end within one commit (a write budget larger than half a segment): the commit jobs
    /// create the next segment ahead otherwise.
    fn open_missing_segments(&mut self) -> StoreResult<()> {
        let mut missing: Vec<u64> = self
            .sealed
            .iter()
            .chain(self.active.iter())
            .map(|c| c.segment)
            .filter(|s| !self.segments.contains_key(s))
            .collect();
        missing.dedup();
        for start in missing {
            self.blocking_opens += 1;
            tracing::debug!(target: "store::commit_log", segment = start,
                "segment opened on the shard thread: appends outran its creation ahead");
            self.open_segment(start, true)?;
        }
        Ok(())
    }

    /// Segments opened on the shard thread because appends reached them before a commit job
    /// created them ahead (0 in normal operation).
    pub fn blocking_segment_opens(&self) -> u64 {
        self.blocking_opens
    }

    /// `fdatasync`s every segment written since the last sync (used by the checkpoint in
    /// async mode). Returns the synced offset.
    ///
    /// In ring mode ([`Self::set_ring_mode`]) it does not block: it asks the next commit job
    /// for the `fdatasync` and returns what is synced so far.
    pub async fn sync(&mut self) -> StoreResult<u64> {
        if self.synced_offset >= self.written_offset {
            return Ok(self.synced_offset);
        }
        if self.ring_mode {
            self.sync_requested = true;
            return Ok(self.synced_offset);
        }
        let target = self.written_offset;
        let from = self.segment_start(self.synced_offset);
        for seg in self.segments.range(from..=target).map(|(_, s)| s) {
            seg.writer
                .sync_data()
                .await
                .map_err(|e| StoreError::io("fdatasync", &seg.path, e))?;
        }
        self.synced_offset = target;
        Ok(target)
    }

    /// `fdatasync`s every segment from the one holding `from` on. Recovery calls it: the
    /// records it accepted past the last checkpoint may sit unsynced in the page cache (the
    /// previous process was killed), and `open` reports them as synced.
    pub async fn sync_from(&self, from: u64) -> StoreResult<()> {
        for seg in self
            .segments
            .range(self.segment_start(from)..)
            .map(|(_, s)| s)
        {
            seg.writer
                .sync_data()
                .await
                .map_err(|e| StoreError::io("fdatasync", &seg.path, e))?;
        }
        Ok(())
    }

    /// The offset up to which appends are acknowledged in this log's mode.
    pub fn ack_offset(&self) -> u64 {
        if self.config.sync {
            self.synced_offset
        } else {
            self.written_offset
        }
    }

    /// Where `[offset, offset + len)` lives on disk, if it is written and within one segment.
    pub fn file_range(&self, offset: u64, len: u32) -> Option<FileRange> {
        let seg = self.segment_start(offset);
        let segment = self.segments.get(&seg)?;
        (offset + u64::from(len) <= self.written_offset
            && offset - seg + u64::from(len) <= self.config.segment_bytes)
            .then_some(FileRange {
                segment: segment.start,
                file_pos: offset - seg,
                len,
            })
    }

    /// The segment starting at `start`.
    pub fn segment(&self, start: u64) -> Option<&Segment<F::File>> {
        self.segments.get(&start)
    }

    /// The bytes `[offset, offset + len)` if the tail cache holds them (zero-copy).
    pub fn cached(&self, offset: u64, len: usize) -> Option<Bytes> {
        self.tail.get(offset, len)
    }

    /// Reads `len` bytes at `offset`: from the tail cache when there, else from the file.
    /// The range must lie within one segment and below `limit` (the caller's visibility).
    pub async fn read(&self, offset: u64, len: usize) -> StoreResult<Bytes> {
        if let Some(bytes) = self.tail.get(offset, len) {
            return Ok(bytes);
        }
        let seg = self.segment_start(offset);
        if offset + len as u64 > self.written_offset {
            // Not yet on disk and not in the cache: only the active buffer has it.
            if let Some(chunk) = self.active.as_ref() {
                let start = chunk.segment + chunk.file_pos;
                if offset >= start && offset + len as u64 <= chunk.end_offset() {
                    let at = (offset - start) as usize;
                    return Ok(Bytes::copy_from_slice(&chunk.buf[at..at + len]));
                }
            }
            for chunk in &self.sealed {
                let start = chunk.segment + chunk.file_pos;
                if offset >= start && offset + len as u64 <= chunk.end_offset() {
                    let at = (offset - start) as usize;
                    return Ok(Bytes::copy_from_slice(&chunk.buf[at..at + len]));
                }
            }
        }
        let segment = self.segments.get(&seg).ok_or_else(|| StoreError::Corrupt {
            what: "commit log",
            path: self.dir.clone(),
            offset,
            reason: "no segment holds this offset".into(),
        })?;
        let (buf, n) = segment.reader.read_at(vec![0; len], offset - seg).await;
        let n = n.map_err(|e| StoreError::io("read", &segment.path, e))?;
        if n < len {
            return Err(StoreError::Corrupt {
                what: "commit log segment",
                path: segment.path.clone(),
                offset: offset - seg + n as u64,
                reason: format!("file ends inside a {len}-byte read"),
            });
        }
        Ok(Bytes::from(buf))
    }

    /// Deletes the segment starting at `start` (retention). Never the active one.
    pub fn remove_segment(&mut self, start: u64) -> StoreResult<bool> {
        if start == self.segment_start(self.append_offset) || !self.segments.contains_key(&start) {
            return Ok(false);
        }
        if let Some(seg) = self.segments.remove(&start) {
            self.fs
                .remove_file(&seg.path)
                .map_err(|e| StoreError::io("remove", &seg.path, e))?;
            self.tail.drop_below(start + self.config.segment_bytes);
        }
        Ok(true)
    }

    /// Last-modified time of a segment file.
    pub fn segment_modified_ms(&self, start: u64) -> StoreResult<i64> {
        let seg = self
            .segments
            .get(&start)
            .ok_or_else(|| StoreError::Config(format!("no segment {start}")))?;
        self.fs
            .modified_ms(&seg.path)
            .map_err(|e| StoreError::io("stat", &seg.path, e))
    }
}

/// Start offsets of the segment files in `dir`, sorted; other files are ignored.
pub fn list_segments<F: StoreFs>(fs: &F, dir: &Path) -> StoreResult<Vec<u64>> {
    if !fs.exists(dir) {
        return Ok(Vec::new());
    }
    let mut starts: Vec<u64> = fs
        .list_dir(dir)
        .map_err(|e| StoreError::io("list", dir, e))?
        .iter()
        .filter_map(|n| parse_file_name(n))
        .collect();
    starts.sort_unstable();
    Ok(starts)
}
