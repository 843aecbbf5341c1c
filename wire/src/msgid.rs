//! Message ids: the broker's offset msgId and the client's unique key.
//!
//! * **offsetMsgId** (`MessageDecoder.createMessageId`): store host address (4 or 16 bytes) +
//!   port (i32) + CommitLog physical offset (i64), printed as upper-case hex: 32 characters for
//!   an IPv4 store host, 56 for IPv6. It decodes back to (broker address, offset), so a lookup
//!   by id goes straight to the record.
//! * **unique key** (`MessageClientIDSetter.createUniqID`, property `UNIQ_KEY`): client IPv4
//!   (4, or IPv6 16) + pid low 16 bits (2) + a per-process random "class loader hash" (4) +
//!   milliseconds since the start of the current month (4) + a per-process counter (2), as
//!   upper-case hex. The broker indexes it as `topic#key`; it is not guaranteed unique.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::WireError;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xF) as usize] as char);
    }
}

fn parse_hex(field: &'static str, s: &str, out: &mut [u8]) -> Result<(), WireError> {
    let bytes = s.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err(WireError::invalid_field(field, s, "wrong length"));
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = nibble(bytes[2 * i]);
        let lo = nibble(bytes[2 * i + 1]);
        match (hi, lo) {
            (Some(hi), Some(lo)) => *slot = (hi << 4) | lo,
            _ => return Err(WireError::invalid_field(field, s, "not hexadecimal")),
        }
    }
    Ok(())
}

/// The offset msgId of the record at `physical_offset` stored by `store_host`.
pub fn offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    let mut out = String::with_capacity(56);
    match store_host.ip() {
        IpAddr::V4(ip) => push_hex(&mut out, &ip.octets()),
        IpAddr::V6(ip) => push_hex(&mut out, &ip.octets()),
    }
    push_hex(&mut out, &i32::from(store_host.port()).to_be_bytes());
    push_hex(&mut out, &physical_offset.to_be_bytes());
    out
}

