//! Findings as the store keeps them: what the matcher found, with when each was first and last
//! observed, and whether it is still active. A new result is merged with the one on record so
//! a finding keeps its first-observed time, and one no longer found is closed (enhanced).

use std::collections::{BTreeMap, HashMap};

use berth_meta::ScanKind;
use berth_scanner::matcher::Finding;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FindingStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    /// No longer found: fixed, or the package is gone.
    #[serde(rename = "CLOSED")]
    Closed,
}

impl FindingStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Active => "ACTIVE",
            FindingStatus::Closed => "CLOSED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    pub finding: Finding,
    pub status: FindingStatus,
    pub first_observed_at: i64,
    pub last_observed_at: i64,
    pub updated_at: i64,
    /// Digest of the layer the package comes from (ECR's `sourceLayerHash`).
    pub layer_digest: Option<String>,
    /// For an image index: the child image the finding is in.
    #[serde(default)]
    pub image_digest: Option<String>,
}

impl StoredFinding {
    fn key(&self) -> (String, String, String, String, Option<String>) {
        let p = &self.finding.package;
        (
            self.finding.vulnerability_id.clone(),
            p.name.clone(),
            p.version.clone(),
            p.path.clone(),
            self.image_digest.clone(),
        )
    }
}

/// What the image is, for enhanced findings' `resources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub author: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredFindings {
    pub findings: Vec<StoredFinding>,
    pub image: Option<ImageFacts>,
}

/// Stored findings; bytes that do not decode (empty: no result yet) read as none.
pub(crate) fn decode(bytes: &[u8]) -> StoredFindings {
    if bytes.is_empty() {
        return StoredFindings::default();
    }
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "stored findings do not decode; reporting none");
        StoredFindings::default()
    })
}

pub(crate) fn encode(f: &StoredFindings) -> Vec<u8> {
    serde_json::to_vec(f).unwrap_or_default()
}

/// Merges the findings of a new match into those on record at `now`: a finding found again
/// keeps its first-observed time; one no longer found is closed under enhanced scanning (kept,
/// with the time it closed) and dropped under basic scanning, where findings have no status.
pub(crate) fn merge(
    kind: ScanKind,
    previous: &StoredFindings,
    found: Vec<(Finding, Option<String>, Option<String>)>,
    now: i64,
) -> Vec<StoredFinding> {
    let mut before: HashMap<_, &StoredFinding> = previous.findings.iter().map(|f| (f.key(), f)).collect();
    let mut out = Vec::with_capacity(found.len());
    for (finding, layer_digest, image_digest) in found {
        let mut f = StoredFinding {
            finding,
            status: FindingStatus::Active,
            first_observed_at: now,
            last_observed_at: now,
            updated_at: now,
            layer_digest,
            image_digest,
        };
        if let Some(old) = before.remove(&f.key()) {
            f.first_observed_at = old.first_observed_at;
            if old.status == FindingStatus::Active && old.finding == f.finding {
                f.updated_at = old.updated_at;
            }
        }
        out.push(f);
    }
    if kind == ScanKind::Enhanced {
        for (_, old) in before {
            let mut closed = old.clone();
            if closed.status == FindingStatus::Active {
                closed.status = FindingStatus::Closed;
                closed.updated_at = now;
            }
            out.push(closed);
        }
    }
    sort(&mut out);
    out
}

/// Severity first (critical to informational), then id, package and path: a stable order for
/// pages.
pub(crate) fn sort(findings: &mut [StoredFinding]) {
    findings.sort_by(|a, b| {
        (a.status != FindingStatus::Active)
            .cmp(&(b.status != FindingStatus::Active))
            .then(rank(a).cmp(&rank(b)))
            .then_with(|| a.key().cmp(&b.key()))
    });
}

fn rank(f: &StoredFinding) -> u8 {
    match f.finding.severity.as_str() {
        "CRITICAL" => 0,
        "HIGH" => 1,
        "MEDIUM" => 2,
        "LOW" => 3,
        "INFORMATIONAL" => 4,
        _ => 5,
    }
}

/// Active findings per severity, as ECR's `findingSeverityCounts` (JSON object).
pub(crate) fn severity_counts(findings: &[StoredFinding]) -> String {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.status == FindingStatus::Active) {
        *counts.entry(f.finding.severity.as_str()).or_default() += 1;
    }
    serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into())
}
