//! Python's version order: PEP 440 as `packaging.version.Version` (packaging 26) parses and
//! orders it.
//!
//! The grammar is `packaging`'s, read left to right without backtracking (its pattern's
//! quantifiers are possessive, so a left-to-right reading accepts exactly what it accepts):
//! optional surrounding whitespace and `v`, case-insensitive; `[N!]N(.N)*`, then optional
//! pre-release (`a`, `alpha`, `b`, `beta`, `c`, `rc`, `pre`, `preview`), post-release (`-N`,
//! `post`, `rev`, `r`) and dev-release parts, each with optional `.`/`-`/`_` separators
//! and number; then an optional `+local` label. Numbers compare as digit strings, so a
//! component of any length is fine (`pep440_rs` stores `u64` and would refuse some of these).

use std::cmp::Ordering;

use super::{cmp_digits, split_run};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pre {
    Alpha,
    Beta,
    Rc,
}

struct Version<'a> {
    epoch: &'a str,
    release: Vec<&'a str>,
    pre: Option<(Pre, &'a str)>,
    post: Option<&'a str>,
    dev: Option<&'a str>,
    local: Option<Vec<String>>,
}

/// Strips one of `words` (lowercase) from the front of `s`, ignoring case; the first that
/// matches wins, as in the pattern's alternation.
fn strip_word<'a, 'w>(s: &'a str, words: &[&'w str]) -> Option<(&'w str, &'a str)> {
    words.iter().find_map(|w| {
        let head = s.get(..w.len())?;
        head.eq_ignore_ascii_case(w).then(|| (*w, &s[w.len()..]))
    })
}

fn strip_sep(s: &str) -> &str {
    s.strip_prefix(['.', '_', '-']).unwrap_or(s)
}

fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// An optional `[sep]word[sep][N]` part; `None` inside when absent.
fn lettered<'a, 'w>(s: &'a str, words: &[&'w str]) -> (Option<(&'w str, &'a str)>, &'a str) {
    match strip_word(strip_sep(s), words) {
        Some((w, r)) => {
            let (n, r) = split_run(strip_sep(r), |c| c.is_ascii_digit());
            // A separator taken with no number after it stays taken (possessive).
            (Some((w, n)), r)
        }
        None => (None, s),
    }
}

fn parse(s: &str) -> Option<Version<'_>> {
    let s = s.trim_matches(is_py_space);
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let (mut epoch, mut rest) = ("0", s);
    let (digits, r) = split_run(s, |c| c.is_ascii_digit());
    if let Some(r) = r.strip_prefix('!')
        && !digits.is_empty()
    {
        epoch = digits;
        rest = r;
    }
    let mut release = Vec::new();
    let (n, r) = split_run(rest, |c| c.is_ascii_digit());
    if n.is_empty() {
        return None;
    }
    release.push(n);
    rest = r;
    while let Some(r) = rest.strip_prefix('.') {
        let (n, r) = split_run(r, |c| c.is_ascii_digit());
        if n.is_empty() {
            break;
        }
        release.push(n);
        rest = r;
    }
    let (pre, r) = lettered(rest, &["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]);
    let pre = pre.map(|(w, n)| {
        let kind = match w {
            "alpha" | "a" => Pre::Alpha,
            "beta" | "b" => Pre::Beta,
            _ => Pre::Rc,
        };
        (kind, n)
    });
    rest = r;
    let post;
    let implicit = rest.strip_prefix('-').map(|r| split_run(r, |c| c.is_ascii_digit()));
    match implicit {
        Some((n, r)) if !n.is_empty() => {
            post = Some(n);
            rest = r;
        }
        _ => {
            let (p, r) = lettered(rest, &["post", "rev", "r"]);
            post = p.map(|(_, n)| n);
            rest = r;
        }
    }
    let (dev, r) = lettered(rest, &["dev"]);
    let dev = dev.map(|(_, n)| n);
    rest = r;
    let mut local = None;
    if let Some(label) = rest.strip_prefix('+') {
        let parts: Vec<&str> = label.split(['.', '_', '-']).collect();
        if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_alphanumeric())) {
            return None;
        }
        local = Some(parts.iter().map(|p| p.to_ascii_lowercase()).collect());
        rest = "";
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Version { epoch, release, pre, post, dev, local })
}

