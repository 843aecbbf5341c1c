//! Sending stored records straight from the CommitLog segment files to a socket with
//! `splice` (file → pipe → socket, no copy through user space), for pull bodies that are no
//! longer in the tail cache.
//!
//! Each shard keeps a few segment files open for this, read-only and buffered (the store's
//! writer handle may be `O_DIRECT`, which `splice` cannot use at arbitrary offsets):
//! consumers of a backlog read the same one or two segments for a long time. Bounded by
//! [`OPEN_SEGMENTS_MAX`]; the least recently used is closed first. A segment deleted by
//! retention while open stays readable through its descriptor, and the store pins the
//! segments of spans not yet sent, so a span is never cut short by a deletion.
//!
//! Single-threaded: lives in its shard's server.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::runtime::{File, TcpStream};
use crate::server::store::FileSpan;

/// Segment files kept open per shard for `splice`.
pub const OPEN_SEGMENTS_MAX: usize = 8;

/// The shard's open segment files, most recently used last.
#[derive(Debug, Default)]
pub struct SegmentFiles {
    open: RefCell<Vec<(Rc<Path>, Rc<File>)>>,
}

impl SegmentFiles {
    /// The open file of `path`, opening it (and closing the least recently used one past
    /// [`OPEN_SEGMENTS_MAX`]) if needed.
    pub fn file(&self, path: &Rc<Path>) -> io::Result<Rc<File>> {
        let mut open = self.open.borrow_mut();
        if let Some(at) = open.iter().position(|(p, _)| p == path) {
            let entry = open.remove(at);
            let file = entry.1.clone();
            open.push(entry);
            return Ok(file);
        }
        let file = Rc::new(File::open(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("opening {} for splice: {e}", path.display()),
            )
        })?);
        if open.len() >= OPEN_SEGMENTS_MAX {
            open.remove(0);
        }
        open.push((path.clone(), file.clone()));
        Ok(file)
    }

    /// Sends all of `span` to `stream`. An error (or a file shorter than the span) leaves
    /// the frame on the wire incomplete: the caller must close the connection.
    pub async fn splice(&self, stream: &TcpStream, span: &FileSpan) -> io::Result<()> {
        let file = self.file(&span.path)?;
        let len = span.len as usize;
        let sent = stream.splice_from(&file, span.offset, len).await?;
        if sent < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends inside a spliced body: {sent} of {len} bytes at {}",
                    span.path.display(),
                    span.offset
                ),
            ));
        }
        Ok(())
    }

    /// Files open now.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.borrow().is_empty()
    }
}
