//! Go's module version order (`golang.org/x/mod/semver`), with or without the leading `v`
//! (OSV writes Go versions without it), and the Go toolchain's own names.
//!
//! - Shorthands `v1` and `v1.2` mean `v1.0.0` and `v1.2.0` (not with a pre-release).
//! - Build metadata, `+incompatible` included, does not order.
//! - Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`, `v1.2.4-0.2023…-abc`) are
//!   pre-releases and order as such, which is their design.
//! - Toolchain names: `go1.21.3`, `go1.21` (= `1.21.0`), `go1.21rc2` (= `1.21.0-rc.2`),
//!   `go1.9beta1`, and what a binary's build info may append after a space
//!   (`go1.22.1 X:boringcrypto`). OSV's `stdlib` ranges use the semver forms; the mapping is
//!   govulncheck's. (The standard library's `go/version` orders `go1.21` before `go1.21rc1`,
//!   as a language version; a binary never records that form for a release from 1.21 on.)
//!
//! Numbers have any length. Written here because Go's rules (shorthands, no `u64` limit)
//! are not those of the `semver` crate.

use std::cmp::Ordering;

use super::semver::{compare_pre, parse_strict};
use super::{cmp_digits, split_run};

/// `go1.21rc2` and friends as a semver string; `None` if it is not a toolchain name.
fn toolchain(s: &str) -> Option<String> {
    let rest = s.split(' ').next()?.strip_prefix("go")?;
    let (nums, tail) = split_run(rest, |c| c.is_ascii_digit() || c == b'.');
    let mut parts: Vec<&str> = nums.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    let core = parts.join(".");
    if tail.is_empty() {
        return Some(core);
    }
    let (word, n) = split_run(tail, |c| c.is_ascii_lowercase());
    if !matches!(word, "alpha" | "beta" | "rc") || n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!("{core}-{word}.{n}"))
}

/// Expands the `v1`/`v1.2` shorthands; `None` when not a Go semver.
fn canonical(s: &str) -> Option<String> {
    if let Some(t) = toolchain(s) {
        return Some(t);
    }
    let s = s.strip_prefix('v').unwrap_or(s);
    let (main, rest) = split_run(s, |c| c.is_ascii_digit() || c == b'.');
    let dots = main.bytes().filter(|&c| c == b'.').count();
    match dots {
        2 => Some(s.to_owned()),
        0 | 1 if rest.is_empty() => Some(format!("{main}{}", ".0".repeat(2 - dots))),
        _ => None,
    }
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (ca, cb) = (canonical(a)?, canonical(b)?);
    let (a, b) = (parse_strict(&ca)?, parse_strict(&cb)?);
    Some(
        cmp_digits(a.major, b.major)
            .then_with(|| cmp_digits(a.minor, b.minor))
            .then_with(|| cmp_digits(a.patch, b.patch))
            .then_with(|| compare_pre(&a.pre, &b.pre, cmp_digits)),
    )
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
    fn module_versions() {
        check(&[
            ("v1.2.3", "1.2.3", Equal),
            ("v1", "v1.0.0", Equal),
            ("v1.2", "1.2.0", Equal),
            ("v1.2.3", "v1.10.0", Less),
            ("v2.0.0+incompatible", "v2.0.0", Equal),
            ("v2.0.1+incompatible", "v2.0.0", Greater),
            ("v1.0.0-rc.1", "v1.0.0", Less),
            ("v1.0.0-alpha", "v1.0.0-alpha.1", Less),
            ("v1.0.0-beta.2", "v1.0.0-beta.11", Less),
            ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20200101000000-000000000000", Less),
            ("v0.0.0-20191109021931-daa7c04131f5", "v0.1.0", Less),
            ("v1.2.4-0.20230101000000-abcdefabcdef", "v1.2.3", Greater),
            ("v1.2.4-0.20230101000000-abcdefabcdef", "v1.2.4", Less),
            ("v1.2.4-pre.0.20230101000000-abcdefabcdef", "v1.2.4-pre", Greater),
            ("v1.99999999999999999999999.0", "v1.100000000000000000000000.0", Less),
        ]);
    }

    #[test]
    fn toolchain_versions() {
        check(&[
            ("go1.21.3", "1.21.3", Equal),
            ("go1.21", "1.21.0", Equal),
            ("go1.20", "1.20.14", Less),
            ("go1.21rc2", "1.21.0-rc.2", Equal),
            ("go1.21rc2", "go1.21.0", Less),
            ("go1.9beta1", "go1.9rc1", Less),
            ("go1.22.0", "go1.21.13", Greater),
            ("go1.22.1 X:boringcrypto", "1.22.1", Equal),
        ]);
    }

    #[test]
    fn refuses_what_is_not_go_semver() {
        for v in ["", "v", "1.2.3.4", "v01.2.3", "v1.2-pre", "v1.2.3-", "v1.2.3-01", "go", "go1.21x1", "latest"] {
            assert_eq!(compare(v, "1.0.0"), None, "{v:?}");
        }
    }
}
