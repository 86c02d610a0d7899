//! Wildcard patterns as IAM uses them: `*` matches any run of characters (possibly empty) and `?`
//! matches exactly one character, with no escaping (the matcher is `berth_types::wildcard`), and
//! the component-wise patterns of the `Arn*` condition operators.

use berth_types::wildcard::Syntax;
pub(crate) use berth_types::wildcard::Wildcard;

/// Compiles an IAM wildcard (`*` and `?`); with `fold`, matching ignores ASCII case (actions).
pub(crate) fn wildcard(pattern: &str, fold: bool) -> Wildcard {
    Wildcard::new(pattern, if fold { Syntax::IAM_ACTION } else { Syntax::IAM })
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
            Self::Parts(pattern.splitn(6, ':').map(|p| wildcard(p, false)).collect())
        } else {
            Self::Whole(wildcard(pattern, false))
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

    /// The matcher itself is tested in `berth_types::wildcard`; here, that IAM patterns get its
    /// IAM syntax: `?` is special, and `fold` (actions) ignores ASCII case.
    #[test]
    fn wildcard_uses_the_iam_syntax() {
        let cases: &[(&str, bool, &str, bool)] = &[
            ("abc", false, "ABC", false),
            ("abc", true, "ABC", true),
            ("ecr:Batch*", true, "ECR:batchdeleteimage", true),
            ("a?c", false, "abc", true),
            ("a?c", false, "a?c", true),
            ("a?c", false, "ac", false),
        ];
        for &(p, fold, t, want) in cases {
            assert_eq!(wildcard(p, fold).matches(t), want, "pattern {p:?} fold {fold} text {t:?}");
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
