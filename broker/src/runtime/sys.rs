//! Small Linux helpers used at startup: capabilities, memlock limit, the io_uring sysctl, the
//! affinity mask, eventfds. Callable from any thread.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Bit of `CAP_IPC_LOCK` in the capability sets (`linux/capability.h`).
const CAP_IPC_LOCK_BIT: u32 = 14;

/// Parses the `CapEff:` hex mask out of a `/proc/<pid>/status` text.
pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Whether the calling thread holds `CAP_IPC_LOCK` (registered buffers are then not charged
/// to `RLIMIT_MEMLOCK`). Capabilities are per thread and the kernel checks the registering
/// thread's, so this reads `/proc/thread-self/status`. Unreadable status counts as "no".
pub(crate) fn has_cap_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/thread-self/status")
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .ok()
        .and_then(|s| parse_cap_eff(&s))
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK_BIT) != 0)
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`None` = unlimited).
pub(crate) fn memlock_soft_limit_bytes() -> io::Result<Option<u64>> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur))
}

/// Reads `/proc/sys/kernel/io_uring_disabled` (absent on kernels < 6.6: treated as 0).
pub(crate) fn io_uring_disabled() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The CPUs this process may run on, from `sched_getaffinity` (not the online list).
pub(crate) fn affinity_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid and writable, and its size is passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// A blocking (io_uring returns EAGAIN on non-blocking fds instead of waiting), close-on-exec eventfd used as a shard's doorbell.
pub(crate) fn eventfd() -> io::Result<File> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Adds 1 to an eventfd counter; EAGAIN (counter saturated) still means "signalled".
pub(crate) fn eventfd_signal(fd: &File) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an fd we hold open.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// A pipe (read end, write end), close-on-exec, resized towards `size_bytes` when allowed.
pub(crate) fn pipe(size_bytes: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A failed resize (above /proc/sys/fs/pipe-max-size for unprivileged users) keeps 64 KiB.
    // SAFETY: fcntl on a descriptor we own.
    let _ = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size_bytes as libc::c_int) };
    Ok((r, w))
}

/// The current capacity of a pipe in bytes.
pub(crate) fn pipe_size(fd: &OwnedFd) -> io::Result<usize> {
    // SAFETY: fcntl on a descriptor we own.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// Removes `CAP_IPC_LOCK` from the calling thread's effective set (tests: exercise the
/// memlock budget as an unprivileged user would). Other threads are unaffected.
#[cfg(test)]
pub(crate) fn drop_cap_ipc_lock_for_this_thread() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data structs are what capget expects for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    data[0].effective &= !(1 << CAP_IPC_LOCK_BIT);
    // SAFETY: as above; only lowers the effective set of this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let caps = parse_cap_eff(status).expect("CapEff present");
        assert_eq!(caps, 0x1fffeffffff);
        assert!(caps & (1 << CAP_IPC_LOCK_BIT) != 0);
        assert_eq!(parse_cap_eff("CapEff:\t0000000000000000\n"), Some(0));
        assert_eq!(parse_cap_eff("nothing"), None);
    }

    #[test]
    fn affinity_is_not_empty() {
        let cpus = affinity_cpus().expect("sched_getaffinity");
        assert!(!cpus.is_empty());
    }

    #[test]
    fn pipe_and_eventfd() {
        let (r, _w) = pipe(1 << 20).expect("pipe");
        assert!(pipe_size(&r).expect("size") >= 4096);
        let e = eventfd().expect("eventfd");
        eventfd_signal(&e);
    }
}
