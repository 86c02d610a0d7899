//! Debian's version order, as `dpkg --compare-versions` (dpkg 1.21) applies it:
//! `[epoch:]upstream[-revision]`, `~` before everything (even the end), letters before other
//! symbols, digit runs as numbers.
//!
//! A version dpkg would warn about or refuse (bad epoch, empty parts, characters outside
//! `[A-Za-z0-9.+~-:]`, not starting with a digit, embedded spaces) is `None` here: dpkg still
//! compares some of those after its warning, but a matcher should not trust such an answer.

use std::cmp::Ordering;

use super::cmp_digits;

struct Version<'a> {
    epoch: &'a str,
    upstream: &'a str,
    revision: &'a str,
}

fn parse(s: &str) -> Option<Version<'_>> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() || s.bytes().any(|c| c.is_ascii_whitespace()) {
        return None;
    }
    let (epoch, rest) = match s.split_once(':') {
        Some((e, rest)) => {
            // dpkg reads the epoch with strtol: an optional sign, digits, and nothing else.
            let digits = e.strip_prefix('+').or_else(|| e.strip_prefix('-')).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let negative = e.starts_with('-');
            if negative && digits.bytes().any(|c| c != b'0') {
                return None;
            }
            // Above INT_MAX is refused.
            if cmp_digits(digits, "2147483647") == Ordering::Greater {
                return None;
            }
            if rest.is_empty() {
                return None;
            }
            (digits, rest)
        }
        None => ("0", s),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return None,
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    if !upstream.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    if !upstream.bytes().all(|c| c.is_ascii_alphanumeric() || b".-+~:".contains(&c)) {
        return None;
    }
    if !revision.bytes().all(|c| c.is_ascii_alphanumeric() || b".+~".contains(&c)) {
        return None;
    }
    Some(Version { epoch, upstream, revision })
}

/// The weight of a non-digit byte (`None` is the end of the part).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit prefix, byte by byte.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (x, y) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        // Then the digit runs, as numbers.
        let da = a[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let x = std::str::from_utf8(&a[i..i + da]).unwrap_or_default();
        let y = std::str::from_utf8(&b[j..j + db]).unwrap_or_default();
        match cmp_digits(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
        i += da;
        j += db;
    }
    Ordering::Equal
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    Some(
        cmp_digits(a.epoch, b.epoch)
            .then_with(|| compare_part(a.upstream, b.upstream))
            .then_with(|| compare_part(a.revision, b.revision)),
    )
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn debian_order() {
        for (a, b, want) in [
            ("1.0", "1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.9", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0a", "1.0+", Less),
            ("2.36.1-8+deb12u1", "2.36.1-8", Greater),
            ("1.01", "1.1", Equal),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
        ] {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
        }
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for v in ["", "a1", "1.0-", ":1", "1:", "1 0", "x:1", "1.0_1", "1.0-1:2", "-1:1"] {
            assert_eq!(compare(v, "1"), None, "{v:?}");
        }
    }
}
