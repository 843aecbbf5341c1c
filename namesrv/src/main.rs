//! `ringmq-namesrv`: the NameServer binary.

fn main() -> std::process::ExitCode {
    eprintln!(
        "ringmq-namesrv {}: the NameServer is not available yet.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
