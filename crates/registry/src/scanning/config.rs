//! Registry scanning configurations: the scan type and the rules that pick, by repository name,
//! how often each repository is scanned.

use berth_meta::ScanKind;
use berth_types::RepositoryName;
use berth_types::wildcard::{self, Syntax};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How often a rule scans the repositories it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Frequency {
    #[serde(rename = "SCAN_ON_PUSH")]
    ScanOnPush,
    #[serde(rename = "CONTINUOUS_SCAN")]
    ContinuousScan,
    #[serde(rename = "MANUAL")]
    Manual,
}

impl Frequency {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::ScanOnPush => "SCAN_ON_PUSH",
            Frequency::ContinuousScan => "CONTINUOUS_SCAN",
            Frequency::Manual => "MANUAL",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Frequency::Manual => 0,
            Frequency::ScanOnPush => 1,
            Frequency::ContinuousScan => 2,
        }
    }
}

/// One rule: a frequency and the wildcard filters (`*` only) of the repository names it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRule {
    pub frequency: Frequency,
    pub filters: Vec<String>,
}

/// A registry's scanning configuration. The default is basic scanning with no rules (each
/// repository's own scan-on-push setting decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanningConfiguration {
    pub kind: ScanKind,
    pub rules: Vec<ScanRule>,
}

impl Default for ScanningConfiguration {
    fn default() -> Self {
        ScanningConfiguration { kind: ScanKind::Basic, rules: Vec::new() }
    }
}

/// How one repository is scanned under its registry's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    pub kind: ScanKind,
    pub frequency: Frequency,
    pub scan_on_push: bool,
    /// The filters of the rules that matched the repository.
    pub applied_filters: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    scan_type: String,
    rules: Vec<ScanRule>,
}

/// Most rules a configuration holds, and filters a rule holds (ECR's limits).
const MAX_RULES: usize = 2;
const MAX_FILTERS: usize = 100;
const MAX_FILTER_LEN: usize = 255;

