//! The write side of one connection: a shared buffer that callers encode their frames
//! straight into, and that the connection's writer task takes whole, one socket write per
//! wake-up.
//!
//! Why not a channel of encoded frames: with many requests in flight on one connection
//! (a producer with 64 concurrent sends), a channel costs an allocation per frame (the
//! encoded `Bytes`), a channel slot, and a copy into the writer's buffer. Here a caller locks
//! the buffer, encodes its frame at its end (no intermediate buffer) and wakes the writer
//! only if the buffer was empty; the writer swaps the buffer for its spare one (both keep
//! their capacity, so the steady state allocates nothing) and writes everything that
//! accumulated meanwhile in one `write`. Frames are appended whole under the lock, so they
//! never interleave, and they go out in the order their callers took the lock.
//!
//! Bounded: past [`Outbox::limit_bytes`] buffered bytes, callers wait for the writer to
//! take the buffer (backpressure), bounded by their own timeout. A frame larger than the
//! limit is still accepted into an empty buffer, so that any frame the codec allows can be
//! sent.
//!
//! Direct writes: a caller whose request is the only one outstanding on the connection
//! (one send in flight: nothing to coalesce with) may take the write turn itself
//! ([`Outbox::push_direct`]) and write the buffer from its own task, saving the hop to the
//! writer task and back through the scheduler. One writer at a time holds the turn (the
//! writer task or such a caller), so frames still go out whole and in order; bytes a direct
//! write could not finish without blocking are handed to the writer task, which writes them
//! before anything queued later.

use std::sync::Mutex;

use bytes::BytesMut;
use ringmq_wire::{RemotingCommand, WireError};
use tokio::sync::Notify;

/// Capacity above which a buffer is dropped after use rather than kept, so that one large
/// frame does not pin its memory for the connection's life.
const KEEP_CAPACITY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Why a frame could not be queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    /// The connection is closed; nothing more will be written.
    #[error("the connection is closed")]
    Closed,
    /// The command does not encode (e.g. a header or frame over the limits).
    #[error("cannot encode the frame: {0}")]
    Encode(#[from] WireError),
}

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    /// The unwritten end of a batch a direct write could not finish: written first.
    carry: BytesMut,
    /// Someone (the writer task or a direct caller) holds the write turn.
    writing: bool,
    /// A buffer kept for direct writers to swap in (its capacity is reused).
    spare: BytesMut,
    closed: bool,
}

impl State {
    fn has_work(&self) -> bool {
        !self.buf.is_empty() || !self.carry.is_empty()
    }
}

/// What [`Outbox::try_push_with`] did.
enum Pushed {
    /// Queued for the writer task.
    Queued,
    /// The caller holds the write turn and must write this batch.
    Direct(BytesMut),
    /// Over the limit: nothing queued.
    Full,
}

/// The shared write buffer of one connection; see the module docs.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer when the buffer goes from empty to non-empty, or on close.
    writer: Notify,
    /// Wakes callers waiting for room when the writer takes the buffer, or on close.
    space: Notify,
    limit_bytes: usize,
}

