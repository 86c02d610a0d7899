//! Timestamps for the `Date*` condition operators.
//!
//! AWS takes "one of the W3C implementations of the ISO 8601 date formats or epoch (UNIX) time".
//! Accepted here:
//! - epoch seconds: an optional `-` followed by ASCII digits only (`1700000000`; so a bare
//!   `1997` is a second of 1970, not a year);
//! - `YYYY-MM` (the first instant of that month, UTC);
//! - `YYYY-MM-DD` (midnight UTC);
//! - `YYYY-MM-DDThh:mm[:ss[.fraction]]` followed by an optional zone, `Z` or `±hh:mm` / `±hhmm` /
//!   `±hh`; no zone means UTC. `t` and a space are accepted in place of `T`, `,` in place of `.`,
//!   and digits of the fraction past nanoseconds are ignored. A leap second (`:60`) reads as
//!   `:59`.
//!
//! Instants run from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. Calendar rules and
//! offsets are jiff's; this module only chooses which ISO 8601 shapes are accepted (not the basic
//! format `20261123T120000Z`, hour-only times, expanded years or time zone annotations).

use std::borrow::Cow;

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time, datetime};
use jiff::fmt::temporal::Pieces;
use jiff::tz::Offset;

/// A point in time, held as its date and time in UTC (jiff's `Timestamp` ends a day before
/// 9999-12-31T23:59:59Z, which policies do write). Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp(DateTime);

const EPOCH: DateTime = datetime(1970, 1, 1, 0, 0, 0, 0);

impl Timestamp {
    /// `datetime` at `offset` from UTC, if the instant is within years 0000 to 9999 in UTC.
    fn at(datetime: DateTime, offset: Offset) -> Option<Self> {
        let utc = datetime.checked_sub(SignedDuration::from_secs(i64::from(offset.seconds()))).ok()?;
        (utc.year() >= 0).then_some(Timestamp(utc))
    }

    fn from_second(secs: i64) -> Option<Self> {
        let utc = EPOCH.checked_add(SignedDuration::from_secs(secs)).ok()?;
        (utc.year() >= 0).then_some(Timestamp(utc))
    }
}

/// Parses a timestamp in one of the forms listed in the module documentation.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Timestamp::from_second(s.parse().ok()?);
    }
    parse_iso(s)
}

