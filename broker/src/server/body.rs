//! Response bodies that stay in the CommitLog files: a pull that finds records no longer in
//! the tail cache answers with file ranges, and the connection writer sends the response's
//! header frame and then splices those ranges straight from the segment to the socket.
//!
//! A [`RemotingCommand`](ringmq_wire::RemotingCommand) can only carry a body in memory, so
//! the pull handler leaves the command's body empty and parks the parts here under the
//! response's connection and `opaque`; [`crate::server::service::ShardService`] takes them
//! back when it queues that response for writing, and counts them in the frame length.
//!
//! Bounded: an entry lives only from the moment its response is produced to the moment the
//! service queues it (within the same batch of requests or tick), so there are at most as
//! many as responses in flight on the shard; a closed connection's entries are dropped.
//! Parts registered twice under the same connection and `opaque` (a client reusing an
//! opaque while a request is in flight) are handed out in registration order, which is the
//! order their responses are written.
//!
//! Single-threaded: lives in its shard's state.

use std::collections::{HashMap, VecDeque};

use crate::server::ConnId;
use crate::server::store::RecordBytes;

/// Bodies made of stored records, waiting for their responses to be queued.
#[derive(Debug, Default)]
pub struct PendingBodies {
    bodies: HashMap<(ConnId, i32), VecDeque<Vec<RecordBytes>>>,
}

impl PendingBodies {
    /// Parks the body of the response `opaque` on `conn`.
    pub fn put(&mut self, conn: ConnId, opaque: i32, parts: Vec<RecordBytes>) {
        self.bodies
            .entry((conn, opaque))
            .or_default()
            .push_back(parts);
    }

    /// Takes the body parked for the response `opaque` on `conn`, if any.
    pub fn take(&mut self, conn: ConnId, opaque: i32) -> Option<Vec<RecordBytes>> {
        let queue = self.bodies.get_mut(&(conn, opaque))?;
        let parts = queue.pop_front();
        if queue.is_empty() {
            self.bodies.remove(&(conn, opaque));
        }
        parts
    }

    /// Drops every body parked for a closed connection.
    pub fn forget(&mut self, conn: ConnId) {
        self.bodies.retain(|(c, _), _| *c != conn);
    }

    /// Bodies parked.
    pub fn len(&self) -> usize {
        self.bodies.values().map(VecDeque::len).sum()
    }

    /// Whether none is parked.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn part(byte: u8) -> Vec<RecordBytes> {
        vec![RecordBytes::Memory(Bytes::from(vec![byte; 3]))]
    }

    #[test]
    fn bodies_come_back_per_connection_and_opaque_in_order() {
        let mut bodies = PendingBodies::default();
        bodies.put(ConnId(1), 7, part(1));
        bodies.put(ConnId(1), 7, part(2));
        bodies.put(ConnId(2), 7, part(3));
        assert_eq!(bodies.len(), 3);
        assert_eq!(bodies.take(ConnId(1), 8), None);
        assert_eq!(bodies.take(ConnId(1), 7), Some(part(1)));
        assert_eq!(bodies.take(ConnId(1), 7), Some(part(2)));
        assert_eq!(bodies.take(ConnId(1), 7), None);
        bodies.forget(ConnId(2));
        assert!(bodies.is_empty());
    }
}