impl ScanningConfiguration {
    /// Checks ECR's rules: at most 2 rules of 1 to 100 filters each; filters of 1 to 255
    /// characters of lowercase letters, digits, `._-/` and `*`; SCAN_ON_PUSH and MANUAL for
    /// basic scanning, SCAN_ON_PUSH and CONTINUOUS_SCAN for enhanced.
    ///
    /// # Errors
    /// `InvalidParameter` naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::Validation(why));
        if self.rules.len() > MAX_RULES {
            return bad(format!("a scanning configuration holds at most {MAX_RULES} rules"));
        }
        for rule in &self.rules {
            let allowed = match self.kind {
                ScanKind::Basic => matches!(rule.frequency, Frequency::ScanOnPush | Frequency::Manual),
                ScanKind::Enhanced => matches!(rule.frequency, Frequency::ScanOnPush | Frequency::ContinuousScan),
            };
            if !allowed {
                return bad(format!(
                    "scan frequency {} is not allowed with scan type {}",
                    rule.frequency.as_str(),
                    self.kind.as_str()
                ));
            }
            if rule.filters.is_empty() || rule.filters.len() > MAX_FILTERS {
                return bad(format!("a rule holds 1 to {MAX_FILTERS} repository filters"));
            }
            for f in &rule.filters {
                let ok_chars = f.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'*')
                });
                if f.is_empty() || f.len() > MAX_FILTER_LEN || !ok_chars {
                    return bad(format!(
                        "repository filter '{}' must be 1 to {MAX_FILTER_LEN} characters of a-z, 0-9, '.', '_', '-', \
                         '/' and '*'",
                        f.chars().take(64).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }

    /// How `name` is scanned: the most frequent of the rules whose filters match it; under
    /// basic scanning the repository's own scan-on-push setting also scans it on push.
    #[must_use]
    pub fn for_repository(&self, name: &RepositoryName, repo_scan_on_push: bool) -> RepositoryScanning {
        let mut frequency = Frequency::Manual;
        let mut applied = Vec::new();
        for rule in &self.rules {
            let hits: Vec<&String> =
                rule.filters.iter().filter(|f| wildcard::matches(f, name.as_str(), Syntax::STAR)).collect();
            if hits.is_empty() {
                continue;
            }
            applied.extend(hits.into_iter().cloned());
            if rule.frequency.rank() > frequency.rank() {
                frequency = rule.frequency;
            }
        }
        if self.kind == ScanKind::Basic && repo_scan_on_push && frequency == Frequency::Manual {
            frequency = Frequency::ScanOnPush;
        }
        applied.dedup();
        RepositoryScanning {
            kind: self.kind,
            frequency,
            scan_on_push: frequency != Frequency::Manual,
            applied_filters: applied,
        }
    }

    pub(crate) fn encode(&self) -> String {
        let stored = Stored { scan_type: self.kind.as_str().to_owned(), rules: self.rules.clone() };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// A stored configuration; one that does not decode (written by a newer version) reads as
    /// the default, with a warning.
    pub(crate) fn decode(text: &str) -> ScanningConfiguration {
        match serde_json::from_str::<Stored>(text) {
            Ok(s) => {
                ScanningConfiguration { kind: ScanKind::parse(&s.scan_type).unwrap_or(ScanKind::Basic), rules: s.rules }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a stored scanning configuration does not decode; using the default");
                ScanningConfiguration::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    fn rule(frequency: Frequency, filters: &[&str]) -> ScanRule {
        ScanRule { frequency, filters: filters.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn the_most_frequent_matching_rule_applies() {
        let c = ScanningConfiguration {
            kind: ScanKind::Enhanced,
            rules: vec![rule(Frequency::ScanOnPush, &["*"]), rule(Frequency::ContinuousScan, &["prod-*"])],
        };
        c.validate().unwrap();
        let prod = c.for_repository(&name("prod-api"), false);
        assert_eq!(prod.frequency, Frequency::ContinuousScan);
        assert_eq!(prod.applied_filters, vec!["*".to_owned(), "prod-*".to_owned()]);
        assert_eq!(c.for_repository(&name("dev/api"), false).frequency, Frequency::ScanOnPush);
        let round = ScanningConfiguration::decode(&c.encode());
        assert_eq!(round, c);
    }

    #[test]
    fn basic_scanning_honours_the_repository_setting() {
        let c = ScanningConfiguration::default();
        assert_eq!(c.for_repository(&name("ab"), true).frequency, Frequency::ScanOnPush);
        assert_eq!(c.for_repository(&name("ab"), false).frequency, Frequency::Manual);
    }

    #[test]
    fn ecr_limits_are_checked() {
        let basic_continuous =
            ScanningConfiguration { kind: ScanKind::Basic, rules: vec![rule(Frequency::ContinuousScan, &["*"])] };
        assert!(basic_continuous.validate().is_err());
        let enhanced_manual =
            ScanningConfiguration { kind: ScanKind::Enhanced, rules: vec![rule(Frequency::Manual, &["*"])] };
        assert!(enhanced_manual.validate().is_err());
        for bad in ["", "UPPER", "a b", &"a".repeat(256)] {
            let c = ScanningConfiguration { kind: ScanKind::Basic, rules: vec![rule(Frequency::ScanOnPush, &[bad])] };
            assert!(c.validate().is_err(), "{bad}");
        }
        let too_many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
        let c = ScanningConfiguration {
            kind: ScanKind::Basic,
            rules: vec![ScanRule { frequency: Frequency::ScanOnPush, filters: too_many }],
        };
        assert!(c.validate().is_err());
        let three =
            ScanningConfiguration { kind: ScanKind::Basic, rules: vec![rule(Frequency::ScanOnPush, &["a"]); 3] };
        assert!(three.validate().is_err());
    }
}
