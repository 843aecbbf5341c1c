//! TCP on the shard's driver: [`TcpListener`], [`TcpStream`] (accept, connect, recv, send,
//! optional `SendZc`) and zero-copy file → pipe → socket [`TcpStream::splice_from`].
//! Shard-local (`!Send`). On io_uring, sockets are blocking-mode fds driven by io_uring's
//! internal poll; on the fallback driver they are non-blocking fds registered with the
//! shard's epoll instance when created (so create or wrap them on the shard that uses them).

use std::cell::RefCell;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::buf::{IoBuf, IoBufMut};
use super::executor::{core, try_core};
use super::fs::{File, clamp_len};
use super::io_op::IoOp;
use super::op::Op;

/// Pipe size asked for splices: 1 MiB (the default `/proc/sys/fs/pipe-max-size`), so one
/// linked pair moves up to 1 MiB.
const SPLICE_PIPE_BYTES: usize = 1 << 20;

/// Accept backlog of [`TcpListener::bind`] (clients reconnecting in a burst after a broker
/// restart must not be refused; the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Linked file → pipe → socket pairs per submitted chain (8 × 1 MiB): fewer wake-ups of the
/// shard thread per byte, while a broken chain re-plans at most 8 MiB.
pub(crate) const SPLICE_PAIRS_PER_CHAIN: usize = 8;

/// Socket address storage that the kernel reads or writes, boxed so its address is stable.
struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    fn empty() -> Box<Self> {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let storage = unsafe { zeroed() };
        Box::new(SockAddr {
            storage,
            len: size_of::<libc::sockaddr_storage>() as _,
        })
    }

    fn from_std(addr: SocketAddr) -> Box<Self> {
        let mut s = Self::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as _,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut s.storage as *mut _ as *mut libc::sockaddr_in, sin) };
                s.len = size_of::<libc::sockaddr_in>() as _;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as _,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write(&mut s.storage as *mut _ as *mut libc::sockaddr_in6, sin6)
                };
                s.len = size_of::<libc::sockaddr_in6>() as _;
            }
        }
        s
    }

    fn to_std(&self) -> io::Result<SocketAddr> {
        match self.storage.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            f => Err(io::Error::other(format!("unexpected address family {f}"))),
        }
    }
}

/// A listening TCP socket on the shard's ring.
#[derive(Debug)]
pub struct TcpListener {
    fd: Rc<OwnedFd>,
    local: SocketAddr,
}