fn parse_iso(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    // Refuse the shapes jiff's wider Temporal grammar takes but the W3C profile does not.
    if b.len() < 7 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    if b.len() == 7 {
        let (year, month) = (s[..4].parse().ok()?, s[5..].parse().ok()?);
        if !b[5..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        return Timestamp::at(Date::new(year, month, 1).ok()?.to_datetime(Time::midnight()), Offset::UTC);
    }
    if b.len() > 10 && b.get(13) != Some(&b':') {
        return None;
    }
    let text = without_excess_fraction(s);
    let p = Pieces::parse(text.as_ref()).ok()?;
    if p.time_zone_annotation().is_some() {
        return None;
    }
    let offset = p.to_numeric_offset().unwrap_or(Offset::UTC);
    // ISO 8601 offsets stop at ±23:59 (jiff's reach ±25:59:59).
    if offset.seconds().abs() >= 24 * 3600 {
        return None;
    }
    let datetime = p.date().to_datetime(p.time().unwrap_or(Time::midnight()));
    Timestamp::at(datetime, offset)
}

/// `s` with the fraction of its seconds cut to nine digits (jiff parses nanoseconds at most).
fn without_excess_fraction(s: &str) -> Cow<'_, str> {
    let Some(dot) = s.find(['.', ',']) else { return Cow::Borrowed(s) };
    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    if digits <= 9 {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!("{}{}", &s[..=dot + 9], &s[dot + 1 + digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: i32) -> Timestamp {
        let t = Timestamp::from_second(secs).unwrap();
        Timestamp(t.0.checked_add(SignedDuration::new(0, nanos)).unwrap())
    }

    fn seconds(t: Timestamp) -> i64 {
        t.0.duration_since(EPOCH).as_secs()
    }

    #[test]
    fn parse_table() {
        let ts = |secs, nanos| Some(at(secs, nanos));
        let cases: &[(&str, Option<Timestamp>)] = &[
            ("1970-01-01", ts(0, 0)),
            ("1970-01-01T00:00:00Z", ts(0, 0)),
            ("0", ts(0, 0)),
            ("1700000000", ts(1_700_000_000, 0)),
            ("-86400", ts(-86_400, 0)),
            ("1969-12-31", ts(-86_400, 0)),
            ("2000-02-29T00:00:00Z", ts(951_782_400, 0)),
            ("2026-11-23T12:00:00Z", ts(1_795_435_200, 0)),
            ("2026-11-23T12:00:00.5Z", ts(1_795_435_200, 500_000_000)),
            ("2026-11-23T12:00:00.123456789123Z", ts(1_795_435_200, 123_456_789)),
            ("2026-11-23T12:00Z", ts(1_795_435_200, 0)),
            ("2026-11-23T12:00:00", ts(1_795_435_200, 0)),
            ("2026-11-23T14:00:00+02:00", ts(1_795_435_200, 0)),
            ("2026-11-23T07:00:00-0500", ts(1_795_435_200, 0)),
            ("2026-11-23T13:00:00+01", ts(1_795_435_200, 0)),
            ("2026-11-23", ts(1_795_392_000, 0)),
            ("2100-02-29", None),
            ("2026-13-01", None),
            ("2026-04-31", None),
            ("2026-11-23T24:00:00Z", None),
            ("2026-11-23T12:00:00.Z", None),
            ("2026-11-23T12:00:00Q", None),
            ("2026-11-23T12", None),
            ("26-11-23", None),
            ("", None),
            ("-", None),
            ("now", None),
            ("99999999999999999999999", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), *want, "{s:?}");
        }
    }

    #[test]
    fn w3c_profile_forms() {
        // The examples of the W3C note "Date and Time Formats" (1997-07-16T19:20:30.45+01:00).
        let ts = |secs, nanos| Some(at(secs, nanos));
        let cases: &[(&str, Option<Timestamp>)] = &[
            // All digits are epoch seconds, whatever they look like.
            ("1997", ts(1997, 0)),
            ("19970716", ts(19_970_716, 0)),
            ("1997-07", ts(867_715_200, 0)),
            ("1997-07-16", ts(869_011_200, 0)),
            ("1997-07-16T19:20+01:00", ts(869_077_200, 0)),
            ("1997-07-16T19:20:30+01:00", ts(869_077_230, 0)),
            ("1997-07-16T19:20:30.45+01:00", ts(869_077_230, 450_000_000)),
            ("1997-07-16t19:20:30,45+01:00", ts(869_077_230, 450_000_000)),
            ("1997-07-16 18:20:30.45z", ts(869_077_230, 450_000_000)),
            ("  1997-07-16T18:20:30Z  ", ts(869_077_230, 0)),
            // Outside the profile.
            ("19970716T182030Z", None),
            ("1997-07-16T1820Z", None),
            ("1997-07-16T18Z", None),
            ("+001997-07-16", None),
            ("1997-7-16", None),
            ("1997-07-16T18:20:30Z[UTC]", None),
            ("1997-07-16T18:20:30Z ", ts(869_077_230, 0)),
            ("1997-00", None),
            ("1997-13", None),
            ("1997-07-16T18:20:30+24:00", None),
            ("1997-07-16T18:20:30-2400", None),
            ("1997-07-16T18:20:30+23:59", ts(869_077_230 - 86_340, 0)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), *want, "{s:?}");
        }
    }

    #[test]
    fn edge_dates() {
        let at = |s: &str| parse(s).map(seconds);
        // Leap days: every fourth year, not centuries, but every fourth century.
        assert_eq!(at("2024-02-29"), Some(1_709_164_800));
        assert_eq!(at("2000-02-29"), Some(951_782_400));
        assert_eq!(at("2023-02-29"), None);
        assert_eq!(at("1900-02-29"), None);
        assert_eq!(at("2024-02-30"), None);
        // The ends of the range: years 0000 and 9999.
        assert_eq!(at("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(at("9999-12-31T23:59:59.999999999Z"), Some(253_402_300_799));
        assert_eq!(at("253402300799"), Some(253_402_300_799));
        assert_eq!(at("0000-01-01T00:00:00Z"), Some(-62_167_219_200));
        assert_eq!(at("9999-12-31T23:59:59-01:00"), None, "past the end of year 9999 in UTC");
        assert_eq!(at("0000-01-01T00:30:00+01:00"), None, "before year 0000 in UTC");
        assert_eq!(at("-62167219201"), None, "epoch seconds before year 0000");
        assert!(parse("9999-12-31T23:59:59.999999999Z") > parse("9999-12-31T23:59:59Z"));
        assert_eq!(at("253402300800"), None, "epoch seconds past year 9999");
        // Invalid months, days and times.
        for bad in ["2026-00-10", "2026-13-10", "2026-1-10", "2026-11-00", "2026-11-31", "2026-11-23T12:60Z"] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // A leap second is read as the last second of its minute.
        assert_eq!(at("2016-12-31T23:59:60Z"), at("2016-12-31T23:59:59Z"));
    }
}
