//! The operator scripts and deployment files: `tuning/audit.sh`, `tuning/apply.sh`,
//! `deploy/**/*.toml` and `deploy/local-cluster.sh`.
//!
//! The tuning scripts run against a fake root (`RINGMQ_TUNING_ROOT`) holding `proc/sys`,
//! `sys` and `etc` files, so nothing here ever changes the host; only `audit.sh` (read-only)
//! also runs against the real host. The local cluster runs the debug binaries on free
//! loopback ports below the ephemeral range. Every test skips with a printed reason when
//! `bash` is missing.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ringmq_broker::config::BrokerConfig;
use ringmq_namesrv::NameServerConfig;

/// Generous: the machine is shared and oversubscribed.
const PROCESS_EXIT_WAIT: Duration = Duration::from_secs(20);

/// The repository root (the workspace holding `tuning/` and `deploy/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("broker/ has a parent directory")
        .to_path_buf()
}

/// Whether `bash` runs; prints why the test is skipped otherwise.
fn have_bash(test: &str) -> bool {
    let ok = Command::new("bash")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipping {test}: bash is not installed");
    }
    ok
}

/// Runs `bash <script> <args>` with `RINGMQ_TUNING_ROOT` set to `root` (or unset).
fn run_script(script: &str, args: &[&str], root: Option<&Path>) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(repo().join(script))
        .args(args)
        .env_remove("RINGMQ_TUNING_ROOT")
        .env_remove("RINGMQ_CLUSTER_DIR")
        .env_remove("RINGMQ_BIN_DIR")
        .env("RUST_LOG", "warn");
    if let Some(root) = root {
        command.env("RINGMQ_TUNING_ROOT", root);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fake host tree: sysctls off our recommendations, THP `always`, a `bfq` NVMe disk,
/// io_uring disabled, an ephemeral port range covering the broker ports, and an
/// `/etc/sysctl.conf` that sets swappiness.
fn fake_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let files: &[(&str, &str)] = &[
        ("proc/sys/vm/overcommit_memory", "0\n"),
        ("proc/sys/vm/min_free_kbytes", "67584\n"),
        ("proc/sys/vm/swappiness", "60\n"),
        ("proc/sys/vm/zone_reclaim_mode", "0\n"),
        ("proc/sys/vm/max_map_count", "65530\n"),
        ("proc/sys/vm/dirty_background_ratio", "30\n"),
        ("proc/sys/vm/dirty_ratio", "20\n"),
        ("proc/sys/vm/dirty_writeback_centisecs", "500\n"),
        ("proc/sys/vm/page-cluster", "3\n"),
        ("proc/sys/net/core/somaxconn", "4096\n"),
        ("proc/sys/net/ipv4/tcp_max_syn_backlog", "2048\n"),
        ("proc/sys/net/ipv4/tcp_slow_start_after_idle", "1\n"),
        ("proc/sys/net/ipv4/ip_local_port_range", "1024\t65535\n"),
        ("proc/sys/net/ipv4/ip_local_reserved_ports", "\n"),
        ("proc/sys/kernel/io_uring_disabled", "2\n"),
        ("proc/sys/kernel/osrelease", "6.8.0-test\n"),
        ("proc/meminfo", "MemTotal:       16000000 kB\n"),
        (
            "sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        ),
        (
            "sys/kernel/mm/transparent_hugepage/defrag",
            "always defer defer+madvise [madvise] never\n",
        ),
        (
            "sys/block/nvme0n1/queue/scheduler",
            "[bfq] none mq-deadline kyber\n",
        ),
        ("sys/block/nvme0n1/queue/rotational", "0\n"),
        (
            "sys/devices/system/clocksource/clocksource0/current_clocksource",
            "tsc\n",
        ),
        ("etc/sysctl.conf", "vm.swappiness = 30\n"),
    ];
    for (path, content) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write fake file");
    }
    root
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                files.insert(path, bytes);
            }
        }
    }
    files
}

