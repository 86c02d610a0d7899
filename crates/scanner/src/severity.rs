//! A finding's severity: the distribution's own rating first, else a CVSS base score.
//!
//! Order: an Ubuntu rating (`severity[]` of type `Ubuntu`), then the advisory's vendor rating
//! (Debian's urgency, or `database_specific.severity` such as Red Hat's words); then the
//! first CVSS v3 vector, else v4, else v2, scored from the vector by the `cvss` crate
//! (never from a number the record carries); else UNDEFINED.
//!
//! Words: `unimportant`/`negligible` → INFORMATIONAL, `low`, `medium`/`moderate`,
//! `high`/`important`, `critical`; decorations are ignored (`low**`, `medium (…)`); anything
//! else (`not yet assigned`, `unknown`, `untriaged`, `end-of-life`) is no rating and falls
//! through. Scores: 0.0 → INFORMATIONAL (CVSS calls it "None": nothing to fix urgently, but
//! still reported), < 4 LOW, < 7 MEDIUM, < 9 HIGH, else CRITICAL.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::advisory::Advisory;

/// ECR's `FindingSeverity`. Deliberately not `Ord`: UNDEFINED is no rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
    Undefined,
}

impl Severity {
    /// ECR's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
            Severity::Undefined => "UNDEFINED",
        }
    }

    /// The severity of a CVSS base score.
    #[must_use]
    pub fn from_score(score: f64) -> Severity {
        if score <= 0.0 {
            Severity::Informational
        } else if score < 4.0 {
            Severity::Low
        } else if score < 7.0 {
            Severity::Medium
        } else if score < 9.0 {
            Severity::High
        } else {
            Severity::Critical
        }
    }

    /// A distribution's word for a severity; `None` when it is no rating.
    #[must_use]
    pub fn from_vendor_word(word: &str) -> Option<Severity> {
        let word = word.split(" (").next().unwrap_or_default();
        let word = word.trim().trim_end_matches('*').trim().to_ascii_lowercase();
        Some(match word.as_str() {
            "unimportant" | "negligible" => Severity::Informational,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// A CVSS vector with its base score, as ECR reports them (`cvss[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    /// `2.0`, `3.0`, `3.1` or `4.0`.
    pub version: String,
    pub vector: String,
    pub base_score: f64,
}

/// Parses and scores one vector; `None` when it is not one the `cvss` crate reads.
#[must_use]
pub fn score_vector(vector: &str) -> Option<Cvss> {
    let vector = vector.trim();
    let parsed = cvss::Cvss::from_str(vector).ok()?;
    let (version, base_score) = match &parsed {
        cvss::Cvss::CvssV20(v) => ("2.0", v.score().value()),
        cvss::Cvss::CvssV30(v) => ("3.0", v.base_score().value()),
        cvss::Cvss::CvssV31(v) => ("3.1", v.base_score().value()),
        cvss::Cvss::CvssV40(v) => ("4.0", v.score().value()),
        _ => return None,
    };
    // The crate accepts vectors that leave base metrics out; a score from those would be
    // made up.
    let required: &[&str] = match version {
        "2.0" => &["AV", "AC", "Au", "C", "I", "A"],
        "4.0" => &["AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"],
        _ => &["AV", "AC", "PR", "UI", "S", "C", "I", "A"],
    };
    let present: Vec<&str> = vector.split('/').filter_map(|m| m.split_once(':').map(|(k, _)| k)).collect();
    if !required.iter().all(|r| present.contains(r)) {
        return None;
    }
    base_score.is_finite().then(|| Cvss { version: version.to_owned(), vector: vector.to_owned(), base_score })
}

/// The advisory's severity, and every CVSS vector it carries that parses (in its order).
#[must_use]
pub fn rate(a: &Advisory) -> (Severity, Vec<Cvss>) {
    let cvss: Vec<Cvss> =
        a.severity.iter().filter(|s| s.kind.starts_with("CVSS")).filter_map(|s| score_vector(&s.score)).collect();
    let vendor = a
        .severity
        .iter()
        .filter(|s| s.kind == "Ubuntu")
        .map(|s| s.score.as_str())
        .chain(a.vendor_severity.as_deref())
        .find_map(Severity::from_vendor_word);
    if let Some(s) = vendor {
        return (s, cvss);
    }
    let by_major = |major: char| cvss.iter().find(|c| c.version.starts_with(major));
    let severity = by_major('3')
        .or_else(|| by_major('4'))
        .or_else(|| by_major('2'))
        .map_or(Severity::Undefined, |c| Severity::from_score(c.base_score));
    (severity, cvss)
}

#[cfg(test)]
mod tests {
    use super::{Severity, rate, score_vector};
    use crate::advisory::{Advisory, Affected, SeverityScore};

    fn advisory(severity: &[(&str, &str)], vendor: Option<&str>) -> Advisory {
        Advisory {
            id: "TEST-1".into(),
            aliases: Vec::new(),
            upstream: Vec::new(),
            summary: None,
            details: None,
            published: None,
            modified: "2024-01-01T00:00:00Z".into(),
            severity: severity.iter().map(|(k, s)| SeverityScore { kind: (*k).into(), score: (*s).into() }).collect(),
            references: Vec::new(),
            ecosystem: "Debian:12".into(),
            package: "curl".into(),
            affected: Affected::default(),
            vendor_severity: vendor.map(str::to_owned),
        }
    }

    const V31_CRIT: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    const V30_MED: &str = "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N";
    const V2_HIGH: &str = "AV:N/AC:L/Au:N/C:P/I:P/A:P";
    const V4: &str = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";

    #[test]
    fn known_scores() {
        for (vector, version, score) in [
            (V31_CRIT, "3.1", 9.8),
            (V30_MED, "3.0", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", "3.1", 5.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0.0),
            (V2_HIGH, "2.0", 7.5),
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", "2.0", 4.3),
            (V4, "4.0", 9.3),
        ] {
            let c = score_vector(vector).expect(vector);
            assert_eq!(c.version, version, "{vector}");
            assert!((c.base_score - score).abs() < 1e-9, "{vector}: {}", c.base_score);
        }
        assert!(score_vector("CVSS:3.1/AV:N").is_none());
        assert!(score_vector("nonsense").is_none());
    }

    #[test]
    fn score_bands() {
        for (score, s) in [
            (0.0, Severity::Informational),
            (0.1, Severity::Low),
            (3.9, Severity::Low),
            (4.0, Severity::Medium),
            (6.9, Severity::Medium),
            (7.0, Severity::High),
            (8.9, Severity::High),
            (9.0, Severity::Critical),
            (10.0, Severity::Critical),
        ] {
            assert_eq!(Severity::from_score(score), s, "{score}");
        }
    }

    #[test]
    fn vendor_rating_wins() {
        let a = advisory(&[("CVSS_V3", V31_CRIT)], Some("unimportant"));
        let (s, cvss) = rate(&a);
        assert_eq!(s, Severity::Informational);
        assert_eq!(cvss.len(), 1);
        assert_eq!(rate(&advisory(&[("CVSS_V3", V31_CRIT)], Some("low**"))).0, Severity::Low);
        assert_eq!(rate(&advisory(&[], Some("medium (affects only x)"))).0, Severity::Medium);
        assert_eq!(rate(&advisory(&[], Some("Important"))).0, Severity::High);
        let ubuntu = advisory(&[("CVSS_V3", V31_CRIT), ("Ubuntu", "negligible")], None);
        assert_eq!(rate(&ubuntu).0, Severity::Informational);
        let ubuntu = advisory(&[("Ubuntu", "critical")], Some("low"));
        assert_eq!(rate(&ubuntu).0, Severity::Critical, "Ubuntu's own word first");
    }

    #[test]
    fn unassigned_vendor_rating_falls_through_to_cvss() {
        let a = advisory(&[("CVSS_V3", V31_CRIT)], Some("not yet assigned"));
        assert_eq!(rate(&a).0, Severity::Critical);
        let a = advisory(&[("Ubuntu", "untriaged"), ("CVSS_V2", V2_HIGH)], None);
        assert_eq!(rate(&a).0, Severity::High);
    }

    #[test]
    fn cvss_v3_then_v4_then_v2() {
        let a = advisory(&[("CVSS_V2", V2_HIGH), ("CVSS_V4", V4), ("CVSS_V3", V30_MED)], None);
        let (s, cvss) = rate(&a);
        assert_eq!(s, Severity::Medium);
        assert_eq!(cvss.iter().map(|c| c.version.as_str()).collect::<Vec<_>>(), ["2.0", "4.0", "3.0"]);
        assert_eq!(rate(&advisory(&[("CVSS_V2", V2_HIGH), ("CVSS_V4", V4)], None)).0, Severity::Critical);
        assert_eq!(rate(&advisory(&[("CVSS_V2", V2_HIGH)], None)).0, Severity::High);
        assert_eq!(rate(&advisory(&[("CVSS_V3", "garbage")], None)).0, Severity::Undefined);
        assert_eq!(rate(&advisory(&[], None)), (Severity::Undefined, Vec::new()));
    }

    #[test]
    fn wire_names() {
        assert_eq!(serde_json::to_string(&Severity::Informational).unwrap(), "\"INFORMATIONAL\"");
        assert_eq!(Severity::Undefined.as_str(), "UNDEFINED");
        let back: Severity = serde_json::from_str("\"CRITICAL\"").unwrap();
        assert_eq!(back, Severity::Critical);
    }
}
