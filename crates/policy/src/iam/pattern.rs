//! Wildcard patterns as IAM uses them: `*` matches any run of characters (possibly empty) and `?`
//! matches exactly one character. There is no escaping. Patterns are classified once at parse time
//! so that the common shapes (`*`, a literal, `prefix*`) are matched without running the general
//! algorithm, and matching never allocates.

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    kind: Kind,
    /// ASCII case-insensitive matching; the stored pattern is then lowercased.
    fold: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `*`: matches everything.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// A literal followed by one trailing `*`.
    Prefix(Box<str>),
    /// Anything else.
    Glob(Box<str>),
}

impl Wildcard {
    /// Compiles `pattern`. With `fold`, matching ignores ASCII case (IAM actions).
    pub(crate) fn new(pattern: &str, fold: bool) -> Self {
        let stored: Box<str> = if fold { pattern.to_ascii_lowercase().into() } else { pattern.into() };
        let kind = if stored.bytes().all(|b| b == b'*') && !stored.is_empty() {
            Kind::Any
        } else if !stored.contains(['*', '?']) {
            Kind::Exact(stored)
        } else if let Some(head) = stored.strip_suffix('*')
            && !head.contains(['*', '?'])
        {
            Kind::Prefix(head.into())
        } else {
            Kind::Glob(stored)
        };
        Self { kind, fold }
    }

    /// True when the pattern is exactly `*` (or only stars).
    pub(crate) fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(p) => {
                if self.fold {
                    p.as_bytes().eq_ignore_ascii_case(t)
                } else {
                    p.as_bytes() == t
                }
            }
            Kind::Prefix(p) => {
                let p = p.as_bytes();
                t.len() >= p.len() && if self.fold { p.eq_ignore_ascii_case(&t[..p.len()]) } else { p == &t[..p.len()] }
            }
            Kind::Glob(p) => glob(p.as_bytes(), t, self.fold),
        }
    }
}

/// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Iterative wildcard matching with single-star backtracking: linear in the common case and
/// O(|p|·|t|) in the worst case, no recursion and no allocation. `?` consumes one UTF-8
/// character, not one byte. With `fold`, `p` must already be ASCII-lowercase.
fn glob(p: &[u8], t: &[u8], fold: bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position in the pattern just after the last `*`, and the text position it is tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if let Some(&pc) = p.get(pi) {
            if pc == b'*' {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            if pc == b'?' {
                pi += 1;
                ti = (ti + char_len(t[ti])).min(t.len());
                continue;
            }
            let tc = if fold { t[ti].to_ascii_lowercase() } else { t[ti] };
            if pc == tc {
                pi += 1;
                ti += 1;
                continue;
            }
        }
        // Mismatch: let the last star swallow one more character, or fail.
        let Some((sp, st)) = star else { return false };
        let next = (st + char_len(t[st])).min(t.len());
        star = Some((sp, next));
        pi = sp;
        ti = next;
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A pattern for the `Arn*` condition operators. The colon-separated ARN components (at most six;
/// the last one, the resource, may itself contain colons) are matched one by one, so `*` never
/// spans a colon between components, and the value must have as many components as the pattern.
/// A pattern without any colon (such as `*`) is matched against the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    Parts(Box<[Wildcard]>),
    Whole(Wildcard),
}

impl ArnPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        if pattern.contains(':') {
            Self::Parts(pattern.splitn(6, ':').map(|p| Wildcard::new(p, false)).collect())
        } else {
            Self::Whole(Wildcard::new(pattern, false))
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Self::Whole(w) => w.matches(value),
            Self::Parts(parts) => {
                let mut n = 0;
                for comp in value.splitn(6, ':') {
                    match parts.get(n) {
                        Some(pat) if pat.matches(comp) => n += 1,
                        _ => return false,
                    }
                }
                n == parts.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_table() {
        // (pattern, fold, text, expected)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("*", false, "", true),
            ("*", false, "anything", true),
            ("**", false, "x", true),
            ("", false, "", true),
            ("", false, "a", false),
            ("abc", false, "abc", true),
            ("abc", false, "ABC", false),
            ("abc", true, "ABC", true),
            ("ecr:Batch*", true, "ecr:BatchGetImage", true),
            ("ecr:Batch*", true, "ECR:batchdeleteimage", true),
            ("ecr:Batch*", true, "ecr:Batc", false),
            ("ecr:*Image", true, "ecr:PutImage", true),
            ("ecr:*Image", true, "ecr:PutImages", false),
            ("ecr:*Image*", true, "ecr:DescribeImageScanFindings", true),
            ("ecr:?etImage", true, "ecr:GetImage", true),
            ("ecr:?etImage", true, "ecr:etImage", false),
            ("a?c", false, "abc", true),
            ("a?c", false, "ac", false),
            ("a?c", false, "aéc", true),
            ("a*b*c", false, "aXXbYYc", true),
            ("a*b*c", false, "aXXbYY", false),
            ("a*a*a*a*b", false, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("*é", false, "café", true),
            ("??", false, "é", false),
            ("?", false, "é", true),
            (
                "arn:aws:ecr:*:111122223333:repository/team/*",
                false,
                "arn:aws:ecr:us-east-1:111122223333:repository/team/app",
                true,
            ),
            (
                "arn:aws:ecr:*:111122223333:repository/team/*",
                false,
                "arn:aws:ecr:us-east-1:111122223333:repository/other/app",
                false,
            ),
            (
                "arn:aws:ecr:*:111122223333:repository/Team/*",
                false,
                "arn:aws:ecr:us-east-1:111122223333:repository/team/app",
                false,
            ),
        ];
        for &(p, fold, t, want) in cases {
            assert_eq!(Wildcard::new(p, fold).matches(t), want, "pattern {p:?} fold {fold} text {t:?}");
        }
    }

    /// Obviously-correct recursive matcher over chars, for cross-checking.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    /// All strings of length 0..=max over `alphabet`.
    fn strings(alphabet: &[char], max: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..max {
            layer = layer.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
            out.extend(layer.iter().cloned());
        }
        out
    }

    #[test]
    fn glob_agrees_with_reference_exhaustively() {
        let patterns = strings(&['a', 'é', '*', '?'], 5);
        let texts = strings(&['a', 'é', 'b'], 5);
        for p in &patterns {
            let w = Wildcard::new(p, false);
            let pc: Vec<char> = p.chars().collect();
            for t in &texts {
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(w.matches(t), reference(&pc, &tc), "pattern {p:?} text {t:?}");
            }
        }
    }

    #[test]
    fn arn_pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("arn:aws:iam::*:role/ci", "arn:aws:iam::111122223333:role/ci", true),
            ("arn:aws:iam::*:role/ci", "arn:aws:iam::111122223333:user/ci", false),
            // `*` in one component does not span into the next.
            ("arn:aws:iam::*", "arn:aws:iam::111122223333:role/ci", false),
            ("arn:aws:*:*:*:*", "arn:aws:ecr:us-east-1:1:repository/x", true),
            ("arn:aws:ecr:*:*:repository/a:b", "arn:aws:ecr:r:1:repository/a:b", true),
            ("arn:aws:ecr:*:*:*", "not-an-arn", false),
            ("arn:aws:ecr:*:*:*", "arn:aws:ecr:r:1", false),
            ("arn:aws:ecr:*:*:*:*", "arn:aws:ecr:r:1", false),
            ("arn:*", "arn:aws:ecr:r:1:repository/x", false),
            ("arn*", "arn:aws:ecr:r:1:repository/x", true),
        ];
        for &(p, v, want) in cases {
            assert_eq!(ArnPattern::new(p).matches(v), want, "pattern {p:?} value {v:?}");
        }
    }
}
