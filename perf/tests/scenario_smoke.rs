//! Runs `perf/scenarios/ci-smoke.toml` end to end: `ringmq-perf scenario` starts a local
//! `ringmq-broker standalone` per cell, runs the producer, stops the broker, and writes
//! the report directory; the report must hold every cell with traffic and no failures.

use std::path::{Path, PathBuf};
use std::process::Command;

fn broker_bin() -> PathBuf {
    let perf = Path::new(env!("CARGO_BIN_EXE_ringmq-perf"));
    let broker = perf.with_file_name("ringmq-broker");
    assert!(
        broker.is_file(),
        "ringmq-broker not found at {} — build it first (`cargo build -p ringmq-broker`, \
         or run the whole workspace's tests, which builds every binary)",
        broker.display()
    );
    broker
}

#[test]
fn ci_smoke_scenario_writes_a_complete_report() {
    let broker = broker_bin();
    let out = std::env::temp_dir().join(format!("ringmq-perf-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci-smoke.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_ringmq-perf"))
        .arg("scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--broker-bin")
        .arg(&broker)
        .output()
        .expect("run ringmq-perf scenario");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scenario failed: {}\n{stderr}",
        output.status
    );

    let csv = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("CSV header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut threads: Vec<&str> = rows.iter().map(|r| r[col("threads")]).collect();
    threads.sort_unstable();
    assert_eq!(threads, ["1", "8"], "one row per cell:\n{csv}");
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{csv}");
        assert_eq!(row[col("size")], "1024");
        assert_eq!(row[col("flush")], "async");
        let tps: f64 = row[col("tps")].parse().expect("tps is a number");
        assert!(tps > 0.0, "no traffic in {row:?}");
        let success: u64 = row[col("success")].parse().expect("success is a number");
        assert!(success > 0, "{row:?}");
        assert_eq!(row[col("send_failed")], "0", "{row:?}\n{stderr}");
        assert_eq!(row[col("response_failed")], "0", "{row:?}\n{stderr}");
        let p99: u64 = row[col("p99_us")].parse().expect("p99 is a number");
        let p50: u64 = row[col("p50_us")].parse().expect("p50 is a number");
        assert!(p99 >= p50 && p50 > 0, "{row:?}");
    }

    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("| -w | -s | flush |"), "{report}");
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("| 1 |") || l.starts_with("| 8 |"))
            .count(),
        2,
        "{report}"
    );
    for svg in ["throughput_vs_threads.svg", "latency_vs_throughput.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).expect(svg);
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(
            text.contains("<polyline") || text.contains("<path"),
            "{svg} has no lines"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
