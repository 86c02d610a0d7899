//! The two timestamp formats SigV4 uses, without a date-time crate.
//!
//! Times are seconds since the Unix epoch (UTC, no leap seconds), as `i64`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')))
}

fn from_parts(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parses ISO 8601 basic format, `yyyymmddThhmmssZ` (the `X-Amz-Date` form).
pub(crate) fn parse_amz_date(s: &[u8]) -> Option<i64> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    from_parts(
        digits(&s[0..4])?,
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        digits(&s[9..11])?,
        digits(&s[11..13])?,
        digits(&s[13..15])?,
    )
}

/// Parses the IMF-fixdate form of the HTTP `Date` header: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn parse_http_date(s: &[u8]) -> Option<i64> {
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    if s.len() != 29 || &s[3..5] != b", " || &s[25..] != b" GMT" || s[7] != b' ' || s[11] != b' ' {
        return None;
    }
    if s[16] != b' ' || s[19] != b':' || s[22] != b':' {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &s[8..11])?;
    from_parts(
        digits(&s[12..16])?,
        i64::try_from(month).ok()? + 1,
        digits(&s[5..7])?,
        digits(&s[17..19])?,
        digits(&s[20..22])?,
        digits(&s[23..25])?,
    )
}

/// Formats as ISO 8601 basic format, `yyyymmddThhmmssZ`.
pub(crate) fn format_amz_date(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Formats as ISO 8601 extended format, `yyyy-mm-ddThh:mm:ssZ` (IAM's `aws:CurrentTime`).
pub(crate) fn format_iso8601(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// 9999-12-31T23:59:59Z, the last instant `yyyymmddThhmmssZ` can name.
const MAX_UNIX: i64 = 253_402_300_799;

/// Seconds since the epoch of a `SystemTime`, clamped to 1970..=9999 so that arithmetic and
/// formatting on it stay in range whatever clock the caller passes.
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(MAX_UNIX).min(MAX_UNIX),
        Err(_) => 0,
    }
}

/// The `SystemTime` of a non-negative Unix time.
pub(crate) fn system_time(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_amz_date(b"20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(parse_http_date(b"Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
        assert_eq!(format_amz_date(parse_amz_date(b"20240229T235959Z").unwrap()), "20240229T235959Z");
    }

    #[test]
    fn rejects_bad() {
        for s in ["20150230T123600Z", "20151330T123600Z", "2015083OT123600Z", "20150830T243600Z", "x", ""] {
            assert_eq!(parse_amz_date(s.as_bytes()), None, "{s}");
        }
        assert_eq!(parse_http_date(b"Sun, 30 Foo 2015 12:36:00 GMT"), None);
    }
}