/// Decodes an offset msgId into (store host, physical offset). Accepts either case.
pub fn parse_offset_msg_id(id: &str) -> Result<(SocketAddr, i64), WireError> {
    const FIELD: &str = "msgId";
    if !id.is_ascii() {
        return Err(WireError::invalid_field(FIELD, id, "not hexadecimal"));
    }
    let (ip, rest) = match id.len() {
        32 => {
            let mut b = [0u8; 4];
            parse_hex(FIELD, &id[..8], &mut b)?;
            (IpAddr::V4(Ipv4Addr::from(b)), &id[8..])
        }
        56 => {
            let mut b = [0u8; 16];
            parse_hex(FIELD, &id[..32], &mut b)?;
            (IpAddr::V6(Ipv6Addr::from(b)), &id[32..])
        }
        _ => {
            return Err(WireError::invalid_field(
                FIELD,
                id,
                "an offset msgId has 32 (IPv4) or 56 (IPv6) hex characters",
            ));
        }
    };
    let mut port = [0u8; 4];
    parse_hex(FIELD, &rest[..8], &mut port)?;
    let port = i32::from_be_bytes(port);
    let port = u16::try_from(port)
        .map_err(|_| WireError::invalid_field(FIELD, id, "port out of range"))?;
    let mut off = [0u8; 8];
    parse_hex(FIELD, &rest[8..], &mut off)?;
    Ok((SocketAddr::new(ip, port), i64::from_be_bytes(off)))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil (year, month) of a day count since 1970-01-01.
fn year_month_from_days(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Start of the month holding `now_ms` and start of the next one, in ms since the epoch (UTC).
fn month_bounds(now_ms: i64) -> (i64, i64) {
    const DAY_MS: i64 = 86_400_000;
    let (year, month) = year_month_from_days(now_ms.div_euclid(DAY_MS));
    let start = days_from_civil(year, month, 1) * DAY_MS;
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (start, days_from_civil(ny, nm, 1) * DAY_MS)
}

/// Generates client unique keys (`UNIQ_KEY`) the way RocketMQ's clients do.
///
/// The month boundary is computed in UTC (Java uses the JVM's local zone); the key's only
/// consumers treat the time part as opaque or approximate.
#[derive(Debug, Clone)]
pub struct UniqKeyGenerator {
    prefix: String,
    month_start_ms: i64,
    next_month_start_ms: i64,
    counter: u16,
}

impl UniqKeyGenerator {
    /// A generator for a client at `ip` with process id `pid` and a per-process random value
    /// `instance_hash` (Java uses the class loader's identity hash).
    pub fn new(ip: IpAddr, pid: u32, instance_hash: i32) -> Self {
        let mut prefix = String::with_capacity(44);
        match ip {
            IpAddr::V4(ip) => push_hex(&mut prefix, &ip.octets()),
            IpAddr::V6(ip) => push_hex(&mut prefix, &ip.octets()),
        }
        push_hex(&mut prefix, &(pid as u16).to_be_bytes());
        push_hex(&mut prefix, &instance_hash.to_be_bytes());
        UniqKeyGenerator {
            prefix,
            month_start_ms: 0,
            next_month_start_ms: 0,
            counter: 0,
        }
    }

    /// The next key at wall-clock time `now_ms` (ms since the epoch).
    pub fn next_at(&mut self, now_ms: i64) -> String {
        if now_ms >= self.next_month_start_ms || now_ms < self.month_start_ms {
            let (start, next) = month_bounds(now_ms);
            self.month_start_ms = start;
            self.next_month_start_ms = next;
        }
        let since_month = (now_ms - self.month_start_ms) as i32;
        self.counter = self.counter.wrapping_add(1);
        let mut out = String::with_capacity(self.prefix.len() + 12);
        out.push_str(&self.prefix);
        push_hex(&mut out, &since_month.to_be_bytes());
        push_hex(&mut out, &self.counter.to_be_bytes());
        out
    }

    /// The next key at the current wall-clock time.
    pub fn next_key(&mut self) -> String {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.next_at(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offset_msg_id_matches_spec_example() {
        let addr: SocketAddr = "10.66.51.58:10911".parse().unwrap();
        let id = offset_msg_id(addr, 0x134F1F5);
        assert_eq!(id, "0A42333A00002A9F000000000134F1F5");
        assert_eq!(parse_offset_msg_id(&id).unwrap(), (addr, 0x134F1F5));
        assert_eq!(
            parse_offset_msg_id(&id.to_lowercase()).unwrap(),
            (addr, 0x134F1F5)
        );
    }

    #[test]
    fn offset_msg_id_ipv6_and_errors() {
        let addr: SocketAddr = "[fe80::1]:10911".parse().unwrap();
        let id = offset_msg_id(addr, 77);
        assert_eq!(id.len(), 56);
        assert_eq!(parse_offset_msg_id(&id).unwrap(), (addr, 77));
        assert!(parse_offset_msg_id("").is_err());
        assert!(parse_offset_msg_id("0A42333A00002A9F000000000134F1FZ").is_err());
        assert!(parse_offset_msg_id("0A42333AFFFFFFFF000000000134F1F5").is_err());
        assert!(parse_offset_msg_id("é0A42333A00002A9F000000000134F1").is_err());
    }

    #[test]
    fn month_bounds_are_right() {
        // 2026-11-23T03:00:00Z
        let now = 1_795_402_800_000;
        let (start, next) = month_bounds(now);
        assert_eq!(start, 1_793_491_200_000); // 2026-11-01
        assert_eq!(next, 1_796_083_200_000); // 2026-12-01
        let (start, next) = month_bounds(1_796_083_200_000 + 1);
        assert_eq!(start, 1_796_083_200_000);
        assert_eq!(next, 1_798_761_600_000); // 2027-01-01
    }

    #[test]
    fn uniq_keys_have_the_java_layout() {
        let mut g = UniqKeyGenerator::new("192.168.0.2".parse().unwrap(), 0x1_2345, 0x0BAD_F00D);
        let a = g.next_at(1_793_491_200_000 + 0x10);
        let b = g.next_at(1_793_491_200_000 + 0x10);
        assert_eq!(a, "C0A8000223450BADF00D000000100001");
        assert_eq!(b, "C0A8000223450BADF00D000000100002");
        let v6 = UniqKeyGenerator::new("::1".parse().unwrap(), 1, 1).next_key();
        assert_eq!(v6.len(), 56);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = parse_offset_msg_id(&s);
        }

        #[test]
        fn offset_round_trip(a in any::<[u8; 4]>(), port in any::<u16>(), off in any::<i64>()) {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port);
            prop_assert_eq!(parse_offset_msg_id(&offset_msg_id(addr, off)).unwrap(), (addr, off));
        }
    }
}
