//! systemd's readiness protocol (`sd_notify`), without libsystemd: when `NOTIFY_SOCKET` is
//! set (a unit with `Type=notify`), the broker sends `READY=1` once every shard listens and
//! `STOPPING=1` when a clean stop begins, as datagrams on that unix socket (a path, or an
//! abstract name written `@name`). Without `NOTIFY_SOCKET` nothing is sent.
//!
//! Runs on the main thread.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `"READY=1\nSTATUS=…"`) to the socket named by `NOTIFY_SOCKET`.
/// Returns whether it was sent (`false`: not under a notify unit).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET_ENV) else {
        return Ok(false);
    };
    notify_to(&target, state).map(|()| true)
}

/// Sends `state` to the notify socket `target` (a path, or `@name` for an abstract socket).
pub fn notify_to(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{NOTIFY_SOCKET_ENV} is empty"),
        ));
    }
    let socket = UnixDatagram::unbound()?;
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?
    } else {
        socket.send_to(state.as_bytes(), std::path::Path::new(target))?
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("{sent} of {} bytes of the notification sent", state.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind");
        notify_to(path.as_os_str(), "READY=1\nSTATUS=serving").expect("sent");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }

    #[test]
    fn notifications_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ringmq-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract name");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        notify_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").expect("sent");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nobody.sock");
        assert!(notify_to(path.as_os_str(), "READY=1").is_err());
        assert!(notify_to(std::ffi::OsStr::new(""), "READY=1").is_err());
    }
}
