//! RubyGems' version order (`Gem::Version`).
//!
//! A version is `N(.X)*` with `X` alphanumeric and an optional `-pre.release` tail (a `-`
//! reads as `.pre.`); it splits into numbers and letter runs (`1.0a2` is `1, 0, a, 2`).
//! Trailing zeros are dropped from the numeric head and from the tail after the first
//! letters; then items compare in turn (missing = 0), a letter run being older than any
//! number: so any version with letters is a pre-release (`1.0.a` < `1.0`). An empty or
//! blank string is `0`. No Rust crate implements this order, hence this module.

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Num(&'a str),
    Str(&'a str),
}

fn valid(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let (main, pre) = match s.split_once('-') {
        Some((m, p)) => (m, Some(p)),
        None => (s, None),
    };
    let mut parts = main.split('.');
    let first = parts.next().unwrap_or_default();
    if first.is_empty() || !first.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    if !parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric())) {
        return false;
    }
    pre.is_none_or(|p| p.split('.').all(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')))
}

fn segments(s: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Segment::Num(&s[start..i]));
        } else if b[i].is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Segment::Str(&s[start..i]));
        } else {
            i += 1;
        }
    }
    out
}

fn is_zero(s: &Segment<'_>) -> bool {
    matches!(s, Segment::Num(d) if d.bytes().all(|c| c == b'0'))
}

/// `canonical_segments`: trailing zeros dropped from the numbers before the first letters
/// and from the rest.
fn canonical(s: &str) -> Option<Vec<Segment<'_>>> {
    let s = s.trim_matches([' ', '\t', '\r', '\n', '\x0b', '\x0c']);
    if !valid(s) {
        return None;
    }
    // `-` means `.pre.`: the letters `pre` take its place in the order.
    let mut segs = Vec::new();
    let mut rest = s;
    while let Some((head, tail)) = rest.split_once('-') {
        segs.extend(segments(head));
        segs.push(Segment::Str("pre"));
        rest = tail;
    }
    segs.extend(segments(rest));
    let split = segs.iter().position(|x| matches!(x, Segment::Str(_))).unwrap_or(segs.len());
    let mut tail = segs.split_off(split);
    while segs.last().is_some_and(is_zero) {
        segs.pop();
    }
    while tail.last().is_some_and(is_zero) {
        tail.pop();
    }
    segs.extend(tail);
    Some(segs)
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (canonical(a)?, canonical(b)?);
    for i in 0..a.len().max(b.len()) {
        let zero = Segment::Num("0");
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let o = match (x, y) {
            (Segment::Num(x), Segment::Num(y)) => cmp_digits(x, y),
            (Segment::Str(_), Segment::Num(_)) => Ordering::Less,
            (Segment::Num(_), Segment::Str(_)) => Ordering::Greater,
            (Segment::Str(x), Segment::Str(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    Some(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::Equal;

    #[test]
    fn gem_order() {
        let sorted = [
            "0.9",
            "1.0.a",
            "1.0.a.1",
            "1.0.b1",
            "1.0.pre",
            "1.0.pre.1",
            "1.0.rc1",
            "1.0",
            "1.0.1",
            "1.1.a",
            "1.1",
            "1.10",
            "2",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(a, b), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn equivalent_spellings() {
        for (a, b) in [
            ("1", "1.0.0"),
            ("1.0a", "1.0.a"),
            ("1.0.a.0", "1.0.a"),
            ("", "0"),
            (" 1.2 ", "1.2"),
            ("1.0-rc1", "1.0.pre.rc1"),
            ("01.2", "1.2"),
        ] {
            assert_eq!(compare(a, b), Some(Equal), "{a} vs {b}");
        }
    }

    #[test]
    fn refuses_what_rubygems_refuses() {
        for v in ["a", "1..2", "1.", ".1", "1.2-", "1.2 3", "1_2", "junk-1"] {
            assert_eq!(compare(v, "1"), None, "{v:?}");
        }
    }
}