fn read_trimmed(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_owned()
}

/// The checks audit.sh always reports (a missing one is a regression).
const AUDIT_CHECKS: &[&str] = &[
    "vm.overcommit_memory",
    "vm.min_free_kbytes",
    "vm.swappiness",
    "vm.zone_reclaim_mode",
    "vm.max_map_count",
    "vm.dirty_background_ratio",
    "vm.dirty_ratio",
    "vm.dirty_writeback_centisecs",
    "vm.page-cluster",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.ip_local_port_range",
    "kernel.version",
    "kernel.io_uring_disabled",
    "limits.nofile",
    "limits.nproc",
    "limits.memlock",
    "process.seccomp",
    "thp.enabled",
    "disk.scheduler",
    "fs.o_direct",
    "disk.usage",
    "clocksource",
];

/// Parses `audit.sh --json` output and checks its shape; returns name → status.
fn parse_audit(output: &Output) -> BTreeMap<String, String> {
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("audit.sh --json is not JSON ({e}):\n{}", text(output)));
    let checks = json["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks array:\n{}", text(output)));
    let mut statuses = BTreeMap::new();
    for check in checks {
        let name = check["name"].as_str().expect("a name").to_owned();
        let status = check["status"].as_str().expect("a status").to_owned();
        assert!(
            matches!(status.as_str(), "OK" | "WARN" | "FAIL"),
            "{name}: status {status:?}"
        );
        for field in ["current", "recommended", "detail"] {
            assert!(check[field].is_string(), "{name}: {field} missing");
        }
        assert!(
            !check["current"].as_str().unwrap_or("").is_empty(),
            "{name}: empty current value"
        );
        assert!(
            statuses.insert(name.clone(), status).is_none(),
            "{name} reported twice"
        );
    }
    for name in AUDIT_CHECKS {
        assert!(statuses.contains_key(*name), "check {name} missing");
    }
    let count = |s: &str| statuses.values().filter(|v| *v == s).count() as u64;
    assert_eq!(json["summary"]["ok"].as_u64(), Some(count("OK")));
    assert_eq!(json["summary"]["warn"].as_u64(), Some(count("WARN")));
    assert_eq!(json["summary"]["fail"].as_u64(), Some(count("FAIL")));
    let expected_exit = if count("FAIL") > 0 {
        2
    } else if count("WARN") > 0 {
        1
    } else {
        0
    };
    assert_eq!(
        output.status.code(),
        Some(expected_exit),
        "{}",
        text(output)
    );
    statuses
}

#[test]
fn audit_json_on_this_host_names_every_check_with_a_status() {
    if !have_bash("audit_json_on_this_host_names_every_check_with_a_status") {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().to_str().expect("utf-8 temp path");
    let output = run_script("tuning/audit.sh", &["--json", "--data-dir", data_dir], None);
    parse_audit(&output);
    // The table form has the same checks and the header the docs show.
    let table = run_script("tuning/audit.sh", &["--data-dir", data_dir], None);
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        stdout.starts_with("check ") && stdout.contains("| recommended"),
        "{}",
        text(&table)
    );
    for name in AUDIT_CHECKS {
        assert!(stdout.contains(name), "{name} missing from the table");
    }
    assert_eq!(table.status.code(), output.status.code());
}

