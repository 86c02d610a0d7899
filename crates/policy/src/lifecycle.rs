//! ECR lifecycle policies: parsing, validation and evaluation over candidate images.
//!
//! A policy is parsed once ([`LifecyclePolicy::parse`]), which validates it the way ECR's
//! `PutLifecyclePolicy` and `StartLifecyclePolicyPreview` do, and is then evaluated as a pure
//! filter over a repository's images ([`LifecyclePolicy::evaluate`]). The lifecycle worker and
//! the preview call the same function, so a preview shows exactly what a run would expire.
//!
//! Evaluation follows the "Lifecycle policy evaluation rules" of the Amazon ECR user guide:
//! - rules apply from the lowest `rulePriority` to the highest;
//! - an image is expired by exactly one or zero rules;
//! - an image that matches the tagging requirements of a rule cannot be expired by a rule with a
//!   lower priority, but lower-priority rules still *identify* (count) it "as if it hadn't been
//!   expired";
//! - expiry is ordered by push time and always removes older images before newer ones.

mod eval;
mod parse;
mod pattern;
#[cfg(test)]
mod tests;

/// A lifecycle policy that ECR would refuse.
///
/// The message is the text ECR puts after `Invalid parameter at 'LifecyclePolicyText' failed to
/// satisfy constraint: ` in its `InvalidParameterException`; it always starts with
/// `Lifecycle policy validation failure: `. [`LifecycleError::invalid_parameter_message`] gives
/// the whole sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LifecycleError(pub String);

impl LifecycleError {
    /// The prefix ECR puts before every lifecycle validation message.
    pub const PREFIX: &'static str = "Lifecycle policy validation failure: ";

    pub(crate) fn new(detail: impl std::fmt::Display) -> Self {
        Self(format!("{}{detail}", Self::PREFIX))
    }

    /// The full `InvalidParameterException` message ECR returns for this failure.
    #[must_use]
    pub fn invalid_parameter_message(&self) -> String {
        format!("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{}'", self.0)
    }
}

/// A validated lifecycle policy. `rules` are sorted by ascending [`Rule::priority`], which is
/// the order they apply in.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclePolicy {
    pub rules: Vec<Rule>,
}

/// One rule. Its action is always `expire`: that is the only action Berth supports, so it is
/// not represented.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `rulePriority`: at least 1, unique within a policy.
    pub priority: u32,
    pub description: Option<String>,
    pub selection: Selection,
}

/// Which images a rule looks at (`tagStatus`, `tagPrefixList`, `tagPatternList`) and which of
/// those it expires (`countType`, `countUnit`, `countNumber`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub tag_status: TagStatus,
    /// `tagPrefixList`: every prefix must be the prefix of some tag of the image. Only with
    /// [`TagStatus::Tagged`]; a parsed policy never has both this and `tag_patterns`.
    pub tag_prefixes: Vec<String>,
    /// `tagPatternList`: every pattern (`*` matches any run of characters, at most four per
    /// pattern) must match some whole tag of the image. Only with [`TagStatus::Tagged`].
    pub tag_patterns: Vec<String>,
    pub count: Count,
}

/// `tagStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// `countType` with its `countNumber` (and, for the ages, `countUnit: "days"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Count {
    /// `imageCountMoreThan`: keep the newest N selected images, expire the rest.
    MoreThan(u32),
    /// `sinceImagePushed`: expire selected images pushed more than N days ago.
    SincePushedDays(u32),
    /// `sinceImagePulled`: expire selected images last pulled more than N days ago; an image
    /// never pulled counts from its push time.
    SincePulledDays(u32),
}

/// One image of the repository, as the evaluator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    /// Empty for an untagged image.
    pub tags: Vec<String>,
    /// Push time, milliseconds since the Unix epoch.
    pub pushed_at_ms: i64,
    /// Last recorded pull time, milliseconds since the Unix epoch; `None` if never pulled.
    pub last_pulled_ms: Option<i64>,
}

/// An image a run expires, and the rule that expires it (`appliedRulePriority` in a preview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub digest: String,
    pub rule_priority: u32,
}

/// One day, the only `countUnit` ECR accepts.
pub const DAY_MS: i64 = 86_400_000;

impl LifecyclePolicy {
    /// Parses and validates a lifecycle policy document (`lifecyclePolicyText`).
    ///
    /// Unknown keys are refused, like ECR's schema does. The length limit of the text (30,720
    /// characters) is the caller's to check.
    ///
    /// # Errors
    /// A [`LifecycleError`] carrying ECR's message when the text is not a valid policy, or uses
    /// a feature Berth does not implement (archive storage class, the `transition` action).
    pub fn parse(text: &str) -> Result<Self, LifecycleError> {
        parse::parse(text)
    }

    /// The images a run at `now_ms` expires, each once, with the rule that expired it. Pure: the
    /// worker and the preview call this same function.
    ///
    /// The result is ordered by rule priority, then from the oldest image to the newest. Images
    /// are ordered by push time; equal push times are broken by digest (the smaller digest counts
    /// as older), so the result does not depend on the order of `images`. If a digest appears
    /// more than once in `images`, only its first occurrence is considered.
    #[must_use]
    pub fn evaluate(&self, images: &[Candidate], now_ms: i64) -> Vec<Expiry> {
        eval::evaluate(&self.rules, images, now_ms)
    }
}

impl Selection {
    /// Whether an image with these tags meets this selection's tagging requirements (its
    /// `tagStatus` and tag lists), regardless of age or count.
    #[must_use]
    pub fn matches_tags(&self, tags: &[String]) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                !tags.is_empty()
                    && self.tag_prefixes.iter().all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                    && self.tag_patterns.iter().all(|p| tags.iter().any(|t| pattern::matches(p, t)))
            }
        }
    }
}
