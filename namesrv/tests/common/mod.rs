//! Test harness: starts the real `ringmq-namesrv` binary on an OS-assigned port and talks to
//! it over TCP with the wire codec (blocking sockets, generous timeouts).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringmq_wire::body::register::{DataVersion, RegisterBrokerBody};
use ringmq_wire::body::route::TopicRouteData;
use ringmq_wire::body::topic::TopicConfig;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::namesrv::{RegisterBrokerRequestHeader, register_body_crc32};
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode, SerializeType};

/// Network waits: the test machine is small and shared.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running NameServer process, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the binary with `--listen 127.0.0.1:0 --kv-config-path <kv>` plus `args`, and
    /// reads the bound address from its first stdout line.
    pub fn start(kv: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
            .args(["--listen", "127.0.0.1:0", "--kv-config-path"])
            .arg(kv)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ringmq-namesrv");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("namesrv printed its address");
        let addr = line
            .trim()
            .strip_prefix("ringmq-namesrv listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address parses");
        Server { child, addr }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "namesrv did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking remoting client.
pub struct Client {
    pub stream: TcpStream,
    decoder: FrameDecoder,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            decoder: FrameDecoder::default(),
        }
    }

    pub fn send(&mut self, request: &RemotingCommand) {
        let frame = request.encode_frame().expect("encode");
        self.stream.write_all(&frame).expect("write");
    }

    /// Reads the next response frame.
    pub fn receive(&mut self) -> RemotingCommand {
        loop {
            if let Some(command) = self.decoder.next_command().expect("decode response") {
                return command;
            }
            let mut buf = [0u8; 64 * 1024];
            let n = self.stream.read(&mut buf).expect("read response");
            assert!(n > 0, "server closed the connection");
            self.decoder.extend(&buf[..n]);
        }
    }

    /// Sends a request and returns its response (checked by opaque).
    pub fn call(&mut self, request: &RemotingCommand) -> RemotingCommand {
        self.send(request);
        let response = self.receive();
        assert_eq!(response.opaque, request.opaque, "response to our request");
        assert!(response.is_response());
        assert_eq!(response.serialize_type, request.serialize_type);
        response
    }

    /// Whether the next thing read is the end of the stream (server closed the connection)
    /// rather than a response frame.
    pub fn is_closed_by_server_quick(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(_) => true,
        }
    }

    /// Whether the server closed this connection (EOF within the wait).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A request with `extFields` in the given header encoding.
pub fn request(
    code: RequestCode,
    serialize_type: SerializeType,
    fields: &[(&str, &str)],
) -> RemotingCommand {
    let mut command = RemotingCommand::request(code);
    command.serialize_type = serialize_type;
    command.language = ringmq_wire::LanguageCode::Java;
    for (key, value) in fields {
        command.ext_fields.insert((*key).into(), (*value).into());
    }
    command
}

/// A broker to register.
pub struct Broker<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub id: i64,
    pub addr: &'a str,
    pub topics: &'a [(&'a str, i32)],
    pub counter: i64,
    pub serialize_type: SerializeType,
    pub compressed: bool,
    pub timeout_ms: Option<i64>,
}

impl Broker<'_> {
    pub fn register_request(&self) -> RemotingCommand {
        let mut body = RegisterBrokerBody::default();
        let wrapper = &mut body.topic_config_serialize_wrapper;
        wrapper.data_version = DataVersion {
            counter: self.counter,
            state_version: 0,
            timestamp: 1_700_000_000_000,
        };
        for (topic, queues) in self.topics {
            wrapper
                .topic_config_table
                .insert((*topic).into(), TopicConfig::new(*topic, *queues));
        }
        let bytes = body.encode(self.compressed);
        let mut command = request(RequestCode::RegisterBroker, self.serialize_type, &[]);
        RegisterBrokerRequestHeader {
            broker_name: self.name.into(),
            broker_addr: self.addr.into(),
            cluster_name: self.cluster.into(),
            ha_server_addr: format!("{}-ha", self.addr),
            broker_id: self.id,
            heartbeat_timeout_millis: self.timeout_ms,
            enable_acting_master: Some(false),
            compressed: self.compressed,
            body_crc32: Some(register_body_crc32(&bytes)),
        }
        .encode_into(&mut command);
        command.with_body(bytes)
    }

    pub fn register(&self, client: &mut Client) -> RemotingCommand {
        let response = client.call(&self.register_request());
        assert_eq!(
            response.code,
            ResponseCode::Success.as_i32(),
            "register failed: {:?}",
            response.remark
        );
        response
    }
}

/// A plain JSON-header master broker.
pub fn master<'a>(name: &'a str, addr: &'a str, topics: &'a [(&'a str, i32)]) -> Broker<'a> {
    Broker {
        cluster: "DefaultCluster",
        name,
        id: 0,
        addr,
        topics,
        counter: 1,
        serialize_type: SerializeType::Json,
        compressed: false,
        timeout_ms: None,
    }
}

/// `GET_ROUTEINFO_BY_TOPIC`: the route, or the error response.
pub fn route(
    client: &mut Client,
    topic: &str,
    serialize_type: SerializeType,
) -> Result<TopicRouteData, RemotingCommand> {
    let response = client.call(&request(
        RequestCode::GetRouteinfoByTopic,
        serialize_type,
        &[("topic", topic)],
    ));
    if response.code != ResponseCode::Success.as_i32() {
        return Err(response);
    }
    Ok(ringmq_wire::json::parse("route", &response.body).expect("route JSON"))
}

/// Polls `check` until it holds or the wait runs out.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh KV file path in a temp dir (kept alive by the returned guard).
pub fn kv_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kvConfig.json");
    (dir, path)
}
