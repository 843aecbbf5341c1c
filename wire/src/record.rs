//! The stored message record (CommitLog format), the batch send body and the tag hash code.