impl TcpListener {
    /// Binds and listens (`SO_REUSEADDR`, backlog [`LISTEN_BACKLOG`]). Use port 0 in tests.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let l = std::net::TcpListener::bind(addr)?;
        // std listens with 128; a second listen() on a listening socket raises the backlog.
        // SAFETY: listen(2) on a socket we own.
        if unsafe { libc::listen(l.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::from_std(l)
    }

    /// Wraps a listening std socket (blocking mode on io_uring, non-blocking and registered
    /// with epoll on the fallback driver). Call it on the shard that will use it.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<Self> {
        l.set_nonblocking(false)?;
        register_socket(l.as_raw_fd())?;
        let local = l.local_addr()?;
        Ok(TcpListener {
            fd: Rc::new(OwnedFd::from(l)),
            local,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Accepts one connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut addr = SockAddr::empty();
        let op = IoOp::Accept {
            fd: self.fd.as_raw_fd(),
            addr: &mut addr.storage as *mut _ as *mut libc::sockaddr,
            addrlen: &mut addr.len,
        };
        let (c, (addr, _fd)) = match Op::submit(op, (addr, self.fd.clone()), None) {
            Ok(op) => op.returns_fd().await,
            Err((e, _)) => return Err(e),
        };
        let fd = c.result()? as RawFd;
        // SAFETY: accept returned a fresh descriptor that we now own.
        let stream = TcpStream::from_owned(unsafe { OwnedFd::from_raw_fd(fd) })?;
        Ok((stream, addr.to_std()?))
    }
}

/// A connected TCP socket on the shard's ring.
#[derive(Debug)]
pub struct TcpStream {
    fd: Rc<OwnedFd>,
    /// A clean (empty) pipe kept for the next splice.
    pipe: RefCell<Option<Rc<Pipe>>>,
}

#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

/// Makes a new socket known to the current shard's driver (epoll registration on the
/// fallback driver; nothing on io_uring). Off a shard there is no driver yet: nothing to do.
fn register_socket(fd: RawFd) -> io::Result<()> {
    match try_core() {
        Some(core) => core.driver.borrow_mut().register_socket(fd),
        None => Ok(()),
    }
}

impl TcpStream {
    fn from_owned(fd: OwnedFd) -> io::Result<Self> {
        register_socket(fd.as_raw_fd())?;
        Ok(TcpStream {
            fd: Rc::new(fd),
            pipe: RefCell::new(None),
        })
    }

    /// Wraps a connected std stream (blocking mode on io_uring, non-blocking and registered
    /// with epoll on the fallback driver). Call it on the shard that will use it.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<Self> {
        s.set_nonblocking(false)?;
        Self::from_owned(OwnedFd::from(s))
    }

    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2); the result is owned below.
        let raw = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor owned by nobody else.
        let stream = TcpStream::from_owned(unsafe { OwnedFd::from_raw_fd(raw) })?;
        let sa = SockAddr::from_std(addr);
        let op = IoOp::Connect {
            fd: raw,
            addr: &sa.storage as *const _ as *const libc::sockaddr,
            addrlen: sa.len,
        };
        match Op::submit(op, (sa, stream.fd.clone()), None) {
            Ok(op) => op.await.0.result()?,
            Err((e, _)) => return Err(e),
        };
        Ok(stream)
    }

    fn std_ref(&self) -> std::mem::ManuallyDrop<std::net::TcpStream> {
        // SAFETY: borrows our fd as a std stream without taking ownership (ManuallyDrop).
        std::mem::ManuallyDrop::new(unsafe {
            std::net::TcpStream::from_raw_fd(self.fd.as_raw_fd())
        })
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.std_ref().set_nodelay(on)
    }

    /// Shuts down the read, write or both halves (a plain, non-blocking syscall).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.std_ref().shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std_ref().local_addr()
    }

    /// Receives into `buf` (up to its capacity); `buf` comes back with its length set to the
    /// bytes received. 0 means the peer closed.
    pub async fn recv<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        let op = IoOp::Recv {
            fd: self.fd.as_raw_fd(),
            buf: buf.stable_mut_ptr(),
            len: clamp_len(buf.bytes_total()),
        };
        let tag = buf.lease_tag();
        let (c, (mut buf, _fd)) = match Op::submit(op, (buf, self.fd.clone()), tag) {
            Ok(op) => op.await,
            Err((e, (buf, _))) => return (Err(e), buf),
        };
        match c.result() {
            Ok(n) => {
                // SAFETY: the kernel initialised the n bytes it reported.
                unsafe { buf.set_filled(n as usize) };
                (Ok(n as usize), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    /// Sends `buf`'s contents once (may be short). Uses `SendZc` when the runtime config
    /// enables it and the kernel supports it.
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let zc = {
            let core = core();
            core.send_zc && core.driver.borrow().supports_send_zc()
        };
        let len = buf.bytes_init();
        self.send_range(buf, 0, len, zc, 0).await
    }

    /// Sends once with `SendZc` (zero-copy; the buffer is held until the kernel's
    /// notification). On loopback the kernel copies anyway. `Unsupported` if the kernel lacks
    /// the opcode.
    pub async fn send_zc<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        if !core().driver.borrow().supports_send_zc() {
            return (Err(io::ErrorKind::Unsupported.into()), buf);
        }
        let len = buf.bytes_init();
        self.send_range(buf, 0, len, true, 0).await
    }

    /// Sends all of `buf` (`MSG_WAITALL`: the kernel itself retries partial sends), continuing
    /// any short send that still comes back.
    pub async fn send_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let zc = {
            let core = core();
            core.send_zc && core.driver.borrow().supports_send_zc()
        };
        let total = buf.bytes_init();
        let mut buf = buf;
        let mut done = 0;
        while done < total {
            let (res, b) = self
                .send_range(buf, done, total - done, zc, libc::MSG_WAITALL)
                .await;
            buf = b;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn send_range<B: IoBuf>(
        &self,
        buf: B,
        start: usize,
        len: usize,
        zc: bool,
        extra_flags: i32,
    ) -> (io::Result<usize>, B) {
        let op = IoOp::Send {
            fd: self.fd.as_raw_fd(),
            // SAFETY: start + len <= bytes_init, inside the buffer's allocation.
            buf: unsafe { buf.stable_ptr().add(start) },
            len: clamp_len(len),
            flags: libc::MSG_NOSIGNAL | extra_flags,
            zc,
        };
        let tag = buf.lease_tag();
        match Op::submit(op, (buf, self.fd.clone()), tag) {
            Ok(op) => {
                let (c, (buf, _fd)) = op.await;
                (c.result().map(|n| n as usize), buf)
            }
            Err((e, (buf, _))) => (Err(e), buf),
        }
    }

    /// Waits until the socket can take more bytes (`PollAdd` for `POLLOUT`; epoll readiness
    /// on the fallback driver), or has failed (`POLLERR`/`POLLHUP` also end the wait: the next
    /// write reports the error). For callers that write with non-blocking syscalls and got
    /// `EAGAIN`.
    pub async fn writable(&self) -> io::Result<()> {
        let op = IoOp::PollWritable {
            fd: self.fd.as_raw_fd(),
        };
        match Op::submit(op, self.fd.clone(), None) {
            Ok(op) => op.await.0.result().map(|_| ()),
            Err((e, _)) => Err(e),
        }
    }

    fn take_pipe(&self) -> io::Result<Rc<Pipe>> {
        if let Some(p) = self.pipe.borrow_mut().take() {
            return Ok(p);
        }
        let (read, write) = super::sys::pipe(SPLICE_PIPE_BYTES)?;
        let capacity = super::sys::pipe_size(&read)?;
        Ok(Rc::new(Pipe {
            read,
            write,
            capacity,
        }))
    }

    /// Sends `len` bytes of `file` starting at `offset` with no copy through user space.
    ///
    /// Submits one chain of up to 8 (`SPLICE_PAIRS_PER_CHAIN`) linked pairs (`Splice` file →
    /// pipe, `Splice` pipe → socket, each moving up to the pipe's capacity), so the shard
    /// thread is woken once per chain, not per pair. A short splice breaks the chain (the rest
    /// get `ECANCELED`): bytes already in the pipe are then sent with plain pipe → socket
    /// splices and a new chain starts where the data stopped. Returns the bytes sent: less
    /// than `len` only at end of file.
    ///
    /// On the fallback driver the same chain runs link by link: file → pipe on a helper thread
    /// (it may wait for the disk), pipe → socket on the shard with `SPLICE_F_NONBLOCK`,
    /// waiting for writability on `EAGAIN`; still no copy through user space.
    ///
    /// For an `O_DIRECT` file, `offset` must be 512-aligned on our disks; prefer a buffered fd.
    /// If the future is dropped midway, the pipe (which may hold data) is discarded.
    pub async fn splice_from(&self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let pipe = self.take_pipe()?;
        let file_fd = file.shared_fd().clone();
        let max_pairs =
            (core().driver.borrow_mut().max_chain() / 2).clamp(1, SPLICE_PAIRS_PER_CHAIN);
        let mut done = 0usize;
        while done < len {
            let mut chunks = Vec::with_capacity(max_pairs);
            let mut planned = done;
            while planned < len && chunks.len() < max_pairs {
                let chunk = (len - planned).min(pipe.capacity);
                chunks.push((planned, chunk));
                planned += chunk;
            }
            let mut chain = Vec::with_capacity(chunks.len() * 2);
            for &(at, chunk) in &chunks {
                let into_pipe = IoOp::Splice {
                    fd_in: file_fd.as_raw_fd(),
                    off_in: (offset + at as u64) as i64,
                    fd_out: pipe.write.as_raw_fd(),
                    len: chunk as u32,
                };
                let out_of_pipe = self.pipe_to_socket(&pipe, chunk as u32);
                chain.push((into_pipe, (pipe.clone(), file_fd.clone(), self.fd.clone())));
                chain.push((
                    out_of_pipe,
                    (pipe.clone(), file_fd.clone(), self.fd.clone()),
                ));
            }
            let mut results = Vec::with_capacity(chain.len());
            for op in Op::submit_chain(chain)? {
                results.push(op.await.0);
            }
            let mut eof = false;
            for (pair, &(_, chunk)) in results.chunks(2).zip(&chunks) {
                let (c_in, c_out) = (pair[0], pair[1]);
                let moved_in = match c_in.result() {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => n as usize,
                    // An earlier pair broke the chain; its bytes were accounted for.
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => break,
                    Err(e) => {
                        // This pair's output was cancelled with it: the pipe is empty.
                        *self.pipe.borrow_mut() = Some(pipe);
                        return Err(e);
                    }
                };
                let moved_out = match c_out.result() {
                    Ok(n) => n as usize,
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => 0,
                    Err(e) => return Err(e),
                };
                self.drain_pipe(&pipe, moved_in - moved_out).await?;
                done += moved_in;
                if moved_in < chunk || moved_out < moved_in {
                    break;
                }
            }
            if eof {
                break;
            }
        }
        *self.pipe.borrow_mut() = Some(pipe);
        Ok(done)
    }

    /// Sends `left` bytes sitting in `pipe` to the socket.
    async fn drain_pipe(&self, pipe: &Rc<Pipe>, mut left: usize) -> io::Result<()> {
        while left > 0 {
            let op = self.pipe_to_socket(pipe, left as u32);
            let sent = match Op::submit(op, (pipe.clone(), self.fd.clone()), None) {
                Ok(op) => op.await.0.result()?,
                Err((e, _)) => return Err(e),
            };
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= sent as usize;
        }
        Ok(())
    }

    fn pipe_to_socket(&self, pipe: &Pipe, len: u32) -> IoOp {
        IoOp::Splice {
            fd_in: pipe.read.as_raw_fd(),
            off_in: -1,
            fd_out: self.fd.as_raw_fd(),
            len,
        }
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::tests::{config_on, on_both_drivers};
    use crate::runtime::{DriverChoice, Shard, spawn_local};
    use std::io::Write;

    fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().expect("addr")
    }

    on_both_drivers! {
    fn accept_connect_send_recv(cfg) {
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            let l = TcpListener::bind(localhost()).expect("bind");
            let addr = l.local_addr();
            let server = spawn_local(async move {
                let (s, peer) = l.accept().await.expect("accept");
                assert!(peer.ip().is_loopback());
                let (n, buf) = s.recv(Vec::with_capacity(64)).await;
                assert_eq!(n.expect("recv"), 5);
                let (r, _) = s.send_all(buf).await;
                r.expect("echo");
            });
            let c = TcpStream::connect(addr).await.expect("connect");
            c.set_nodelay(true).expect("nodelay");
            let (r, _) = c.send_all(b"hello".to_vec()).await;
            r.expect("send");
            let (n, buf) = c.recv(Vec::with_capacity(64)).await;
            assert_eq!(n.expect("recv"), 5);
            assert_eq!(&buf[..], b"hello");
            server.await;
            let (n, _) = c.recv(Vec::with_capacity(64)).await;
            assert_eq!(n.expect("eof"), 0);
            c.shutdown(std::net::Shutdown::Both).expect("shutdown");
        });
    }
    }

    #[test]
    fn send_zc_round_trip() {
        let mut cfg = config_on(DriverChoice::IoUring);
        cfg.send_zc = true;
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            let l = TcpListener::bind(localhost()).expect("bind");
            let addr = l.local_addr();
            let c = TcpStream::connect(addr).await.expect("connect");
            let (s, _) = l.accept().await.expect("accept");
            let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
            let sender = spawn_local(async move {
                let (r, _) = c.send_all(bytes::Bytes::from(data)).await;
                r.expect("send_all zc");
                let (r, _) = c.send_zc(b"x".to_vec()).await;
                assert_eq!(r.expect("send_zc"), 1);
            });
            let mut got = Vec::new();
            while got.len() < 100_001 {
                let (n, buf) = s.recv(Vec::with_capacity(65536)).await;
                assert!(n.expect("recv") > 0);
                got.extend_from_slice(&buf);
            }
            sender.await;
            assert!(
                got[..100_000]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == i as u8)
            );
        });
    }

    /// The fallback driver has no `SendZc`: `send_zc` says so, and `send` with
    /// `config.send_zc` quietly uses a plain send.
    #[test]
    fn fallback_send_zc_is_unsupported_and_send_still_works() {
        let mut cfg = config_on(DriverChoice::Fallback);
        cfg.send_zc = true;
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            let l = TcpListener::bind(localhost()).expect("bind");
            let c = TcpStream::connect(l.local_addr()).await.expect("connect");
            let (s, _) = l.accept().await.expect("accept");
            let (r, _) = c.send_zc(b"x".to_vec()).await;
            assert_eq!(r.expect_err("no SendZc").kind(), io::ErrorKind::Unsupported);
            let (r, _) = c.send(b"y".to_vec()).await;
            assert_eq!(r.expect("plain send"), 1);
            let (n, b) = s.recv(Vec::with_capacity(4)).await;
            assert_eq!(n.expect("recv"), 1);
            assert_eq!(&b[..], b"y");
        });
    }

    on_both_drivers! {
    fn splice_file_to_socket_with_short_tail(cfg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        // 2.5 pipes' worth plus an odd tail, so chunks are full, then short at EOF.
        let data: Vec<u8> = (0..(2 * SPLICE_PIPE_BYTES + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::File::create(&path)
            .expect("create")
            .write_all(&data)
            .expect("write");
        let shard = Shard::new(&cfg).expect("shard");
        let expect = data.clone();
        shard.block_on(async move {
            let l = TcpListener::bind(localhost()).expect("bind");
            let c = TcpStream::connect(l.local_addr()).await.expect("connect");
            let (s, _) = l.accept().await.expect("accept");
            let file = File::open(&path).expect("open");
            let reader = spawn_local(async move {
                let mut got = Vec::new();
                loop {
                    let (n, buf) = s.recv(Vec::with_capacity(1 << 16)).await;
                    if n.expect("recv") == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf);
                }
                got
            });
            // Offset 100, asking for more than the file holds: stops at EOF.
            let sent = c.splice_from(&file, 100, data.len()).await.expect("splice");
            assert_eq!(sent, data.len() - 100);
            // Reuse of the cached pipe.
            let sent2 = c.splice_from(&file, 0, 10).await.expect("splice again");
            assert_eq!(sent2, 10);
            drop(c);
            let got = reader.await;
            assert_eq!(&got[..sent], &expect[100..]);
            assert_eq!(&got[sent..], &expect[..10]);
        });
    }
    }
}
