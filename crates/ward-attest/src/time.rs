//! RFC 3339 timestamps (`2025-09-14T04:36:46Z`) to and from unix seconds, without a date crate:
//! collateral carries its validity this way, and verifiers print times this way.

/// Parses an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) to unix seconds.
/// Fractions of a second are dropped. None if malformed or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
        )
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while at(i, b"0123456789") {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = if at(i, b"Zz") {
        i += 1;
        0
    } else if at(i, b"+-") {
        let sign = if b[i] == b'-' { -1 } else { 1 };
        let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
        if !at(i + 3, b":") || oh > 23 || om > 59 {
            return None;
        }
        i += 6;
        sign * (oh * 3600 + om * 60)
    } else {
        return None;
    };
    if i != b.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()
}

/// Formats unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339 as p;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("2025-06-15T00:00:00Z"), Some(1_749_945_600));
        assert_eq!(p("2025-09-14T04:36:46Z"), Some(1_757_824_606));
        assert_eq!(p("2025-09-14T04:36:46.999Z"), Some(1_757_824_606));
        assert_eq!(p("2025-09-14T06:36:46+02:00"), Some(1_757_824_606));
        assert_eq!(p("2025-09-14T00:36:46-04:00"), Some(1_757_824_606));
        assert_eq!(p("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(p("2000-03-01T00:00:00z"), Some(951_868_800));
        for bad in [
            "",
            "2025-09-14",
            "2025-09-14T04:36:46",
            "2025-09-14T04:36:46ZZ",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-09-14T24:00:00Z",
            "2025-09-14T04:36:46.Z",
            "2025-09-14T04:36:46+0200",
            "1969-12-31T23:59:59Z",
            "+025-09-14T04:36:46Z",
            "2025-09-14T04:36:4éZ",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
