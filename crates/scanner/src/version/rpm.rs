//! rpm's version order (rpm 4.18): `rpmvercmp` on each of epoch, version and release of
//! `[epoch:]version[-release]`.
//!
//! `rpmvercmp` walks both strings by alphanumeric segments: other characters only separate
//! them; `~` sorts before anything, even the end; `^` sorts after the end but before
//! anything else; a numeric segment beats an alphabetic one; digits compare as numbers. The
//! epoch is the leading digits before a `:` (missing or empty: `0`); the release is what
//! follows the last `-`. As rpm 4.18 compares them, a version without a release is older than
//! the same version with any release. Only the empty string is refused.

use std::cmp::Ordering;

use super::cmp_digits;

/// `rpmvercmp` of two version or release strings.
pub(crate) fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (x, y) = (a.get(i).copied(), b.get(j).copied());
        if x.is_none() && y.is_none() {
            return Ordering::Equal;
        }
        if x == Some(b'~') || y == Some(b'~') {
            if x != Some(b'~') {
                return Ordering::Greater;
            }
            if y != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if x == Some(b'^') || y == Some(b'^') {
            match (x, y) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let (Some(x), Some(_)) = (x, y) else {
            // One side ran out: whichever has something left is newer.
            return if x.is_none() { Ordering::Less } else { Ordering::Greater };
        };
        let numeric = x.is_ascii_digit();
        let class = |c: &u8| {
            if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }
        };
        let na = a[i..].iter().take_while(|c| class(c)).count();
        let nb = b[j..].iter().take_while(|c| class(c)).count();
        if nb == 0 {
            // Segments of different kinds: numeric is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let sa = std::str::from_utf8(&a[i..i + na]).unwrap_or_default();
        let sb = std::str::from_utf8(&b[j..j + nb]).unwrap_or_default();
        let ord = if numeric { cmp_digits(sa, sb) } else { sa.cmp(sb) };
        if ord != Ordering::Equal {
            return ord;
        }
        i += na;
        j += nb;
    }
}

struct Evr<'a> {
    epoch: &'a str,
    version: &'a str,
    release: Option<&'a str>,
}

fn parse(s: &str) -> Option<Evr<'_>> {
    if s.is_empty() {
        return None;
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
        let e = &s[..digits];
        (if e.is_empty() { "0" } else { e }, &s[digits + 1..])
    } else {
        ("0", s)
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    Some(Evr { epoch, version, release })
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    Some(vercmp(a.epoch, b.epoch).then_with(|| vercmp(a.version, b.version)).then_with(|| {
        match (a.release, b.release) {
            (Some(x), Some(y)) => vercmp(x, y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{compare, vercmp};
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn rpmvercmp_order() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1a", "1.a", Equal),
            ("1.0a", "1.0.1", Less),
            ("2.0", "2_0", Equal),
            ("10", "9", Greater),
            ("a", "1", Less),
            ("0001", "1", Equal),
        ] {
            assert_eq!(vercmp(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn epoch_version_release() {
        assert_eq!(compare("1:1.0-1.el9", "2.0-1.el9"), Some(Greater));
        assert_eq!(compare("0:1.0-1.el9", "1.0-1.el9"), Some(Equal));
        assert_eq!(compare("1.0", "1.0-1"), Some(Less));
        assert_eq!(compare("1.0-1.el9_2", "1.0-1.el9_10"), Some(Less));
        assert_eq!(compare("", "1"), None);
    }
}
