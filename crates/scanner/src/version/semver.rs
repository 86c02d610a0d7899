//! SemVer 2.0 as npm's `semver` package (7.x) orders it, after its `clean`: surrounding
//! whitespace and any leading `=`/`v` are dropped, build metadata (`+…`) is ignored.
//!
//! npm refuses versions longer than 256 characters and major/minor/patch numbers above
//! 2^53 − 1 (JavaScript's safe integers), and compares numeric pre-release identifiers as
//! JavaScript numbers: both are mirrored here so that this order is npm's on every input.
//! The `semver` crate differs (it refuses numbers above `u64::MAX`, accepts what npm
//! refuses, and compares large identifiers exactly), hence this module.
//! crates.io versions are SemVer 2.0 too, and order the same way on the versions it accepts.

use std::cmp::Ordering;

use super::cmp_digits;

const MAX_LENGTH: usize = 256;
/// 2^53 − 1.
const MAX_SAFE_INTEGER: &str = "9007199254740991";

pub(crate) struct Version<'a> {
    pub(crate) major: &'a str,
    pub(crate) minor: &'a str,
    pub(crate) patch: &'a str,
    pub(crate) pre: Vec<&'a str>,
}

/// A numeric identifier: `0` or digits without a leading zero.
pub(crate) fn is_numeric_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Parses `major.minor.patch[-pre][+build]` strictly (SemVer 2.0 grammar, numbers of any
/// length).
pub(crate) fn parse_strict(s: &str) -> Option<Version<'_>> {
    let (core, build) = match s.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (s, None),
    };
    if let Some(build) = build
        && build.split('.').any(|id| id.is_empty() || !id.bytes().all(is_id_char))
    {
        return None;
    }
    let (main, pre) = match core.split_once('-') {
        Some((m, p)) => (m, Some(p)),
        None => (core, None),
    };
    let mut parts = main.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ![major, minor, patch].iter().all(|n| is_numeric_id(n)) {
        return None;
    }
    let pre = match pre {
        None => Vec::new(),
        Some(p) => {
            let ids: Vec<&str> = p.split('.').collect();
            for id in &ids {
                let numeric = id.bytes().all(|c| c.is_ascii_digit());
                if id.is_empty() || !id.bytes().all(is_id_char) || (numeric && !is_numeric_id(id)) {
                    return None;
                }
            }
            ids
        }
    };
    Some(Version { major, minor, patch, pre })
}

/// Pre-release identifiers in SemVer order; `numeric` compares two all-digit identifiers.
pub(crate) fn compare_pre(a: &[&str], b: &[&str], numeric: fn(&str, &str) -> Ordering) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let xn = x.bytes().all(|c| c.is_ascii_digit());
        let yn = y.bytes().all(|c| c.is_ascii_digit());
        let o = match (xn, yn) {
            (true, true) => numeric(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Two digit strings as JavaScript numbers compare them (exact below 2^53, rounded above).
fn js_numeric(a: &str, b: &str) -> Ordering {
    if a.len() <= 15 && b.len() <= 15 {
        return cmp_digits(a, b);
    }
    let (x, y) = (a.parse::<f64>(), b.parse::<f64>());
    match (x, y) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => cmp_digits(a, b),
    }
}

fn parse(s: &str) -> Option<Version<'_>> {
    // npm's `clean`: trim, drop leading `=`/`v`, check the length, trim again.
    let s = s.trim().trim_start_matches(['=', 'v']);
    if s.len() > MAX_LENGTH {
        return None;
    }
    let v = parse_strict(s.trim())?;
    if [v.major, v.minor, v.patch].iter().any(|n| cmp_digits(n, MAX_SAFE_INTEGER) == Ordering::Greater) {
        return None;
    }
    Some(v)
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    Some(
        cmp_digits(a.major, b.major)
            .then_with(|| cmp_digits(a.minor, b.minor))
            .then_with(|| cmp_digits(a.patch, b.patch))
            .then_with(|| compare_pre(&a.pre, &b.pre, js_numeric)),
    )
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater};

    #[test]
    fn semver_precedence() {
        let sorted = [
            "1.0.0-0",
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(a, b), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn clean_forms_and_build_metadata() {
        assert_eq!(compare("v1.2.3", "1.2.3"), Some(Equal));
        assert_eq!(compare("=v1.2.3", " 1.2.3 "), Some(Equal));
        assert_eq!(compare("1.2.3+build.5", "1.2.3+other"), Some(Equal));
        assert_eq!(compare("1.2.10", "1.2.9"), Some(Greater));
    }

    #[test]
    fn refuses_what_npm_refuses() {
        for v in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3_4",
            "9007199254740992.0.0",
            "1.2.3-ä",
        ] {
            assert_eq!(compare(v, "1.0.0"), None, "{v:?}");
        }
        let long = format!("1.2.3-{}", "a".repeat(260));
        assert_eq!(compare(&long, "1.0.0"), None);
    }
}
