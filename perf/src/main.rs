//! `ringmq-perf`: the pressure-test harness.

fn main() -> std::process::ExitCode {
    eprintln!(
        "ringmq-perf {}: the pressure-test harness is not available yet.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
