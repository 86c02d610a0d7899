//! The two timestamp formats SigV4 uses, read and written with jiff.
//!
//! Times are seconds since the Unix epoch (UTC, no leap seconds), as `i64`, so that the skew
//! arithmetic stays plain integers. They are converted through jiff's civil date-time in UTC,
//! which (unlike its `Timestamp`) reaches 9999-12-31T23:59:59Z, the last instant `X-Amz-Date`
//! can name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::SignedDuration;
use jiff::civil::{DateTime, datetime};

const EPOCH: DateTime = datetime(1970, 1, 1, 0, 0, 0, 0);

/// 9999-12-31T23:59:59Z, the last instant `yyyymmddThhmmssZ` can name.
const MAX_UNIX: i64 = 253_402_300_799;

fn seconds(dt: DateTime) -> i64 {
    dt.duration_since(EPOCH).as_secs()
}

/// The UTC date-time `t` seconds after the epoch, clamped to jiff's range (years -9999 to 9999).
fn civil(t: i64) -> DateTime {
    EPOCH.checked_add(SignedDuration::from_secs(t)).unwrap_or(if t < 0 { DateTime::MIN } else { DateTime::MAX })
}

/// Whether `s` has ASCII digits at every position of `digits`.
fn digits_at(s: &[u8], digits: impl IntoIterator<Item = usize>) -> bool {
    digits.into_iter().all(|i| s.get(i).is_some_and(u8::is_ascii_digit))
}

/// Parses ISO 8601 basic format, `yyyymmddThhmmssZ` (the `X-Amz-Date` form), exactly.
pub(crate) fn parse_amz_date(s: &[u8]) -> Option<i64> {
    // strptime is lenient about widths and signs; the shape is checked first.
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' || !digits_at(s, (0..8).chain(9..15)) {
        return None;
    }
    let dt = DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    // jiff reads a leap second (`60`) as `59`; SigV4 signers never write one.
    (s[13..15] != *b"60").then(|| seconds(dt))
}

/// Parses the IMF-fixdate form of the HTTP `Date` header: `Sun, 06 Nov 1994 08:49:37 GMT`. The
/// day of the week must be the date's.
pub(crate) fn parse_http_date(s: &[u8]) -> Option<i64> {
    if s.len() != 29 || &s[3..5] != b", " || &s[25..] != b" GMT" || !digits_at(s, [5, 6, 12, 13, 14, 15]) {
        return None;
    }
    if !digits_at(s, [17, 18, 20, 21, 23, 24]) || s[23..25] == *b"60" {
        return None;
    }
    DateTime::strptime("%a, %d %b %Y %H:%M:%S GMT", s).ok().map(seconds)
}

/// Formats as ISO 8601 basic format, `yyyymmddThhmmssZ`.
pub(crate) fn format_amz_date(t: i64) -> String {
    civil(t).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Formats as ISO 8601 extended format, `yyyy-mm-ddThh:mm:ssZ` (IAM's `aws:CurrentTime`).
pub(crate) fn format_iso8601(t: i64) -> String {
    civil(t).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

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
        assert_eq!(format_iso8601(t), "2015-08-30T12:36:00Z");
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

    #[test]
    fn edge_dates() {
        // Leap days.
        assert_eq!(parse_amz_date(b"20240229T000000Z"), Some(1_709_164_800));
        assert_eq!(parse_amz_date(b"20000229T000000Z"), Some(951_782_400));
        assert_eq!(parse_amz_date(b"19000229T000000Z"), None);
        assert_eq!(parse_amz_date(b"20230229T000000Z"), None);
        // The ends of what the format can name.
        assert_eq!(parse_amz_date(b"99991231T235959Z"), Some(MAX_UNIX));
        assert_eq!(format_amz_date(MAX_UNIX), "99991231T235959Z");
        assert_eq!(format_iso8601(MAX_UNIX), "9999-12-31T23:59:59Z");
        assert_eq!(parse_amz_date(b"00000101T000000Z"), Some(-62_167_219_200));
        assert_eq!(parse_amz_date(b"19700101T000000Z"), Some(0));
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        assert_eq!(unix(UNIX_EPOCH + Duration::from_secs(1 << 40)), MAX_UNIX);
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(1)), 0);
        // Months, days, hours, minutes and seconds out of range.
        for s in [
            "20260010T000000Z",
            "20261310T000000Z",
            "20261100T000000Z",
            "20261131T000000Z",
            "20261123T126000Z",
            "20261123T120060Z",
            "20261123T120000z",
            "20261123 120000Z",
            "+2026112T120000Z",
            "2026-11-23T12:00:00Z",
            "20261123T120000Z ",
        ] {
            assert_eq!(parse_amz_date(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date(b"Thu, 29 Feb 2024 00:00:00 GMT"), Some(1_709_164_800));
        assert_eq!(parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_UNIX));
        for s in [
            "Mon, 30 Aug 2015 12:36:00 GMT",  // not a Monday
            "Sun, 30 Aug 2015 12:36:00 UTC",  // only GMT
            "Sun, 30 Aug 2015 12:36:60 GMT",  // no leap seconds
            "Sun, 31 Sep 2015 12:36:00 GMT",  // no 31 September
            "Sunday, 30-Aug-15 12:36:00 GMT", // RFC 850
            "Sun Aug 30 12:36:00 2015",       // asctime
            "Sun, 30 Aug 2015 12:36:00 +0000",
        ] {
            assert_eq!(parse_http_date(s.as_bytes()), None, "{s}");
        }
    }
}
