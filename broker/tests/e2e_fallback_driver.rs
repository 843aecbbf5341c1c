//! The broker on the fallback runtime driver end to end (no io_uring: epoll for sockets,
//! blocking file I/O on helper threads): the real `ringmq-broker standalone
//! --runtime-driver fallback` serves a Rust producer and push consumer, reports its driver
//! in `GET_BROKER_RUNTIME_INFO` and on its startup line, stops cleanly on SIGTERM and, once
//! restarted on the same data, still has every acknowledged message.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, MessageListener, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig,
};
use ringmq_wire::body::topic::TopicConfig;
use support::client::{Log, WAIT, counts, runtime, send_all, wait_all_delivered, wait_until};

/// The standalone preset's cluster.
const CLUSTER: &str = "DefaultCluster";
const TOPIC: &str = "E2eFallbackTopic";
const GROUP: &str = "e2e_fallback_group";
const BEFORE: usize = 1_000;
const AFTER: usize = 200;
const SHARDS: u16 = 2;

/// `ringmq-broker standalone` on the fallback driver, with its embedded NameServer.
struct Standalone {
    child: Option<Child>,
    data: std::path::PathBuf,
    base_port: u16,
    namesrv_port: u16,
}

impl Standalone {
    fn start(data: &Path) -> Self {
        // One block of free ports for three shards: the broker's two shards use the first
        // two slots, the embedded NameServer takes the third slot's client port.
        let base_port = support::free_base_port(SHARDS + 1);
        let mut s = Standalone {
            child: None,
            data: data.to_owned(),
            base_port,
            namesrv_port: base_port + 4 * SHARDS,
        };
        s.spawn();
        s
    }

    fn namesrv(&self) -> String {
        format!("127.0.0.1:{}", self.namesrv_port)
    }

    fn shard_addr(&self, i: u16) -> String {
        format!("127.0.0.1:{}", self.base_port + 4 * i)
    }

    fn spawn(&mut self) {
        let mut child = Command::new(support::binary("ringmq-broker"))
            .arg("standalone")
            .arg("--data")
            .arg(&self.data)
            .args(["--namesrv-port", &self.namesrv_port.to_string()])
            .args(["--port", &self.base_port.to_string()])
            .args(["--shards", &SHARDS.to_string()])
            .args(["--runtime-driver", "fallback"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ringmq-broker standalone");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let serving = loop {
            match lines.next() {
                Some(Ok(line)) if line.contains(" serving: ") => break line,
                Some(Ok(_)) => {}
                other => panic!("ringmq-broker standalone exited before serving: {other:?}"),
            }
        };
        assert!(
            serving.ends_with("runtime driver fallback"),
            "the startup line names the driver: {serving}"
        );
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// SIGTERM, then a clean exit (status 0) within 60 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "standalone did not stop cleanly: {status}"
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("standalone did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_registered(admin: &Admin) {
    wait_until("both shards registered", WAIT, || async {
        let info = admin.cluster_info().await.ok()?;
        (info.cluster_addr_table.get(CLUSTER)?.len() == SHARDS as usize).then_some(())
    })
    .await;
}

#[test]
fn standalone_on_the_fallback_driver_serves_and_keeps_everything_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Standalone::start(dir.path());
    let namesrv = broker.namesrv();
    let main = runtime();
    let before: Vec<String> = (0..BEFORE).map(|i| format!("fallback-{i}")).collect();
    let after: Vec<String> = (BEFORE..BEFORE + AFTER)
        .map(|i| format!("fallback-{i}"))
        .collect();

    let producer = main.block_on(async {
        let admin = Admin::new(support::client::client(&namesrv, "fallback-admin"));
        wait_registered(&admin).await;
        for shard in 0..SHARDS {
            let info = admin
                .broker_runtime_info(&broker.shard_addr(shard))
                .await
                .expect("GET_BROKER_RUNTIME_INFO");
            assert_eq!(
                info.get("runtimeDriver").map(String::as_str),
                Some("fallback"),
                "shard {shard}: {info:?}"
            );
        }
        let written = admin
            .create_topic_in_cluster(CLUSTER, &TopicConfig::new(TOPIC, 4))
            .await
            .expect("updateTopic");
        assert_eq!(written.len(), SHARDS as usize);
        support::client::wait_routed(&namesrv, TOPIC, SHARDS as usize).await;
        let producer = Producer::new(
            support::client::client(&namesrv, "fallback-producer"),
            ProducerConfig::new("e2e_fallback_producer"),
        )
        .expect("producer");
        // Every send is acknowledged (send_all asserts it): these must survive the restart.
        send_all(&producer, TOPIC, &before, 64).await;
        producer
    });

    broker.stop();
    broker.spawn();

    main.block_on(async {
        let admin = Admin::new(support::client::client(&namesrv, "fallback-admin-2"));
        wait_registered(&admin).await;
        // The producer's connections broke with the old process; its sends retry.
        send_all(&producer, TOPIC, &after, 16).await;
        let log = Log::default();
        let mut consumer = PushConsumer::new(
            support::client::client(&namesrv, "fallback-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                consume_threads: 4,
                ..PushConsumerConfig::new(GROUP)
            },
        )
        .expect("push consumer");
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        let sink = log.clone();
        consumer
            .start(MessageListener::concurrently(move |messages| {
                let sink = sink.clone();
                async move {
                    sink.record(&messages);
                    ConsumeResult::Success
                }
            }))
            .await
            .expect("start consumer");
        let expected: BTreeSet<String> = before.iter().chain(&after).cloned().collect();
        wait_all_delivered(
            "across the restart, on the fallback driver",
            &[&log],
            &expected,
        )
        .await;
        consumer.shutdown().await;
        let counts = counts(&[&log]);
        assert_eq!(counts.len(), BEFORE + AFTER, "only sent messages arrive");
    });
    broker.stop();
}