/// The release without trailing zero components (`1.0.0` orders as `1`).
fn trimmed<'a>(release: &'a [&'a str]) -> &'a [&'a str] {
    let keep = release.iter().rposition(|n| n.bytes().any(|c| c != b'0')).map_or(0, |i| i + 1);
    &release[..keep]
}

fn compare_release(a: &[&str], b: &[&str]) -> Ordering {
    let (a, b) = (trimmed(a), trimmed(b));
    for (x, y) in a.iter().zip(b) {
        let o = cmp_digits(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// The pre-release rank: dev-only releases first, then a, b, rc, then none.
fn pre_key<'a>(v: &Version<'a>) -> (u8, &'a str) {
    match v.pre {
        Some((kind, n)) => (kind as u8 + 1, n),
        None if v.post.is_none() && v.dev.is_some() => (0, ""),
        None => (4, ""),
    }
}

fn compare_local(a: Option<&Vec<String>>, b: Option<&Vec<String>>) -> Ordering {
    let (a, b) = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(a), Some(b)) => (a, b),
    };
    for (x, y) in a.iter().zip(b) {
        let xn = x.bytes().all(|c| c.is_ascii_digit());
        let yn = y.bytes().all(|c| c.is_ascii_digit());
        // Numbers sort after strings.
        let o = match (xn, yn) {
            (true, true) => cmp_digits(x, y),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn option_digits(a: Option<&str>, b: Option<&str>, none_first: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(x), Some(y)) => cmp_digits(x, y),
        (None, Some(_)) if none_first => Ordering::Less,
        (Some(_), None) if none_first => Ordering::Greater,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    let (pa, pb) = (pre_key(&a), pre_key(&b));
    Some(
        cmp_digits(a.epoch, b.epoch)
            .then_with(|| compare_release(&a.release, &b.release))
            .then_with(|| pa.0.cmp(&pb.0))
            .then_with(|| cmp_digits(pa.1, pb.1))
            // No post-release sorts first; no dev-release sorts last.
            .then_with(|| option_digits(a.post, b.post, true))
            .then_with(|| option_digits(a.dev, b.dev, false))
            .then_with(|| compare_local(a.local.as_ref(), b.local.as_ref())),
    )
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn pep440_order() {
        let sorted = [
            "1.0.dev0",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2.post1.dev1",
            "1.0a2.post1",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+abc",
            "1.0+abc.5",
            "1.0+5",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.0.1",
            "1!0.1",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(a, b), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn normalisation() {
        for (a, b) in [
            ("1.0", "1"),
            ("1.0.0", "1"),
            ("v1.0", "1.0"),
            (" 1.0\n", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-preview.2", "1.0rc2"),
            ("1.0c1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev", "1.0.post0"),
            ("1.0_dev", "1.0.dev0"),
            ("1.0+ABC.01", "1.0+abc.1"),
            ("0!1.0", "1.0"),
            ("1.0a-1", "1.0a1"),
        ] {
            assert_eq!(compare(a, b), Some(Equal), "{a} vs {b}");
        }
        assert_eq!(compare("1.0+abc", "1.0+abc_1"), Some(Less));
        assert_eq!(compare("10", "9"), Some(Greater));
    }

    #[test]
    fn refuses_what_packaging_refuses() {
        for v in ["", "a", "1.", "1..0", "1.0+", "1.0+a..b", "1.0-", "1.0 a", "1.0ab", "!1", "1!", "1.0+a+b"] {
            assert_eq!(compare(v, "1"), None, "{v:?}");
        }
    }
}