#[test]
fn audit_flags_what_a_fake_host_gets_wrong() {
    if !have_bash("audit_flags_what_a_fake_host_gets_wrong") {
        return;
    }
    let root = fake_root();
    let data = tempfile::tempdir().expect("tempdir");
    let output = run_script(
        "tuning/audit.sh",
        &[
            "--json",
            "--disk",
            "/dev/nvme0n1",
            "--data-dir",
            data.path().to_str().expect("utf-8"),
        ],
        Some(root.path()),
    );
    let statuses = parse_audit(&output);
    let expect = [
        ("vm.swappiness", "WARN"),
        ("vm.overcommit_memory", "WARN"),
        ("vm.dirty_background_ratio", "WARN"),
        ("vm.dirty_ratio", "OK"),
        ("vm.zone_reclaim_mode", "OK"),
        ("net.core.somaxconn", "OK"),
        ("net.ipv4.ip_local_port_range", "WARN"),
        ("kernel.version", "OK"),
        ("kernel.io_uring_disabled", "FAIL"),
        ("thp.enabled", "WARN"),
        ("thp.defrag", "OK"),
        ("disk.scheduler", "WARN"),
        ("clocksource", "OK"),
    ];
    for (name, status) in expect {
        assert_eq!(
            statuses.get(name).map(String::as_str),
            Some(status),
            "{name}\n{}",
            text(&output)
        );
    }
    // RocketMQ's profile judges the dirty-page settings by os.sh's 50/50/360000 instead.
    let rocketmq = run_script(
        "tuning/audit.sh",
        &["--json", "--profile", "rocketmq", "--disk", "nvme0n1"],
        Some(root.path()),
    );
    let statuses = parse_audit(&rocketmq);
    assert_eq!(statuses["vm.dirty_ratio"], "WARN");
    assert_eq!(statuses["vm.dirty_writeback_centisecs"], "WARN");
}

#[test]
fn apply_dry_run_changes_nothing_and_apply_is_idempotent() {
    if !have_bash("apply_dry_run_changes_nothing_and_apply_is_idempotent") {
        return;
    }
    let root = fake_root();
    let before = snapshot(root.path());

    let dry = run_script(
        "tuning/apply.sh",
        &["--dry-run", "--disk", "/dev/nvme0n1", "--enable-io-uring"],
        Some(root.path()),
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("would set   vm.swappiness: 60 -> 1"),
        "{}",
        text(&dry)
    );
    assert!(stdout.contains("would write"), "{}", text(&dry));
    assert_eq!(
        snapshot(root.path()),
        before,
        "--dry-run changed files:\n{}",
        text(&dry)
    );

    let applied = run_script(
        "tuning/apply.sh",
        &[
            "--disk",
            "/dev/nvme0n1",
            "--enable-io-uring",
            "--shards",
            "2",
        ],
        Some(root.path()),
    );
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let r = root.path();
    assert_eq!(read_trimmed(r, "proc/sys/vm/swappiness"), "1");
    assert_eq!(read_trimmed(r, "proc/sys/vm/overcommit_memory"), "1");
    assert_eq!(read_trimmed(r, "proc/sys/vm/max_map_count"), "655360");
    assert_eq!(read_trimmed(r, "proc/sys/vm/dirty_background_ratio"), "10");
    assert_eq!(read_trimmed(r, "proc/sys/vm/min_free_kbytes"), "160000");
    assert_eq!(read_trimmed(r, "proc/sys/kernel/io_uring_disabled"), "0");
    assert_eq!(
        read_trimmed(r, "proc/sys/net/ipv4/ip_local_reserved_ports"),
        "9876,10909-10916"
    );
    assert_eq!(
        read_trimmed(r, "sys/kernel/mm/transparent_hugepage/enabled"),
        "madvise"
    );
    assert_eq!(read_trimmed(r, "sys/block/nvme0n1/queue/scheduler"), "none");
    let sysctl_d = read_trimmed(r, "etc/sysctl.d/90-ringmq.conf");
    assert!(
        sysctl_d.contains("vm.swappiness = 1"),
        "sysctl.d file:\n{sysctl_d}"
    );
    let limits = read_trimmed(r, "etc/security/limits.d/90-ringmq.conf");
    assert!(limits.contains("* hard memlock unlimited"), "{limits}");
    assert!(limits.contains("* hard nofile 655350"), "{limits}");
    assert!(read_trimmed(r, "etc/udev/rules.d/90-ringmq-scheduler.rules").contains("\"none\""));
    // /etc/sysctl.conf is never edited, but its conflicting key is pointed out.
    assert_eq!(read_trimmed(r, "etc/sysctl.conf"), "vm.swappiness = 30");
    assert!(
        String::from_utf8_lossy(&applied.stdout).contains("vm.swappiness is also set in"),
        "{}",
        text(&applied)
    );

    // A second run finds nothing to do and rewrites nothing.
    let after_first = snapshot(r);
    let again = run_script(
        "tuning/apply.sh",
        &[
            "--disk",
            "/dev/nvme0n1",
            "--enable-io-uring",
            "--shards",
            "2",
        ],
        Some(r),
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 change(s) made"),
        "{}",
        text(&again)
    );
    assert_eq!(snapshot(r), after_first, "second apply changed files");

    // And the audit now passes every tunable the fake tree has.
    let audit = run_script(
        "tuning/audit.sh",
        &["--json", "--disk", "nvme0n1", "--shards", "2"],
        Some(r),
    );
    let statuses = parse_audit(&audit);
    for name in [
        "vm.swappiness",
        "vm.overcommit_memory",
        "vm.dirty_background_ratio",
        "net.ipv4.ip_local_port_range",
        "kernel.io_uring_disabled",
        "thp.enabled",
        "disk.scheduler",
    ] {
        assert_eq!(statuses[name], "OK", "{name}\n{}", text(&audit));
    }
}

