//! A repository's tag mutability (`imageTagMutability` with its
//! `imageTagMutabilityExclusionFilters`), validated as ECR does.

use std::fmt;

use crate::wildcard::{self, Syntax};

/// Whether a tag, once it names an image, may be moved to another one.
///
/// The `_WITH_EXCLUSION` modes carry 1 to 5 wildcard filters (`*` only) of 1 to 128 characters
/// of `[0-9a-zA-Z._*-]`; a tag that matches any filter takes the opposite of the mode's rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum TagMutability {
    /// `MUTABLE`: every tag may move.
    #[default]
    Mutable,
    /// `IMMUTABLE`: no tag may move.
    Immutable,
    /// `IMMUTABLE_WITH_EXCLUSION`: no tag may move except those matching a filter.
    ImmutableWithExclusion(ExclusionFilters),
    /// `MUTABLE_WITH_EXCLUSION`: every tag may move except those matching a filter.
    MutableWithExclusion(ExclusionFilters),
}

/// The 1 to 5 validated exclusion filters of a `_WITH_EXCLUSION` mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExclusionFilters(Vec<String>);

impl ExclusionFilters {
    /// The filters, in the order given.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether `tag` matches one of the filters.
    #[must_use]
    pub fn matches(&self, tag: &str) -> bool {
        self.0.iter().any(|f| wildcard::matches(f, tag, Syntax::STAR))
    }
}

/// Why a mode and its filters are not a valid tag mutability; the message is meant for an
/// `InvalidParameterException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TagMutabilityError(pub String);

impl TagMutability {
    /// The most exclusion filters a `_WITH_EXCLUSION` mode takes.
    pub const MAX_FILTERS: usize = 5;
    /// The longest exclusion filter.
    pub const MAX_FILTER_LEN: usize = 128;

    /// The mode `mode` (`MUTABLE`, `IMMUTABLE`, `IMMUTABLE_WITH_EXCLUSION`,
    /// `MUTABLE_WITH_EXCLUSION`) with `filters`.
    ///
    /// # Errors
    /// An unknown mode; a `_WITH_EXCLUSION` mode without 1 to 5 filters; filters on another mode;
    /// a filter that is not 1 to 128 characters of `[0-9a-zA-Z._*-]`.
    pub fn parse(mode: &str, filters: Vec<String>) -> Result<Self, TagMutabilityError> {
        let invalid = |m: String| Err(TagMutabilityError(m));
        let with_exclusion = match mode {
            "MUTABLE" | "IMMUTABLE" => false,
            "IMMUTABLE_WITH_EXCLUSION" | "MUTABLE_WITH_EXCLUSION" => true,
            _ => {
                let shown: String = mode.chars().take(64).collect();
                return invalid(format!(
                    "imageTagMutability {shown:?} must be one of MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, \
                     MUTABLE_WITH_EXCLUSION"
                ));
            }
        };
        if with_exclusion && !(1..=Self::MAX_FILTERS).contains(&filters.len()) {
            return invalid(format!("{mode} needs 1 to 5 imageTagMutabilityExclusionFilters"));
        }
        if !with_exclusion && !filters.is_empty() {
            return invalid(format!(
                "imageTagMutabilityExclusionFilters apply only to the _WITH_EXCLUSION modes, not {mode}"
            ));
        }
        for f in &filters {
            let ok = (1..=Self::MAX_FILTER_LEN).contains(&f.len())
                && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
            if !ok {
                return invalid(format!("exclusion filter {f:?} must be 1 to 128 characters of [0-9a-zA-Z._*-]"));
            }
        }
        Ok(match mode {
            "MUTABLE" => TagMutability::Mutable,
            "IMMUTABLE" => TagMutability::Immutable,
            "IMMUTABLE_WITH_EXCLUSION" => TagMutability::ImmutableWithExclusion(ExclusionFilters(filters)),
            _ => TagMutability::MutableWithExclusion(ExclusionFilters(filters)),
        })
    }

