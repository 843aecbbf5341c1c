//! The binary's command line: `--help` explains every flag; a bad flag or config is a
//! clear error with a failing exit status; a TOML config file is honoured.

mod common;

use std::process::Command;

use common::{Server, kv_path, master, route};
use ringmq_wire::SerializeType;

#[test]
fn help_lists_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--config",
        "--listen",
        "--kv-config-path",
        "--scan-interval-ms",
        "--broker-expiry-ms",
        "--max-connections",
        "--order-message-enable",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn invalid_config_is_reported() {
    let (dir, kv) = kv_path();
    let output = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--scan-interval-ms",
            "0",
            "--kv-config-path",
        ])
        .arg(&kv)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("scan_interval_ms"));

    let toml = dir.path().join("namesrv.toml");
    std::fs::write(&toml, "no_such_key = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .arg("--config")
        .arg(&toml)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_key"));
}

#[test]
fn toml_config_file_is_used() {
    let (dir, kv) = kv_path();
    let toml = dir.path().join("namesrv.toml");
    std::fs::write(&toml, "broker_expiry_ms = 500\nscan_interval_ms = 50\n").unwrap();
    let server = Server::start(&kv, &["--config", toml.to_str().unwrap()]);
    let mut broker = server.connect();
    master("broker-a", "127.0.0.1:10911", &[("T", 4)]).register(&mut broker);
    // The short expiry from the file applies even though the connection stays open.
    common::eventually("broker expires per the TOML expiry", || {
        route(&mut broker, "T", SerializeType::Json).is_err()
    });
}