#[test]
fn apply_refuses_to_run_without_root() {
    if !have_bash("apply_refuses_to_run_without_root") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let script = repo().join("tuning/apply.sh");
    let output = if euid != 0 {
        Command::new("bash")
            .arg(&script)
            .env_remove("RINGMQ_TUNING_ROOT")
            .output()
            .expect("run apply.sh")
    } else {
        // As root: drop to nobody for this one run, if setpriv can and nobody can read it.
        let probe = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "test",
                "-r",
            ])
            .arg(&script)
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            println!(
                "skipping apply_refuses_to_run_without_root: running as root and cannot run \
                 {} as nobody (no setpriv, or the path is not readable)",
                script.display()
            );
            return;
        }
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
            .arg(&script)
            .env_remove("RINGMQ_TUNING_ROOT")
            .output()
            .expect("run apply.sh as nobody")
    };
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must run as root"),
        "{}",
        text(&output)
    );
}

#[test]
fn every_deploy_toml_parses_with_the_config_loaders() {
    let mut found = BTreeSet::new();
    let mut stack = vec![repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read deploy/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("namesrv") {
                let config = NameServerConfig::from_toml_file(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                config
                    .validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            } else {
                BrokerConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            found.insert(
                path.strip_prefix(repo())
                    .expect("under the repo")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    for expected in [
        "deploy/broker.toml",
        "deploy/standalone.toml",
        "deploy/namesrv.toml",
        "deploy/2m-noslave/broker-a.toml",
        "deploy/2m-noslave/broker-b.toml",
    ] {
        assert!(found.contains(expected), "{expected} missing: {found:?}");
    }
    // The two masters of 2m-noslave form one cluster under different names.
    let a = BrokerConfig::load(&repo().join("deploy/2m-noslave/broker-a.toml")).expect("a");
    let b = BrokerConfig::load(&repo().join("deploy/2m-noslave/broker-b.toml")).expect("b");
    assert_eq!(a.broker.cluster_name, b.broker.cluster_name);
    assert_ne!(a.broker.broker_name, b.broker.broker_name);
    assert_ne!(a.broker.advertised_addr, b.broker.advertised_addr);
}

#[test]
fn scripts_pass_bash_n_and_shellcheck() {
    if !have_bash("scripts_pass_bash_n_and_shellcheck") {
        return;
    }
    let scripts = [
        "tuning/common.sh",
        "tuning/audit.sh",
        "tuning/apply.sh",
        "deploy/local-cluster.sh",
    ];
    for script in scripts {
        let output = Command::new("bash")
            .arg("-n")
            .arg(repo().join(script))
            .output()
            .expect("bash -n");
        assert!(output.status.success(), "{script}: {}", text(&output));
    }
    let have_shellcheck = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_shellcheck {
        println!("shellcheck not installed: only `bash -n` was checked");
        return;
    }
    let output = Command::new("shellcheck")
        .arg("-x")
        .args(scripts)
        .current_dir(repo())
        .output()
        .expect("shellcheck");
    assert!(output.status.success(), "{}", text(&output));
}

/// Stops the local cluster on drop, so that a failing assertion leaves no process behind.
struct ClusterGuard {
    dir: PathBuf,
}

impl ClusterGuard {
    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let dir = self.dir.to_str().expect("utf-8 temp path");
        let mut args = vec![command, "--dir", dir];
        args.extend_from_slice(extra);
        run_script("deploy/local-cluster.sh", &args, None)
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = self.run("stop", &["--timeout", "30"]);
    }
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn local_cluster_starts_reports_and_stops_leaving_no_process() {
    if !have_bash("local_cluster_starts_reports_and_stops_leaving_no_process") {
        return;
    }
    let broker = PathBuf::from(env!("CARGO_BIN_EXE_ringmq-broker"));
    let namesrv = support::binary("ringmq-namesrv");
    let bin_dir = broker.parent().expect("a bin directory");
    assert_eq!(namesrv.parent(), Some(bin_dir));

    // Three port blocks: broker-a, broker-b, and the NameServer on the third client port.
    let base = support::free_base_port(3);
    let namesrv_port = (base + 8).to_string();
    let base_port = base.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = ClusterGuard {
        dir: dir.path().join("cluster"),
    };

    let start = guard.run(
        "start",
        &[
            "--bin",
            bin_dir.to_str().expect("utf-8"),
            "--brokers",
            "2",
            "--shards",
            "1",
            "--namesrv-port",
            &namesrv_port,
            "--base-port",
            &base_port,
            "--timeout",
            "60",
        ],
    );
    assert_eq!(start.status.code(), Some(0), "{}", text(&start));
    assert!(
        String::from_utf8_lossy(&start.stdout).contains("local cluster ready"),
        "{}",
        text(&start)
    );
    let mut pids = Vec::new();
    for name in ["namesrv", "broker-a", "broker-b"] {
        let file = guard.dir.join("run").join(format!("{name}.pid"));
        let pid: u32 = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .expect("a pid");
        assert!(!process_gone(pid), "{name} (pid {pid}) is not running");
        pids.push(pid);
    }

    // Starting twice is refused and leaves the running cluster alone.
    let again = guard.run(
        "start",
        &[
            "--bin",
            bin_dir.to_str().expect("utf-8"),
            "--namesrv-port",
            &namesrv_port,
            "--base-port",
            &base_port,
        ],
    );
    assert_eq!(again.status.code(), Some(64), "{}", text(&again));
    assert!(pids.iter().all(|pid| !process_gone(*pid)));

    let status = guard.run("status", &[]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let stdout = String::from_utf8_lossy(&status.stdout);
    for shard in ["broker-a-s0", "broker-b-s0"] {
        assert!(
            stdout.contains(shard),
            "{shard} not listed:\n{}",
            text(&status)
        );
    }

    let stop = guard.run("stop", &["--timeout", "60"]);
    assert_eq!(stop.status.code(), Some(0), "{}", text(&stop));
    let deadline = Instant::now() + PROCESS_EXIT_WAIT;
    while !pids.iter().all(|pid| process_gone(*pid)) {
        assert!(
            Instant::now() < deadline,
            "processes left after stop: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for log in ["broker-a.log", "broker-b.log"] {
        let content = std::fs::read_to_string(guard.dir.join("logs").join(log)).expect("log");
        assert!(
            content.contains("stopped cleanly"),
            "{log} has no clean stop:\n{content}"
        );
    }

    let status = guard.run("status", &[]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
}
