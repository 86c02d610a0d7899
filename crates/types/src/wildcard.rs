//! The one wildcard matcher: `*` matches any run of characters (possibly empty) and, where the
//! syntax has it, `?` matches exactly one character. There is no escaping. A pattern must match
//! the whole text.
//!
//! Three syntaxes use it: IAM (`*` and `?`, action names compared without ASCII case), ECR
//! lifecycle `tagPatternList` and tag-mutability exclusion filters (`*` only, `?` is literal).
//!
//! [`Wildcard`] classifies a pattern once so that the common shapes (`*`, a literal, `prefix*`)
//! are matched without running the general algorithm; [`matches`] matches a pattern once without
//! compiling it. Neither allocates while matching.

/// Which characters are special, and how letters compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Syntax {
    /// Whether `?` matches exactly one character (otherwise it matches itself).
    pub question_mark: bool,
    /// Whether ASCII letters match regardless of case.
    pub fold_case: bool,
}

impl Syntax {
    /// `*` only, case-sensitive: lifecycle tag patterns, tag-mutability exclusion filters.
    pub const STAR: Syntax = Syntax { question_mark: false, fold_case: false };
    /// `*` and `?`, case-sensitive: IAM resources and `StringLike`/`ArnLike` conditions.
    pub const IAM: Syntax = Syntax { question_mark: true, fold_case: false };
    /// `*` and `?`, ASCII case folded: IAM actions (`ecr:batch*` matches `ecr:BatchGetImage`).
    pub const IAM_ACTION: Syntax = Syntax { question_mark: true, fold_case: true };

    fn is_wild(self, b: u8) -> bool {
        b == b'*' || (self.question_mark && b == b'?')
    }

    fn eq(self, p: &[u8], t: &[u8]) -> bool {
        if self.fold_case { p.eq_ignore_ascii_case(t) } else { p == t }
    }
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    kind: Kind,
    syntax: Syntax,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Only stars: matches everything.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// A literal followed by one trailing `*`.
    Prefix(Box<str>),
    /// Anything else.
    Glob(Box<str>),
}

impl Wildcard {
    /// Compiles `pattern` in `syntax`.
    #[must_use]
    pub fn new(pattern: &str, syntax: Syntax) -> Self {
        let wild = |s: &str| s.bytes().any(|b| syntax.is_wild(b));
        let kind = if !pattern.is_empty() && pattern.bytes().all(|b| b == b'*') {
            Kind::Any
        } else if !wild(pattern) {
            Kind::Exact(pattern.into())
        } else if let Some(head) = pattern.strip_suffix('*')
            && !wild(head)
        {
            Kind::Prefix(head.into())
        } else {
            Kind::Glob(pattern.into())
        };
        Wildcard { kind, syntax }
    }

    /// True when the pattern is only stars, so it matches every text.
    #[must_use]
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Whether `text` matches the whole pattern.
    #[must_use]
    pub fn matches(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(p) => self.syntax.eq(p.as_bytes(), t),
            Kind::Prefix(p) => {
                let p = p.as_bytes();
                t.len() >= p.len() && self.syntax.eq(p, &t[..p.len()])
            }
            Kind::Glob(p) => glob(p.as_bytes(), t, self.syntax),
        }
    }
}

/// Whether `text` matches the whole of `pattern` in `syntax`, without compiling the pattern.
#[must_use]
pub fn matches(pattern: &str, text: &str, syntax: Syntax) -> bool {
    glob(pattern.as_bytes(), text.as_bytes(), syntax)
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
/// O(|p|·|t|) in the worst case, no recursion and no allocation. `?` and the star's advance
/// consume one UTF-8 character, not one byte.
fn glob(p: &[u8], t: &[u8], syntax: Syntax) -> bool {
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
            if pc == b'?' && syntax.question_mark {
                pi += 1;
                ti = (ti + char_len(t[ti])).min(t.len());
                continue;
            }
            let tc = t[ti];
            if pc == tc || (syntax.fold_case && pc.eq_ignore_ascii_case(&tc)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn both(p: &str, syntax: Syntax, t: &str) -> bool {
        let compiled = Wildcard::new(p, syntax).matches(t);
        assert_eq!(compiled, matches(p, t, syntax), "compiled and one-shot disagree on {p:?} / {t:?}");
        compiled
    }

    #[test]
    fn iam_table() {
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
            ("ABC", true, "abc", true),
            ("ecr:Batch*", true, "ecr:BatchGetImage", true),
            ("ecr:Batch*", true, "ECR:batchdeleteimage", true),
            ("ecr:Batch*", true, "ecr:Batc", false),
            ("ecr:*Image", true, "ecr:PutImage", true),
            ("ecr:*Image", true, "ecr:PutImages", false),
            ("ecr:*Image*", true, "ecr:DescribeImageScanFindings", true),
            ("ECR:*image*", true, "ecr:DescribeImageScanFindings", true),
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
            let syntax = Syntax { question_mark: true, fold_case: fold };
            assert_eq!(both(p, syntax, t), want, "pattern {p:?} fold {fold} text {t:?}");
        }
    }

    #[test]
    fn star_only_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("prod", "prod", true),
            ("prod", "prod1", false),
            ("prod*", "prod-1.2", true),
            ("prod*", "xprod", false),
            ("*-rc*", "1.0-rc1", true),
            ("*-rc*", "1.0-beta", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("Prod*", "prod1", false),
            // `?` is a literal here.
            ("v?", "v1", false),
            ("v?", "v?", true),
            ("v?*", "v?-rc", true),
            ("*?", "a", false),
        ];
        for &(p, t, want) in cases {
            assert_eq!(both(p, Syntax::STAR, t), want, "pattern {p:?} text {t:?}");
        }
    }

    /// Obviously-correct recursive matcher over chars, for cross-checking.
    fn reference(p: &[char], t: &[char], question_mark: bool) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..], question_mark)),
            Some(('?', rest)) if question_mark => !t.is_empty() && reference(rest, &t[1..], question_mark),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..], question_mark),
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
    fn agrees_with_reference_exhaustively() {
        let patterns = strings(&['a', 'é', '*', '?'], 5);
        let texts = strings(&['a', 'é', 'b', '?'], 4);
        for syntax in [Syntax::IAM, Syntax::STAR] {
            for p in &patterns {
                let w = Wildcard::new(p, syntax);
                let pc: Vec<char> = p.chars().collect();
                for t in &texts {
                    let tc: Vec<char> = t.chars().collect();
                    let want = reference(&pc, &tc, syntax.question_mark);
                    assert_eq!(w.matches(t), want, "{syntax:?} pattern {p:?} text {t:?}");
                    assert_eq!(matches(p, t, syntax), want, "{syntax:?} pattern {p:?} text {t:?}");
                }
            }
        }
    }

    #[test]
    fn shapes() {
        assert!(Wildcard::new("***", Syntax::STAR).is_any());
        assert!(!Wildcard::new("", Syntax::STAR).is_any());
        assert!(!Wildcard::new("*?", Syntax::IAM).is_any());
        assert_eq!(Wildcard::new("a?", Syntax::STAR).kind, Kind::Exact("a?".into()));
        assert_eq!(Wildcard::new("a?*", Syntax::STAR).kind, Kind::Prefix("a?".into()));
        assert_eq!(Wildcard::new("a?*", Syntax::IAM).kind, Kind::Glob("a?*".into()));
    }
}