    /// The mode as ECR spells it (`imageTagMutability`).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::ImmutableWithExclusion(_) => "IMMUTABLE_WITH_EXCLUSION",
            TagMutability::MutableWithExclusion(_) => "MUTABLE_WITH_EXCLUSION",
        }
    }

    /// The exclusion filters (`imageTagMutabilityExclusionFilters`); empty for the plain modes.
    #[must_use]
    pub fn exclusions(&self) -> &[String] {
        match self {
            TagMutability::Mutable | TagMutability::Immutable => &[],
            TagMutability::ImmutableWithExclusion(f) | TagMutability::MutableWithExclusion(f) => f.as_slice(),
        }
    }

    /// Whether `tag`, once it names an image, may not be moved to another one.
    #[must_use]
    pub fn is_immutable(&self, tag: &str) -> bool {
        match self {
            TagMutability::Mutable => false,
            TagMutability::Immutable => true,
            TagMutability::ImmutableWithExclusion(f) => !f.matches(tag),
            TagMutability::MutableWithExclusion(f) => f.matches(tag),
        }
    }
}

/// The mode alone, as ECR spells it.
impl fmt::Display for TagMutability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(filters: &[&str]) -> Vec<String> {
        filters.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn modes_round_trip() {
        for (mode, filters) in [
            ("MUTABLE", v(&[])),
            ("IMMUTABLE", v(&[])),
            ("IMMUTABLE_WITH_EXCLUSION", v(&["latest*"])),
            ("MUTABLE_WITH_EXCLUSION", v(&["a", "b", "c", "d", "e"])),
        ] {
            let m = TagMutability::parse(mode, filters.clone()).unwrap();
            assert_eq!((m.as_str(), m.exclusions()), (mode, filters.as_slice()));
            assert_eq!(m.to_string(), mode);
        }
        assert_eq!(TagMutability::default(), TagMutability::Mutable);
    }

    #[test]
    fn refuses_what_ecr_refuses() {
        let long = "x".repeat(129);
        let cases: &[(&str, Vec<String>, &str)] = &[
            ("mutable", v(&[]), "must be one of"),
            ("", v(&[]), "must be one of"),
            ("IMMUTABLE_WITH_EXCLUSION", v(&[]), "needs 1 to 5"),
            ("MUTABLE_WITH_EXCLUSION", v(&["a", "b", "c", "d", "e", "f"]), "needs 1 to 5"),
            ("MUTABLE", v(&["a"]), "apply only to the _WITH_EXCLUSION modes, not MUTABLE"),
            ("IMMUTABLE", v(&["a"]), "apply only to the _WITH_EXCLUSION modes, not IMMUTABLE"),
            ("IMMUTABLE_WITH_EXCLUSION", v(&[""]), "must be 1 to 128 characters"),
            ("IMMUTABLE_WITH_EXCLUSION", vec![long], "must be 1 to 128 characters"),
            ("IMMUTABLE_WITH_EXCLUSION", v(&["a?"]), "must be 1 to 128 characters"),
            ("IMMUTABLE_WITH_EXCLUSION", v(&["ok", "a/b"]), "must be 1 to 128 characters"),
            ("IMMUTABLE_WITH_EXCLUSION", v(&["é"]), "must be 1 to 128 characters"),
        ];
        for (mode, filters, why) in cases {
            let e = TagMutability::parse(mode, filters.clone()).unwrap_err();
            assert!(e.0.contains(why), "{mode} {filters:?}: {e}");
        }
        let edge = "x".repeat(128);
        assert!(TagMutability::parse("IMMUTABLE_WITH_EXCLUSION", vec![edge, "v1.*-rc_*".into()]).is_ok());
    }

    #[test]
    fn which_tags_are_immutable() {
        let m = |mode: &str| TagMutability::parse(mode, v(&["latest*", "*-rc*"])).unwrap();
        assert!(TagMutability::Immutable.is_immutable("latest"));
        assert!(!TagMutability::Mutable.is_immutable("v1"));
        let iwe = m("IMMUTABLE_WITH_EXCLUSION");
        assert!(!iwe.is_immutable("latest"));
        assert!(!iwe.is_immutable("1.0-rc2"));
        assert!(iwe.is_immutable("v1"));
        assert!(iwe.is_immutable("Latest"), "filters are case-sensitive");
        let mwe = m("MUTABLE_WITH_EXCLUSION");
        assert!(mwe.is_immutable("latest-2"));
        assert!(!mwe.is_immutable("v1"));
    }
}
