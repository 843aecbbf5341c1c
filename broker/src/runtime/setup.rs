//! Ring setup and the startup checks: the `io_uring_disabled` sysctl, the setup-flag fallback
//! chain (`SINGLE_ISSUER | DEFER_TASKRUN` → `COOP_TASKRUN` → plain, on `EINVAL` only), the
//! mapping of `EPERM`/`ENOSYS`/`ENOMEM` to typed errors, and the opcode probe. Runs once per
//! shard, on the shard's thread, before anything else.

use std::io;

use io_uring::{IoUring, Probe, opcode};

use super::error::RuntimeError;
use super::sys;

/// Opcodes the runtime cannot work without.
const REQUIRED_OPCODES: &[(u8, &str)] = &[
    (opcode::Read::CODE, "Read"),
    (opcode::Write::CODE, "Write"),
    (opcode::ReadFixed::CODE, "ReadFixed"),
    (opcode::WriteFixed::CODE, "WriteFixed"),
    (opcode::Fsync::CODE, "Fsync"),
    (opcode::Fallocate::CODE, "Fallocate"),
    (opcode::Splice::CODE, "Splice"),
    (opcode::Send::CODE, "Send"),
    (opcode::Recv::CODE, "Recv"),
    (opcode::Accept::CODE, "Accept"),
    (opcode::Connect::CODE, "Connect"),
    (opcode::Timeout::CODE, "Timeout"),
    (opcode::AsyncCancel::CODE, "AsyncCancel"),
];

/// Which setup flags the ring got (the first that the kernel accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingFlavor {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (preferred, kernel >= 6.1).
    DeferTaskrun,
    /// `COOP_TASKRUN` (kernel >= 5.19).
    CoopTaskrun,
    /// No optional flags.
    Plain,
}

impl RingFlavor {
    /// Short name for logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            RingFlavor::DeferTaskrun => "single_issuer+defer_taskrun",
            RingFlavor::CoopTaskrun => "coop_taskrun",
            RingFlavor::Plain => "plain",
        }
    }
}

/// Maps an `io_uring_setup` failure to the startup error that names its cause and fix.
pub(crate) fn map_setup_error(e: io::Error, entries: u32) -> RuntimeError {
    match e.raw_os_error() {
        Some(libc::EPERM) => match sys::io_uring_disabled() {
            0 => RuntimeError::BlockedBySeccomp,
            value => RuntimeError::DisabledBySysctl { value },
        },
        Some(libc::ENOSYS) => RuntimeError::NotSupported,
        Some(libc::ENOMEM) => RuntimeError::RingMemory { entries },
        _ => RuntimeError::io("creating the io_uring ring", e),
    }
}

/// Builds a ring: `SINGLE_ISSUER | DEFER_TASKRUN`, else `COOP_TASKRUN`, else plain, moving on
/// only when the kernel says `EINVAL`. Never SQPOLL or IOPOLL.
pub(crate) fn build_ring(entries: u32) -> Result<(IoUring, RingFlavor), RuntimeError> {
    let disabled = sys::io_uring_disabled();
    if disabled >= 2 {
        return Err(RuntimeError::DisabledBySysctl { value: disabled });
    }
    let flavors = [
        RingFlavor::DeferTaskrun,
        RingFlavor::CoopTaskrun,
        RingFlavor::Plain,
    ];
    let mut last = None;
    for flavor in flavors {
        let mut b = IoUring::builder();
        b.setup_cqsize(entries.saturating_mul(2));
        match flavor {
            RingFlavor::DeferTaskrun => {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            RingFlavor::CoopTaskrun => {
                b.setup_coop_taskrun();
            }
            RingFlavor::Plain => {}
        }
        match b.build(entries) {
            Ok(ring) => return Ok((ring, flavor)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(map_setup_error(e, entries)),
        }
    }
    Err(map_setup_error(
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
        entries,
    ))
}

/// Checks every required opcode with `register_probe`; returns whether `SendZc` exists.
pub(crate) fn probe_opcodes(ring: &IoUring) -> Result<bool, RuntimeError> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| RuntimeError::io("probing io_uring opcodes", e))?;
    let missing: Vec<&'static str> = REQUIRED_OPCODES
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(RuntimeError::MissingOpcodes { missing });
    }
    Ok(probe.is_supported(opcode::SendZc::CODE))
}
