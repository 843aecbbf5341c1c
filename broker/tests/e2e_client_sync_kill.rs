//! Durability of acknowledged sends end to end: a real 2-shard `ringmq-broker` with
//! `flush_mode = "sync"` is killed with SIGKILL while the Rust client sends; after a
//! restart, every message whose send was acknowledged `SEND_OK` is consumable. Sends that
//! fail (or fail over) around the kill are allowed.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmq_client::{
    Admin, ConsumeFromWhere, ConsumeResult, Message, MessageListener, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig, SendStatus,
};
use support::client::{CLUSTER, Log, WAIT, create_topic, runtime, wait_all_delivered, wait_until};
use support::{Broker, BrokerOptions, Namesrv};

const TOPIC: &str = "E2eSyncKillTopic";
const WORKERS: usize = 8;
const ACKED_BEFORE_KILL: usize = 800;

#[test]
fn every_acknowledged_send_survives_sigkill_with_sync_flush() {
    let namesrv = Namesrv::start();
    let mut broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "e2e-sync".into(),
            flush_mode: "sync".into(),
            ..BrokerOptions::default()
        },
    );
    let main = runtime();
    main.block_on(create_topic(&namesrv.addr, TOPIC, 4, 2));
    let producer = main.block_on(async {
        Producer::new(
            support::client::client(&namesrv.addr, "sync-producer"),
            ProducerConfig::new("e2e_sync_producer"),
        )
        .expect("producer")
    });

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let not_ok = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (producer, acked, failed, not_ok, stop) = (
                producer.clone(),
                acked.clone(),
                failed.clone(),
                not_ok.clone(),
                stop.clone(),
            );
            main.spawn(async move {
                let mut seq = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!("sync-{w}-{seq}");
                    seq += 1;
                    match producer.send(Message::new(TOPIC, body.clone())).await {
                        Ok(result) if result.status == SendStatus::Ok => {
                            acked.lock().expect("acked").push(body);
                        }
                        Ok(_) => {
                            not_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();

    support::wait_for("acknowledged sends before the kill", WAIT, || {
        (acked.lock().expect("acked").len() >= ACKED_BEFORE_KILL).then_some(())
    });
    broker.kill();
    // Keep sending into the dead broker for a moment: those sends must fail, not be acked.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    main.block_on(async {
        for worker in workers {
            worker.await.expect("send worker");
        }
    });
    let acked: BTreeSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    eprintln!(
        "{} sends acknowledged, {} failed, {} stored without SEND_OK",
        acked.len(),
        failed.load(Ordering::Relaxed),
        not_ok.load(Ordering::Relaxed)
    );

    broker.restart();
    main.block_on(async {
        let admin = Admin::new(support::client::client(&namesrv.addr, "sync-admin"));
        wait_until("both shards registered again", WAIT, || async {
            let info = admin.cluster_info().await.ok()?;
            (info.cluster_addr_table.get(CLUSTER)?.len() == 2).then_some(())
        })
        .await;
        support::client::wait_routed(&namesrv.addr, TOPIC, 2).await;
        let stats = admin
            .topic_stats(TOPIC)
            .await
            .expect("topic stats after the restart");
        let stored: i64 = stats.offset_table.values().map(|o| o.max_offset).sum();
        assert!(
            stored >= acked.len() as i64,
            "the restarted broker holds {stored} messages, fewer than the {} acknowledged",
            acked.len()
        );
        let log = Log::default();
        let mut consumer = PushConsumer::new(
            support::client::client(&namesrv.addr, "sync-consumer"),
            PushConsumerConfig {
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                ..PushConsumerConfig::new("e2e_sync_group")
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
        wait_all_delivered("acknowledged before the kill", &[&log], &acked).await;
        consumer.shutdown().await;
    });
}
