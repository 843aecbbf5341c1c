//! Operations features of the built binary: `ringmq-broker check -c FILE` (exit 0 and an OK
//! line for a good file; exit 1 and every problem with its key for a bad one) and the
//! systemd readiness protocol (`READY=1` once every shard listens, `STOPPING=1` at a clean
//! stop) through a fake `NOTIFY_SOCKET`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the machine is shared and oversubscribed.
const WAIT: Duration = Duration::from_secs(60);

fn check(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .arg("check")
        .arg("-c")
        .arg(config)
        .output()
        .expect("run ringmq-broker check")
}

#[test]
fn check_reports_ok_or_every_problem_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[broker]\nbroker_name = \"ops\"\nlisten_addr = \"127.0.0.1\"\nshards = 1\n\
             namesrv_addrs = [\"127.0.0.1:9876\"]\n[store]\npath = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write");
    let out = check(&good);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": OK (cluster DefaultCluster, broker ops")
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[broker]\npermission = 5\nlisten_addr = \"127.0.0.1\"\ncolour = \"blue\"\n\
         [store]\nsegment_bytes = 12\n[limits]\nmax_connections = 0\n",
    )
    .expect("write");
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "error: broker.colour:",
        "error: broker.permission:",
        "error: store.segment_bytes:",
        "error: limits.max_connections:",
    ] {
        assert!(stderr.contains(key), "{key} not in:\n{stderr}");
    }
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
    let out = check(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ready_once_every_shard_listens_and_stopping_at_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the fake notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let base_port = support::free_base_port(2);
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nbroker_name = \"notify\"\nlisten_addr = \"127.0.0.1\"\nshards = 2\n\
             base_port = {base_port}\n[store]\npath = \"{}\"\nsegment_bytes = 16777216\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
        .arg("start")
        .arg("-c")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringmq-broker");
    let receive = |what: &str, child: &mut std::process::Child| -> Option<String> {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 512];
        loop {
            if let Ok(n) = socket.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                if stderr.contains("io_uring") && !status.success() {
                    eprintln!("skipping: io_uring unavailable: {stderr}");
                    return None;
                }
                panic!("ringmq-broker exited ({status}) before {what}: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "no {what} notification within {WAIT:?}"
            );
        }
    };
    let Some(ready) = receive("READY", &mut child) else {
        return;
    };
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains("STATUS=serving 2 shard(s)"), "{ready}");
    // Both shards accept connections by the time READY=1 arrives.
    for shard in 0..2u16 {
        let port = base_port + 4 * shard;
        std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("shard {shard} not listening on {port} at READY: {e}"));
    }
    // SAFETY: kill(2) with the pid of our own child and a valid signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let Some(stopping) = receive("STOPPING", &mut child) else {
        return;
    };
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "no clean exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
