//! Client-generated unique message ids (`UNIQ_KEY`), laid out like RocketMQ's
//! `MessageClientIDSetter.createUniqID`, so that tools decoding them (born host, time) work:
//!
//! ```text
//! | client IPv4 (4) | pid low 16 bits (2) | per-process random (4) | ms since start of month (4) | counter (2) |
//! ```
//!
//! printed as 32 upper-case hex digits. Uniqueness comes from the process-wide counter
//! together with the timestamp; the broker does not enforce it.

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

struct Prefix {
    /// Hex of IP, pid and random part: 20 hex digits.
    hex: String,
}

static PREFIX: OnceLock<Prefix> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn prefix(ip: Ipv4Addr) -> &'static Prefix {
    PREFIX.get_or_init(|| {
        let pid = std::process::id() as u16;
        // Random per process: hash the start time and addresses of locals. Collisions only
        // matter together with equal IP, pid, millisecond and counter.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = nanos ^ (std::ptr::addr_of!(COUNTER) as usize as u32).rotate_left(13);
        let mut bytes = Vec::with_capacity(10);
        bytes.extend_from_slice(&ip.octets());
        bytes.extend_from_slice(&pid.to_be_bytes());
        bytes.extend_from_slice(&seed.to_be_bytes());
        Prefix {
            hex: hex_upper(&bytes),
        }
    })
}

fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    out
}

/// Milliseconds since the Unix epoch at the start of the (UTC) month containing `now_ms`.
pub fn start_of_month_ms(now_ms: i64) -> i64 {
    let days = now_ms.div_euclid(86_400_000);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * 86_400_000
}

/// Howard Hinnant's `civil_from_days`: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A new unique id for a message born on host `ip`.
pub fn new_unique_id(ip: Ipv4Addr) -> String {
    let now = now_ms();
    let since_month = (now - start_of_month_ms(now)) as u32;
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed) as u16;
    let mut tail = [0u8; 6];
    tail[..4].copy_from_slice(&since_month.to_be_bytes());
    tail[4..].copy_from_slice(&counter.to_be_bytes());
    let mut out = String::with_capacity(32);
    out.push_str(&prefix(ip).hex);
    out.push_str(&hex_upper(&tail));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_32_hex_digits_with_the_ip_first_and_distinct() {
        let ip = Ipv4Addr::new(10, 66, 51, 58);
        let ids: Vec<_> = (0..1000).map(|_| new_unique_id(ip)).collect();
        assert!(ids.iter().all(|id| {
            id.len() == 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        }));
        assert!(ids[0].starts_with("0A42333A"));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[test]
    fn month_start_is_computed_in_utc() {
        // 2024-03-15T12:00:00Z → 2024-03-01T00:00:00Z (1709251200000).
        assert_eq!(start_of_month_ms(1_710_504_000_000), 1_709_251_200_000);
        // 2024-02-29 (leap day) → 2024-02-01 (1706745600000).
        assert_eq!(start_of_month_ms(1_709_208_000_000), 1_706_745_600_000);
        assert_eq!(start_of_month_ms(0), 0);
        for days in [-1000i64, 0, 19_000, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
