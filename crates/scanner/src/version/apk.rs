//! Alpine's version order (apk), from the rules the format publishes:
//! `digits{.digits}[letter]{_suffix[digits]}[-rN]`.
//!
//! - The first number compares as a number; a later number that starts with `0` compares as
//!   a decimal fraction (trailing zeros dropped, then as text), otherwise as a number. With all
//!   shared numbers equal, more numbers is newer (`1.2.1` > `1.2`).
//! - A letter after the numbers is newer than none (`1.2a` > `1.2`), letters in order.
//! - Suffixes, in order: `_alpha` < `_beta` < `_pre` < `_rc` < (none) < `_cvs` < `_svn` <
//!   `_git` < `_hg` < `_p`, each with an optional number (missing = 0). A further suffix on
//!   one side makes it older if it is one of the first four, newer otherwise.
//! - The revision `-rN` last (missing = `-r0`).
//!
//! No crate implements this order; anything outside the grammar is `None`.

use std::cmp::Ordering;

use super::{cmp_digits, split_run};

const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Rank of "no suffix": between the pre-release and the post-release suffixes.
const NONE_RANK: usize = 4;

struct Version<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    suffixes: Vec<(usize, &'a str)>,
    revision: &'a str,
}

fn parse(s: &str) -> Option<Version<'_>> {
    let mut numbers = Vec::new();
    let (first, mut rest) = split_run(s, |c| c.is_ascii_digit());
    if first.is_empty() {
        return None;
    }
    numbers.push(first);
    while let Some(r) = rest.strip_prefix('.') {
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if n.is_empty() {
            return None;
        }
        numbers.push(n);
        rest = r;
    }
    let mut letter = None;
    if let Some(&c) = rest.as_bytes().first()
        && c.is_ascii_lowercase()
    {
        letter = Some(c);
        rest = &rest[1..];
    }
    let mut suffixes = Vec::new();
    while let Some(r) = rest.strip_prefix('_') {
        let (name, r) = split_run(r, |c| c.is_ascii_lowercase());
        let index = SUFFIXES.iter().position(|s| *s == name)?;
        // Post-release suffixes rank after "no suffix".
        let rank = if index < NONE_RANK { index } else { index + 1 };
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        suffixes.push((rank, n));
        rest = r;
    }
    let mut revision = "";
    if let Some(r) = rest.strip_prefix("-r") {
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if n.is_empty() {
            return None;
        }
        revision = n;
        rest = r;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Version { numbers, letter, suffixes, revision })
}

fn compare_fraction(a: &str, b: &str) -> Ordering {
    if a.starts_with('0') || b.starts_with('0') {
        a.trim_end_matches('0').cmp(b.trim_end_matches('0'))
    } else {
        cmp_digits(a, b)
    }
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    let mut ord = cmp_digits(a.numbers[0], b.numbers[0]);
    for (x, y) in a.numbers.iter().zip(&b.numbers).skip(1) {
        ord = ord.then_with(|| compare_fraction(x, y));
    }
    ord = ord.then_with(|| a.numbers.len().cmp(&b.numbers.len())).then_with(|| a.letter.cmp(&b.letter));
    if ord != Ordering::Equal {
        return Some(ord);
    }
    for (x, y) in a.suffixes.iter().zip(&b.suffixes) {
        let o = x.0.cmp(&y.0).then_with(|| cmp_digits(x.1, y.1));
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    let n = a.suffixes.len().min(b.suffixes.len());
    let extra = |v: &Version<'_>| v.suffixes.get(n).map_or(NONE_RANK, |s| s.0);
    Some(extra(&a).cmp(&extra(&b)).then_with(|| cmp_digits(a.revision, b.revision)))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{self, Equal, Greater, Less};

    fn check(cases: &[(&str, &str, Ordering)]) {
        for &(a, b, want) in cases {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn numbers() {
        check(&[
            ("1.2.3", "1.2.3", Equal),
            ("1.2.10", "1.2.9", Greater),
            ("1.2", "1.2.0", Less),
            ("2", "10", Less),
            ("010", "10", Equal),
            ("1.0", "1.00", Equal),
            ("1.01", "1.1", Less),
            ("1.001", "1.01", Less),
            ("1.1", "1.10", Less),
            ("1.05", "1.5", Less),
            ("1.5", "1.50", Less),
            ("1.010", "1.01", Equal),
            ("1.2.99999999999999999999999", "1.2.100000000000000000000000", Less),
        ]);
    }

    #[test]
    fn letters() {
        check(&[("1.2a", "1.2", Greater), ("1.2b", "1.2a", Greater), ("1.2a", "1.2.1", Less), ("1.2z", "1.3", Less)]);
    }

    #[test]
    fn suffixes() {
        check(&[
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0_beta", "1.0_pre", Less),
            ("1.0_pre", "1.0_rc", Less),
            ("1.0_rc", "1.0", Less),
            ("1.0", "1.0_cvs", Less),
            ("1.0_cvs", "1.0_svn", Less),
            ("1.0_svn", "1.0_git", Less),
            ("1.0_git", "1.0_hg", Less),
            ("1.0_hg", "1.0_p", Less),
            ("1.0_rc1", "1.0_rc2", Less),
            ("1.0_rc10", "1.0_rc9", Greater),
            ("1.0_rc", "1.0_rc0", Equal),
            ("1.0_p1", "1.0_p1_p1", Less),
            ("1.0_p1", "1.0_p1_rc1", Greater),
            ("1.0_alpha_beta", "1.0_alpha", Less),
            ("1.0_rc1", "1.0.1_alpha", Less),
            ("1.0_p1", "1.0a", Less),
        ]);
    }

    #[test]
    fn revisions() {
        check(&[
            ("1.0-r1", "1.0-r2", Less),
            ("1.0-r10", "1.0-r9", Greater),
            ("1.0", "1.0-r0", Equal),
            ("1.0-r5", "1.0.1", Less),
            ("1.0_p1-r0", "1.0-r9", Greater),
            ("3.1.4-r5", "3.1.4-r5", Equal),
        ]);
    }

    #[test]
    fn refuses_what_is_not_an_apk_version() {
        for v in ["", "a1", "1.", ".1", "1..2", "1.0-r", "1.0-1", "1.0_foo", "1.0A", "1.0ab", "1.0-r1-r2", "1.0 "] {
            assert_eq!(compare(v, "1"), None, "{v:?}");
        }
    }
}
