//! `ringmq-broker store verify|dump` on a real data directory.

use std::process::Command;

use ringmq_broker::store::io::{StdFs, block_on};
use ringmq_broker::store::{AppendMessage, Store, StoreConfig};

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringmq-broker"))
}

#[test]
fn verify_and_dump_report_what_is_stored_and_what_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_tests(dir.path());
    let mut store = block_on(Store::open(StdFs, config)).unwrap();
    for i in 0..20 {
        let body = format!("payload {i}");
        store
            .append(&AppendMessage::new("CliTopic", 1, body.as_bytes()))
            .unwrap();
    }
    block_on(store.close()).unwrap();

    let out = broker()
        .args(["store", "verify"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("20 records"), "{stdout}");

    let out = broker()
        .args(["store", "dump"])
        .arg(dir.path())
        .args(["--topic", "CliTopic", "--queue", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.lines().count(), 21, "{stdout}");

    // Flip a byte inside the third record's body.
    let seg = dir.path().join("commitlog/00000000000000000000");
    let mut bytes = std::fs::read(&seg).unwrap();
    let first = i32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let at = 2 * first + 90;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let out = broker()
        .args(["store", "verify"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("00000000000000000000"), "{stdout}");
    assert!(stdout.contains(&format!("@ {}", 2 * first)), "{stdout}");

    let out = broker()
        .args(["store", "verify", "/nonexistent-ringmq"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
