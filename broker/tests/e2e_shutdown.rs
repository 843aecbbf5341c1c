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

/// How many of the broker's shards the NameServer lists. Every shard listed means running: a shard registers only once its
/// store is open and its clean-stop hook is installed, so this is "running" (a listening
/// port alone is not: a shard binds before it opens its store).
fn listed(namesrv: &str, shards: u16) -> usize {
    let runtime = support::client::runtime();
    runtime.block_on(async {
        let admin = ringmq_client::Admin::new(support::client::client(namesrv, "shutdown-probe"));
        let Ok(info) = admin.cluster_info().await else {
            return 0;
        };
        (0..shards)
            .filter(|i| {
                info.broker_addr_table
                    .contains_key(&format!("shutdown-s{i}"))
            })
            .count()
    })
}

fn wait_running(namesrv: &str, broker: &Broker) {
    support::wait_for("every shard registered", support::START_TIMEOUT, || {
        (listed(namesrv, broker.options.shards) == usize::from(broker.options.shards)).then_some(())
    });
}

fn wait_gone(namesrv: &str, broker: &Broker) {
    support::wait_for(
        "the stopped broker dropped from the NameServer",
        support::START_TIMEOUT,
        || (listed(namesrv, broker.options.shards) == 0).then_some(()),
    );
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
    wait_running(&namesrv.addr, &broker);
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
    wait_gone(&namesrv.addr, &broker);

    broker.restart();
    wait_running(&namesrv.addr, &broker);
    assert_eq!(abort_markers(&broker), vec![true, true]);
    broker.kill();
    wait_gone(&namesrv.addr, &broker);
    assert_eq!(
        abort_markers(&broker),
        vec![true, true],
        "SIGKILL leaves the crash marker"
    );

    broker.restart();
    wait_running(&namesrv.addr, &broker);
    broker.stop();
    assert_eq!(
        abort_markers(&broker),
        vec![false, false],
        "recovered, then stopped cleanly"
    );
}
