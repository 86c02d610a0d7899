//! Alpine's version order (apk), from the rules of its version format:
//! `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`.
//!
//! Two versions compare part by part, in that order of kinds:
//! - The first number compares as a number. A later number compares as text (byte by byte,
//!   then the shorter first) when either side starts with `0`, else as a number: so
//!   `1.01` < `1.1` and `1.05` < `1.5`, as decimal fractions would.
//! - The letter compares alphabetically; suffixes by kind, `_alpha` < `_beta` < `_pre` <
//!   `_rc` < `_cvs` < `_svn` < `_git` < `_hg` < `_p`, then by their numbers; the commit hash as
//!   text; the revision as a number.
//! - Where one version has a part the other lacks (or has a later kind of part there), the one
//!   with the part is newer (`1.2.1` > `1.2a` > `1.2`, `1.2-r0` > `1.2`, `1.2_p1` > `1.2`),
//!   except that a pre-release suffix (`_alpha`, `_beta`, `_pre`, `_rc`) makes it older
//!   (`1.2_rc1` < `1.2`).
//!
//! No crate implements this order, and apk-tools is not packaged for Debian, so the tests are
//! tables written from these rules. Numbers of any length compare without overflow. Anything
//! outside the grammar is `None`.

use std::cmp::Ordering;

use super::{cmp_digits, split_run};

const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Suffixes before this index are pre-releases.
const PRE_RELEASES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A number; `initial` for the first.
    Number {
        digits: &'a str,
        initial: bool,
    },
    Letter(u8),
    /// A suffix, by its index in [`SUFFIXES`].
    Suffix(usize),
    SuffixNumber(&'a str),
    Hash(&'a str),
    Revision(&'a str),
    End,
}

impl Token<'_> {
    /// Kinds in the order the format writes them; at a difference of kinds, the lower kind is
    /// the newer version (it has more before the end).
    fn kind(self) -> u8 {
        match self {
            Token::Number { .. } => 1,
            Token::Letter(_) => 2,
            Token::Suffix(_) => 3,
            Token::SuffixNumber(_) => 4,
            Token::Hash(_) => 5,
            Token::Revision(_) => 6,
            Token::End => 7,
        }
    }

    fn is_pre_release(self) -> bool {
        matches!(self, Token::Suffix(i) if i < PRE_RELEASES)
    }
}

fn tokens(s: &str) -> Option<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let (first, mut rest) = split_run(s, |c| c.is_ascii_digit());
    if first.is_empty() {
        return None;
    }
    out.push(Token::Number { digits: first, initial: true });
    while let Some(r) = rest.strip_prefix('.') {
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if n.is_empty() {
            return None;
        }
        out.push(Token::Number { digits: n, initial: false });
        rest = r;
    }
    if let Some(&c) = rest.as_bytes().first()
        && c.is_ascii_lowercase()
    {
        out.push(Token::Letter(c));
        rest = &rest[1..];
    }
    while let Some(r) = rest.strip_prefix('_') {
        let (name, r) = split_run(r, |c| c.is_ascii_lowercase());
        out.push(Token::Suffix(SUFFIXES.iter().position(|s| *s == name)?));
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if !n.is_empty() {
            out.push(Token::SuffixNumber(n));
        }
        rest = r;
    }
    if let Some(r) = rest.strip_prefix('~') {
        let (hash, r) = split_run(r, |c| c.is_ascii_hexdigit());
        if hash.is_empty() {
            return None;
        }
        out.push(Token::Hash(hash));
        rest = r;
    }
    if let Some(r) = rest.strip_prefix("-r") {
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if n.is_empty() {
            return None;
        }
        out.push(Token::Revision(n));
        rest = r;
    }
    if !rest.is_empty() {
        return None;
    }
    out.push(Token::End);
    Some(out)
}

/// Two parts of the same kind.
fn compare_same(a: Token<'_>, b: Token<'_>) -> Ordering {
    match (a, b) {
        (Token::Number { digits: x, initial: xi }, Token::Number { digits: y, .. }) => {
            if !xi && (x.starts_with('0') || y.starts_with('0')) { x.cmp(y) } else { cmp_digits(x, y) }
        }
        (Token::Letter(x), Token::Letter(y)) => x.cmp(&y),
        (Token::Suffix(x), Token::Suffix(y)) => x.cmp(&y),
        (Token::SuffixNumber(x), Token::SuffixNumber(y)) | (Token::Revision(x), Token::Revision(y)) => cmp_digits(x, y),
        (Token::Hash(x), Token::Hash(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (ta, tb) = (tokens(a)?, tokens(b)?);
    for (&x, &y) in ta.iter().zip(&tb) {
        if x.kind() != y.kind() {
            return Some(if x.is_pre_release() {
                Ordering::Less
            } else if y.is_pre_release() {
                Ordering::Greater
            } else {
                y.kind().cmp(&x.kind())
            });
        }
        let o = compare_same(x, y);
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    // Both ended at the same point.
    Some(Ordering::Equal)
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
            ("1.01", "1.1", Less),
            ("1.001", "1.01", Less),
            ("1.1", "1.10", Less),
            ("1.05", "1.5", Less),
            ("1.5", "1.50", Less),
            ("1.0", "1.00", Less),
            ("1.01", "1.010", Less),
            ("1.09", "1.1", Less),
            ("1.2.99999999999999999999999", "1.2.100000000000000000000000", Less),
        ]);
    }

    #[test]
    fn letters() {
        check(&[
            ("1.2a", "1.2", Greater),
            ("1.2b", "1.2a", Greater),
            ("1.2a", "1.2.1", Less),
            ("1.2z", "1.3", Less),
            ("1.2a_rc1", "1.2", Greater),
        ]);
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
            ("1.0_rc", "1.0_rc0", Less),
            ("1.0_p1", "1.0_p1_p1", Less),
            ("1.0_p1", "1.0_p1_rc1", Greater),
            ("1.0_alpha_beta", "1.0_alpha", Less),
            ("1.0_rc1", "1.0.1_alpha", Less),
            ("1.0_p1", "1.0a", Less),
            ("1.0_rc1", "1.0-r1", Less),
            ("1.0_git20240101", "1.0_git20231231", Greater),
        ]);
    }

    #[test]
    fn hashes_and_revisions() {
        check(&[
            ("1.0-r1", "1.0-r2", Less),
            ("1.0-r10", "1.0-r9", Greater),
            ("1.0", "1.0-r0", Less),
            ("1.0-r5", "1.0.1", Less),
            ("1.0_p1-r0", "1.0-r9", Greater),
            ("3.1.4-r5", "3.1.4-r5", Equal),
            ("1.0~abc", "1.0", Greater),
            ("1.0~abc", "1.0~abd", Less),
            ("1.0~abc-r1", "1.0-r2", Greater),
            ("1.0_rc1~abc", "1.0", Less),
        ]);
    }

    #[test]
    fn refuses_what_is_not_an_apk_version() {
        for v in [
            "",
            "a1",
            "1.",
            ".1",
            "1..2",
            "1.0-r",
            "1.0-1",
            "1.0_foo",
            "1.0A",
            "1.0ab",
            "1.0-r1-r2",
            "1.0 ",
            "1.0a.1",
            "1.0_rc1.2",
            "1.0~",
            "1.0~xyz",
            "1.0-r1~abc",
            "v1.0",
        ] {
            assert_eq!(compare(v, "1"), None, "{v:?}");
        }
    }
}
