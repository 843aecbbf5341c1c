//! Message ids: the broker's offset msgId and the client's unique key.
