//! `tagPatternList` wildcards: `*` matches any run of characters (including none); every other
//! character matches itself. A pattern must match the whole tag. The matcher is
//! `berth_types::wildcard` in its `*`-only syntax.

use berth_types::wildcard::{self, Syntax};

/// The most wildcards ECR allows in one pattern.
pub(super) const MAX_WILDCARDS: usize = 4;

/// Whether `pattern` matches the whole of `tag`.
pub(super) fn matches(pattern: &str, tag: &str) -> bool {
    wildcard::matches(pattern, tag, Syntax::STAR)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcard_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("prod", "prod", true),
            ("prod", "prod1", false),
            ("prod", "pro", false),
            ("prod*", "prod", true),
            ("prod*", "prod-1.2", true),
            ("prod*", "xprod", false),
            ("*-rc*", "1.0-rc1", true),
            ("*-rc*", "-rc", true),
            ("*-rc*", "1.0-beta", false),
            ("*", "anything", true),
            ("**", "a", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*test*1*2*3", "my-test-1-2-3", true),
            ("test*1*2*3*", "test123", true),
            ("test*1*2*3*", "tes123", false),
            ("*ab", "aab", true),
            ("*ab", "abab", true),
            ("*ab", "aba", false),
            ("ab*ab", "abab", true),
            ("ab*ab", "aba", false),
            ("Prod*", "prod1", false),
            ("v1.*", "v1.2", true),
            ("v1.*", "v1x2", false),
        ];
        for &(pattern, tag, want) in cases {
            assert_eq!(matches(pattern, tag), want, "pattern {pattern:?} tag {tag:?}");
        }
    }
}
