//! The tail cache: the most recent CommitLog records, in memory, for consumers that follow
//! the tail. `O_DIRECT` writes bypass the page cache, so without it every pull of fresh data
//! would go to the disk.
//!
//! Records are copied in at append time into an open chunk; full chunks are sealed into
//! `Bytes`, so reads are zero-copy slices. The oldest chunks are evicted past
//! `tail_cache_bytes`. A record never straddles two chunks.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Recent records kept in memory for consumers following the tail: sealed `Bytes` chunks,
/// oldest evicted first once over budget. Reads from here are zero-copy slices.
#[derive(Debug)]
pub(super) struct TailCache {
    chunks: VecDeque<(u64, Bytes)>,
    open: BytesMut,
    open_start: u64,
    bytes: usize,
    max_bytes: usize,
    chunk_bytes: usize,
}

impl TailCache {
    pub(super) fn new(max_bytes: usize) -> Self {
        let chunk_bytes = (max_bytes / 16).clamp(64 * 1024, 4 * 1024 * 1024);
        TailCache {
            chunks: VecDeque::new(),
            open: BytesMut::new(),
            open_start: 0,
            bytes: 0,
            max_bytes,
            chunk_bytes,
        }
    }

    pub(super) fn push(&mut self, offset: u64, record: &[u8]) {
        if self.max_bytes == 0 {
            return;
        }
        let contiguous = self.open_start + self.open.len() as u64 == offset;
        if !contiguous || self.open.len() + record.len() > self.chunk_bytes {
            self.seal();
            self.open_start = offset;
            self.open.reserve(self.chunk_bytes.max(record.len()));
        }
        self.open.extend_from_slice(record);
    }

    pub(super) fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let chunk = self.open.split().freeze();
        self.bytes += chunk.len();
        self.chunks.push_back((self.open_start, chunk));
        while self.bytes > self.max_bytes {
            match self.chunks.pop_front() {
                Some((_, c)) => self.bytes -= c.len(),
                None => break,
            }
        }
    }

    pub(super) fn get(&self, offset: u64, len: usize) -> Option<Bytes> {
        let end = offset + len as u64;
        let open_end = self.open_start + self.open.len() as u64;
        if offset >= self.open_start && end <= open_end {
            let at = (offset - self.open_start) as usize;
            return Some(Bytes::copy_from_slice(&self.open[at..at + len]));
        }
        let idx = self.chunks.partition_point(|(start, _)| *start <= offset);
        let (start, chunk) = self.chunks.get(idx.checked_sub(1)?)?;
        let at = (offset - start) as usize;
        (at + len <= chunk.len()).then(|| chunk.slice(at..at + len))
    }

    pub(super) fn drop_below(&mut self, offset: u64) {
        while let Some((start, c)) = self.chunks.front() {
            if start + c.len() as u64 <= offset {
                self.bytes -= c.len();
                self.chunks.pop_front();
            } else {
                break;
            }
        }
    }
}
