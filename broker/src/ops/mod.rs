//! Operating the broker process: `ringmq-broker check -c FILE` ([`check`]) and systemd's
//! readiness notifications ([`notify`]). Used by the binary's `main`; no shard involved.

pub mod check;
pub mod notify;
