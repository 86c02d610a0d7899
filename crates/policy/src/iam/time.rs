//! Timestamps for the `Date*` condition operators, parsed without allocation.
//!
//! Accepted forms:
//! - epoch seconds: an optional `-` followed by ASCII digits only (`1700000000`);
//! - a date: `YYYY-MM-DD` (midnight UTC);
//! - a date and time: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by an optional zone, `Z` or
//!   `±HH:MM` / `±HHMM` / `±HH`; no zone means UTC. `t` and a space are accepted in place of `T`.

/// A point in time: seconds since the Unix epoch plus nanoseconds. Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Parses a timestamp in one of the forms listed in the module documentation.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let b = s.trim().as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        let s = std::str::from_utf8(b).ok()?;
        return Some(Timestamp { secs: s.parse().ok()?, nanos: 0 });
    }
    parse_iso(b)
}

/// A cursor over ASCII bytes.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Exactly `n` digits as a number.
    fn num(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let d = self.peek().filter(u8::is_ascii_digit)?;
            v = v * 10 + i64::from(d - b'0');
            self.i += 1;
        }
        Some(v)
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn parse_iso(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cur { b, i: 0 };
    let year = c.num(4)?;
    c.eat(b'-').then_some(())?;
    let month = c.num(2)?;
    c.eat(b'-').then_some(())?;
    let day = c.num(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0u32;
    if c.done() {
        return Some(Timestamp { secs, nanos });
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.num(2)?;
    c.eat(b':').then_some(())?;
    let minute = c.num(2)?;
    let mut second = 0;
    if c.eat(b':') {
        second = c.num(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let mut scale = 100_000_000u32;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                nanos += u32::from(d - b'0') * scale;
                scale /= 10;
                c.i += 1;
            }
            if c.i == start {
                return None;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    secs += hour * 3600 + minute * 60 + second;
    match c.peek() {
        None => {}
        Some(b'Z' | b'z') => c.i += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.num(2)?;
            let om = if c.eat(b':') {
                c.num(2)?
            } else if c.done() {
                0
            } else {
                c.num(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            // Local time = UTC + offset, so UTC = local - offset.
            secs += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return None,
    }
    c.done().then_some(Timestamp { secs, nanos })
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Counts whole 400-year cycles (146 097
/// days each) from 0000-03-01, with years starting in March so that the leap day is last.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let cycle = y.div_euclid(400);
    let year_of_cycle = y - cycle * 400; // 0..=399
    let month_from_march = (m + 9) % 12; // March = 0 .. February = 11
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719 468 days separate 0000-03-01 from 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ts = |secs, nanos| Some(Timestamp { secs, nanos });
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
}