impl Outbox {
    /// An empty outbox holding at most `limit_bytes` (beyond one frame) before callers wait.
    pub(crate) fn new(limit_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            writer: Notify::new(),
            space: Notify::new(),
            limit_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Appends and swaps leave the buffer consistent even if a panic interrupted them
        // (a half-encoded frame is truncated by the encoder itself).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Encodes `command` at the end of the buffer, waiting for room while the buffer holds
    /// more than the limit.
    pub(crate) async fn push(&self, command: &RemotingCommand) -> Result<(), PushError> {
        self.push_with(command, false).await.map(drop)
    }

    /// Like [`Self::push`], but when nobody holds the write turn the caller takes it: the
    /// whole buffer (this frame included) comes back, to be written by the caller, who must
    /// then call [`Self::direct_done`]. `None`: the writer task writes it.
    pub(crate) async fn push_direct(
        &self,
        command: &RemotingCommand,
    ) -> Result<Option<BytesMut>, PushError> {
        self.push_with(command, true).await
    }

    async fn push_with(
        &self,
        command: &RemotingCommand,
        direct: bool,
    ) -> Result<Option<BytesMut>, PushError> {
        loop {
            let room = self.space.notified();
            let mut room = std::pin::pin!(room);
            // Registered before the check, so a take between the check and the await is
            // not missed.
            room.as_mut().enable();
            match self.try_push_with(command, direct)? {
                Pushed::Queued => return Ok(None),
                Pushed::Direct(batch) => return Ok(Some(batch)),
                Pushed::Full => room.await,
            }
        }
    }

    /// Encodes `command` at the end of the buffer if there is room: `Ok(false)` if the
    /// buffer is over the limit.
    pub(crate) fn try_push(&self, command: &RemotingCommand) -> Result<bool, PushError> {
        Ok(!matches!(self.try_push_with(command, false)?, Pushed::Full))
    }

    fn try_push_with(&self, command: &RemotingCommand, direct: bool) -> Result<Pushed, PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        let was_empty = state.buf.is_empty();
        if !was_empty && state.buf.len() >= self.limit_bytes {
            return Ok(Pushed::Full);
        }
        command.encode_into(&mut state.buf)?;
        if direct && !state.writing && state.carry.is_empty() {
            state.writing = true;
            let mut batch = std::mem::take(&mut state.spare);
            std::mem::swap(&mut state.buf, &mut batch);
            drop(state);
            // Nothing is queued now: callers waiting for room may go on.
            self.space.notify_waiters();
            return Ok(Pushed::Direct(batch));
        }
        drop(state);
        if was_empty {
            self.writer.notify_one();
        }
        Ok(Pushed::Queued)
    }

    /// Gives the write turn back after a direct write of `batch`, of which the first
    /// `written` bytes went out; the rest is handed to the writer task, to be written before
    /// anything queued meanwhile.
    pub(crate) fn direct_done(&self, mut batch: BytesMut, written: usize) {
        let mut state = self.lock();
        debug_assert!(state.writing && state.carry.is_empty());
        state.writing = false;
        if written < batch.len() {
            let _ = batch.split_to(written);
            state.carry = batch;
        } else {
            Self::recycle(&mut batch);
            if batch.capacity() > state.spare.capacity() {
                state.spare = batch;
            }
        }
        let wake = state.has_work() || state.closed;
        drop(state);
        if wake {
            self.writer.notify_one();
        }
    }

    /// Waits until there are bytes to write and nobody holds the write turn, or the outbox
    /// is closed.
    pub(crate) async fn ready(&self) {
        loop {
            {
                let state = self.lock();
                if (state.has_work() && !state.writing) || state.closed {
                    return;
                }
            }
            self.writer.notified().await;
        }
    }

    /// Waits for bytes to write and the write turn, takes the turn and swaps the bytes into
    /// `spare` (which must be empty; the unfinished end of a direct write comes first):
    /// `false` once the outbox is closed and everything queued before the close has been
    /// taken. Give the turn back with [`Self::writer_done`].
    pub(crate) async fn take(&self, spare: &mut BytesMut) -> bool {
        debug_assert!(spare.is_empty());
        loop {
            {
                let mut state = self.lock();
                if !state.writing {
                    if !state.carry.is_empty() {
                        std::mem::swap(&mut state.carry, spare);
                        state.writing = true;
                        return true;
                    }
                    if !state.buf.is_empty() {
                        std::mem::swap(&mut state.buf, spare);
                        state.writing = true;
                        drop(state);
                        self.space.notify_waiters();
                        return true;
                    }
                    if state.closed {
                        return false;
                    }
                }
            }
            self.writer.notified().await;
        }
    }

    /// The writer task gives back the write turn taken by [`Self::take`].
    pub(crate) fn writer_done(&self) {
        self.lock().writing = false;
    }

