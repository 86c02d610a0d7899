//! Advisories as the matcher reads them: the parts of an OSV record that matching needs, for
//! one affected package.

use serde::{Deserialize, Serialize};

/// One OSV `affected[].ranges[]` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    #[serde(rename = "SEMVER")]
    Semver,
    /// Commit ranges: never evaluated (an image records versions, not commits).
    #[serde(rename = "GIT")]
    Git,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// OSV `affected[]` of one package: its ranges and explicit versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
}

/// OSV `severity[]`: `kind` is `CVSS_V2`, `CVSS_V3`, `CVSS_V4` or `Ubuntu`; `score` a vector
/// (or Ubuntu's word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    pub kind: String,
    pub score: String,
}

/// An advisory about one package in one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// OSV `id`, e.g. `DEBIAN-CVE-2023-1234`, `GHSA-…`, `CVE-2023-1234`.
    pub id: String,
    pub aliases: Vec<String>,
    pub upstream: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    /// RFC 3339, as the record gives them.
    pub published: Option<String>,
    pub modified: String,
    pub severity: Vec<SeverityScore>,
    /// `references[].url`.
    pub references: Vec<String>,
    /// `affected[].package.ecosystem` exactly as the record writes it, e.g. `Debian:12`.
    pub ecosystem: String,
    /// `affected[].package.name`.
    pub package: String,
    pub affected: Affected,
    /// The distribution's own rating, where it gives one: Debian's
    /// `ecosystem_specific.urgency`, or `database_specific.severity`.
    pub vendor_severity: Option<String>,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one question the matcher asks of a vulnerability database.
pub trait AdvisorySource {
    /// Every advisory that names `package` in `ecosystem` (exact OSV ecosystem string, e.g.
    /// `Debian:12`, `PyPI`). Names compare as the ecosystem does: PyPI names are normalised
    /// (PEP 503) by the database on both sides; others compare exactly.
    ///
    /// # Errors
    /// The database could not be read.
    fn advisories(&self, ecosystem: &str, package: &str) -> Result<Vec<Advisory>, BoxError>;

    /// Whether the database holds any advisory for `ecosystem` (an operating system without
    /// data makes an image UNSUPPORTED_IMAGE rather than falsely clean).
    ///
    /// # Errors
    /// The database could not be read.
    fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, BoxError>;
}
