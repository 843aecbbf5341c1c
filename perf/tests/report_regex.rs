//! The report lines parse with the regular expressions a RocketMQ user's scripts use on
//! `producer.sh` / `consumer.sh` output.

use regex::Regex;
use ringmq_perf::stats::{self, Snapshot, Window};

fn full_window<const N: usize>(last: [u64; N]) -> Window<N> {
    let mut window = Window::default();
    for i in 0..stats::WINDOW_SNAPSHOTS as u64 {
        let values = last.map(|v| v * i / 9);
        window.push(Snapshot {
            at_ms: 1_700_000_000_000 + i * 1_000,
            values,
        });
    }
    assert!(window.is_full());
    window
}

#[test]
fn producer_line_parses_like_rocketmq_5() {
    let window = full_window([90_000, 2, 1, 180_000]);
    let line = stats::producer_line(&stats::current_time(), &window.span().unwrap(), 12);
    let re = Regex::new(
        r"^Current Time: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) \| Send TPS: (\d+) \| Max RT\(ms\): (\d+) \| Average RT\(ms\): +([\d.]+) \| Send Failed: (\d+) \| Response Failed: (\d+)$",
    )
    .unwrap();
    let caps = re
        .captures(&line)
        .unwrap_or_else(|| panic!("no match: {line}"));
    assert_eq!(&caps[2], "10000");
    assert_eq!(&caps[3], "12");
    assert_eq!(caps[4].parse::<f64>().unwrap(), 2.0);
    assert_eq!(&caps[5], "2");
    assert_eq!(&caps[6], "1");
    // The common one-field grep: `grep -o 'Send TPS: [0-9]*'`.
    let tps = Regex::new(r"Send TPS: ([0-9]*)").unwrap();
    assert_eq!(&tps.captures(&line).unwrap()[1], "10000");
}

#[test]
fn consumer_line_parses_like_rocketmq_5() {
    let window = full_window([4_500, 9_000, 4_500, 0]);
    let line = stats::consumer_line(&stats::current_time(), &window.span().unwrap(), 7, 3);
    let re = Regex::new(
        r"^Current Time: [\d\- :,]+ \| Consume TPS: (\d+) \| AVG\(B2C\) RT\(ms\): +([\d.]+) \| AVG\(S2C\) RT\(ms\): +([\d.]+) \| MAX\(B2C\) RT\(ms\): (\d+) \| MAX\(S2C\) RT\(ms\): (\d+) \| Consume Fail: (\d+)$",
    )
    .unwrap();
    let caps = re
        .captures(&line)
        .unwrap_or_else(|| panic!("no match: {line}"));
    assert_eq!(&caps[1], "500");
    assert_eq!(&caps[2], "2.000");
    assert_eq!(&caps[3], "1.000");
    assert_eq!((&caps[4], &caps[5], &caps[6]), ("7", "3", "0"));
}

#[test]
fn complete_line_parses() {
    let window = full_window([9_000, 0, 0, 9_000]);
    let line = stats::producer_complete_line(&window, 4).unwrap();
    let re = Regex::new(
        r"^\[Complete\] Send Total: (\d+) \| Send TPS: (\d+) \| Max RT\(ms\): (\d+) \| Average RT\(ms\): +([\d.]+) \| Send Failed: (\d+) \| Response Failed: (\d+)$",
    )
    .unwrap();
    let caps = re
        .captures(&line)
        .unwrap_or_else(|| panic!("no match: {line}"));
    assert_eq!(&caps[1], "9000");
    assert_eq!(&caps[2], "1000");
}