    /// Empties a buffer returned by [`Self::take`] after it was written, keeping its
    /// capacity unless it grew past what is worth keeping.
    pub(crate) fn recycle(spare: &mut BytesMut) {
        if spare.capacity() > KEEP_CAPACITY_BYTES_MAX {
            *spare = BytesMut::new();
        } else {
            spare.clear();
        }
    }

    /// Refuses further frames and wakes the writer and any waiting caller. Frames already
    /// queued are still handed to the writer.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.writer.notify_one();
        self.space.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ringmq_wire::{FrameDecoder, RequestCode};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn command(id: usize, body_bytes: usize) -> RemotingCommand {
        let mut command = RemotingCommand::request(RequestCode::SendMessageV2);
        command
            .ext_fields
            .insert("id".into(), id.to_string().into());
        command.body = vec![id as u8; body_bytes].into();
        command
    }

    fn ids(bytes: &[u8]) -> Vec<String> {
        let mut decoder = FrameDecoder::default();
        decoder.extend(bytes);
        let mut ids = Vec::new();
        while let Some(command) = decoder.next_command().expect("whole frames") {
            ids.push(command.ext("id").expect("id").to_owned());
        }
        assert_eq!(decoder.buffered(), 0, "no partial frame left");
        ids
    }

    #[tokio::test]
    async fn frames_queued_between_takes_come_out_whole_and_in_order() {
        let outbox = Outbox::new(1 << 20);
        for id in 0..5 {
            outbox.push(&command(id, 100)).await.expect("push");
        }
        let mut spare = BytesMut::new();
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["0", "1", "2", "3", "4"]);
        Outbox::recycle(&mut spare);
        outbox.push(&command(5, 10)).await.expect("push");
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["5"]);
    }

    #[tokio::test]
    async fn a_full_outbox_holds_callers_until_the_writer_takes_it() {
        let outbox = Arc::new(Outbox::new(1000));
        // One frame over the limit is accepted into an empty buffer...
        outbox.push(&command(0, 2000)).await.expect("push");
        // ...but the next waits.
        assert!(!outbox.try_push(&command(1, 10)).expect("no error"));
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.push(&command(1, 10)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let mut spare = BytesMut::new();
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["0"]);
        tokio::time::timeout(WAIT, waiting)
            .await
            .expect("woken")
            .expect("join")
            .expect("pushed");
        Outbox::recycle(&mut spare);
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["1"]);
    }

    #[tokio::test]
    async fn close_hands_over_what_was_queued_then_ends_the_writer_and_refuses_more() {
        let outbox = Outbox::new(1 << 20);
        outbox.push(&command(7, 1)).await.expect("push");
        outbox.close();
        assert!(matches!(
            outbox.push(&command(8, 1)).await,
            Err(PushError::Closed)
        ));
        let mut spare = BytesMut::new();
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["7"]);
        Outbox::recycle(&mut spare);
        assert!(!outbox.take(&mut spare).await);
    }

    #[tokio::test]
    async fn close_wakes_a_caller_waiting_for_room() {
        let outbox = Arc::new(Outbox::new(10));
        outbox.push(&command(0, 100)).await.expect("push");
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.push(&command(1, 1)).await })
        };
        tokio::task::yield_now().await;
        outbox.close();
        let outcome = tokio::time::timeout(WAIT, waiting)
            .await
            .expect("woken")
            .expect("join");
        assert!(matches!(outcome, Err(PushError::Closed)));
    }

    #[tokio::test]
    async fn an_unencodable_frame_leaves_the_buffer_as_it_was() {
        let outbox = Outbox::new(1 << 20);
        outbox.push(&command(1, 1)).await.expect("push");
        let mut huge = command(2, 1);
        huge.remark = Some("x".repeat(ringmq_wire::limits::HEADER_BYTES_MAX + 1));
        assert!(matches!(
            outbox.push(&huge).await,
            Err(PushError::Encode(_))
        ));
        outbox.push(&command(3, 1)).await.expect("push");
        let mut spare = BytesMut::new();
        assert!(outbox.take(&mut spare).await);
        outbox.writer_done();
        assert_eq!(ids(&spare), ["1", "3"]);
    }

    #[tokio::test]
    async fn a_writer_waiting_on_an_empty_outbox_is_woken_by_a_push() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut spare = BytesMut::new();
                let taken = outbox.take(&mut spare).await;
                (taken, spare)
            })
        };
        tokio::task::yield_now().await;
        outbox.push(&command(4, 1)).await.expect("push");
        let (taken, spare) = tokio::time::timeout(WAIT, writer)
            .await
            .expect("woken")
            .expect("join");
        assert!(taken);
        assert_eq!(ids(&spare), ["4"]);
    }

    #[tokio::test]
    async fn a_direct_push_takes_the_turn_with_everything_queued_before_it() {
        let outbox = Outbox::new(1 << 20);
        outbox.push(&command(0, 10)).await.expect("push");
        let batch = outbox
            .push_direct(&command(1, 10))
            .await
            .expect("push")
            .expect("the turn was free");
        assert_eq!(ids(&batch), ["0", "1"], "queued frames first, in order");
        // While the caller holds the turn, others queue for the writer task...
        assert!(
            outbox
                .push_direct(&command(2, 10))
                .await
                .expect("push")
                .is_none()
        );
        // ...which does not get the turn before the direct writer gives it back.
        let mut spare = BytesMut::new();
        let early = tokio::time::timeout(Duration::from_millis(50), outbox.take(&mut spare)).await;
        assert!(early.is_err(), "the writer task must wait for the turn");
        let len = batch.len();
        outbox.direct_done(batch, len);
        assert!(outbox.take(&mut spare).await);
        assert_eq!(ids(&spare), ["2"]);
        outbox.writer_done();
    }

    #[tokio::test]
    async fn what_a_direct_write_left_goes_out_before_later_frames() {
        let outbox = Outbox::new(1 << 20);
        let batch = outbox
            .push_direct(&command(0, 100))
            .await
            .expect("push")
            .expect("the turn was free");
        let mut wire = batch[..7].to_vec();
        outbox.push(&command(1, 10)).await.expect("push");
        outbox.direct_done(batch, 7);
        // The writer task is due: the carried bytes are taken first, then the queue.
        tokio::time::timeout(WAIT, outbox.ready())
            .await
            .expect("ready");
        let mut spare = BytesMut::new();
        assert!(outbox.take(&mut spare).await);
        wire.extend_from_slice(&spare);
        outbox.writer_done();
        Outbox::recycle(&mut spare);
        assert!(outbox.take(&mut spare).await);
        wire.extend_from_slice(&spare);
        outbox.writer_done();
        assert_eq!(
            ids(&wire),
            ["0", "1"],
            "the byte stream is whole frames in order"
        );
    }

    #[tokio::test]
    async fn close_during_a_direct_write_ends_the_writer_once_the_turn_is_back() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let batch = outbox
            .push_direct(&command(0, 10))
            .await
            .expect("push")
            .expect("the turn was free");
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut spare = BytesMut::new();
                outbox.take(&mut spare).await
            })
        };
        outbox.close();
        let len = batch.len();
        outbox.direct_done(batch, len);
        let taken = tokio::time::timeout(WAIT, writer)
            .await
            .expect("woken")
            .expect("join");
        assert!(!taken, "nothing left to write after the close");
    }

    #[test]
    fn recycle_keeps_ordinary_capacity_and_drops_huge_buffers() {
        let mut small = BytesMut::with_capacity(64 * 1024);
        small.extend_from_slice(b"abc");
        Outbox::recycle(&mut small);
        assert!(small.is_empty());
        assert!(small.capacity() >= 64 * 1024);
        let mut huge = BytesMut::with_capacity(KEEP_CAPACITY_BYTES_MAX + 1);
        huge.extend_from_slice(b"abc");
        Outbox::recycle(&mut huge);
        assert!(huge.is_empty());
        assert!(huge.capacity() < KEEP_CAPACITY_BYTES_MAX);
    }
}
