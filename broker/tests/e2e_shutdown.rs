//! A broker stopped with SIGTERM closes every shard's store cleanly (no `abort` crash
//! marker left, so the next start trusts the checkpoint); one killed with SIGKILL leaves the
//! marker, and the next start recovers and serves again.

mod support;

use support::{Broker, BrokerOptions, Namesrv};

fn abort_markers(broker: &Broker) -> Vec<bool> {
    (0..broker.options.shards)
        .map(|i| {
            broker
                .data_dir()
                .join("store")
                .join(format!("shard-{i}"))
                .join("abort")
                .exists()
        })
        .collect()
}

#[test]
fn sigterm_closes_every_store_cleanly_and_sigkill_leaves_the_crash_marker() {
    let namesrv = Namesrv::start();
    let mut broker = Broker::start(
        &namesrv.addr,
        BrokerOptions {
            name: "shutdown".into(),
            ..BrokerOptions::default()
        },
    );
    assert_eq!(
        abort_markers(&broker),
        vec![true, true],
        "a running store holds its abort marker"
    );

    broker.stop();
    assert_eq!(
        abort_markers(&broker),
        vec![false, false],
        "a clean stop removes every abort marker"
    );

    broker.restart();
    assert_eq!(abort_markers(&broker), vec![true, true]);
    broker.kill();
    assert_eq!(
        abort_markers(&broker),
        vec![true, true],
        "SIGKILL leaves the crash marker"
    );

    broker.restart();
    broker.stop();
    assert_eq!(
        abort_markers(&broker),
        vec![false, false],
        "recovered, then stopped cleanly"
    );
}
