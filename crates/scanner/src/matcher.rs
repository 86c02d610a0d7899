//! Packages and advisories in, findings out.
//!
//! Rules:
//! - Basic scanning matches the operating system's packages; enhanced matches those and the
//!   language packages.
//! - OS packages are looked up in the image's OSV ecosystem (`Debian:12`, …): dpkg and apk
//!   by their source package (`source_name`, else `name`) at `source_version` (else
//!   `version`); rpm by the source RPM's name at the package's `[epoch:]version-release`.
//! - Language packages: Python → `PyPI`, npm → `npm`, Go binaries → `Go` (versions without
//!   their leading `v`; the toolchain is the package `stdlib`), Cargo → `crates.io`, jars →
//!   `Maven` (`group:artifact`), gems → `RubyGems`.
//! - One finding per (vulnerability, package name, version, path). The vulnerability is named
//!   by its CVE ids (the advisory's id, `upstream`, or `aliases`; an advisory naming several
//!   CVEs yields one finding per CVE), else by the advisory's id. Records naming the same CVE
//!   (a DSA, a DLA and a DEBIAN-CVE) are merged: the one with a fix wins, then the newest
//!   `modified`, then the lowest id; the others' ids join `related`.
//! - UNSUPPORTED_IMAGE when: a package database could not be read; basic scanning finds no
//!   `os-release`; the operating system is not an OSV ecosystem; or the database holds no
//!   advisory for it. Enhanced scanning in the last three cases still matches the language
//!   packages when the image has any (their advisories do not depend on the OS), and is
//!   unsupported only when it has none.
//! - Findings are sorted by vulnerability id, package name, version and path.

use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::{HashMap, hash_map};

use serde::{Deserialize, Serialize};

use crate::advisory::{Advisory, AdvisorySource, BoxError};
use crate::inventory::{ImageInventory, ImagePackage, OsRelease, Package, PackageManager};
use crate::osv::{fixed_in, is_affected};
use crate::severity::{Cvss, Severity, rate};
use crate::version::Scheme;

/// One vulnerability in one package of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The CVE id when the advisory names one, else the advisory's id.
    pub vulnerability_id: String,
    pub advisory_id: String,
    pub package: Package,
    /// From [`ImagePackage::layer`].
    pub layer: usize,
    pub severity: Severity,
    pub cvss: Vec<Cvss>,
    pub vendor_severity: Option<String>,
    pub fixed_in: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    /// Every other id of the vulnerability (advisory ids, aliases, upstream, and the ids of
    /// records merged into this one), sorted.
    pub related: Vec<String>,
    pub published: Option<String>,
    pub modified: String,
    /// The OSV ecosystem matched, e.g. `Debian:12`.
    pub ecosystem: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatchOutcome {
    Findings(Vec<Finding>),
    /// UNSUPPORTED_IMAGE, with why.
    Unsupported(String),
}

/// The OSV ecosystem of an operating system, where it is one: `Debian:12`,
/// `Ubuntu:22.04:LTS` (even years' `.04` releases) or `Ubuntu:23.10`, `Alpine:v3.19`,
/// `AlmaLinux:9`, `Rocky Linux:9`. Amazon Linux, CentOS and Oracle Linux are not OSV
/// ecosystems: `None`.
#[must_use]
pub fn os_ecosystem(os: &OsRelease) -> Option<String> {
    let version = os.version_id.as_deref()?.trim();
    let mut parts = version.split('.');
    let major = parts.next().filter(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))?;
    let minor = parts.next();
    match os.id.as_str() {
        "debian" => Some(format!("Debian:{major}")),
        "ubuntu" => {
            let minor = minor?;
            let year: u32 = major.parse().ok()?;
            let lts = year.is_multiple_of(2) && minor == "04";
            Some(format!("Ubuntu:{major}.{minor}{}", if lts { ":LTS" } else { "" }))
        }
        "alpine" => {
            let minor: String = minor?.bytes().take_while(u8::is_ascii_digit).map(char::from).collect();
            (!minor.is_empty()).then(|| format!("Alpine:v{major}.{minor}"))
        }
        "almalinux" => Some(format!("AlmaLinux:{major}")),
        "rocky" => Some(format!("Rocky Linux:{major}")),
        _ => None,
    }
}

/// The OSV ecosystem of a language package's manager.
fn language_ecosystem(m: PackageManager) -> Option<&'static str> {
    match m {
        PackageManager::Os => None,
        PackageManager::Python => Some("PyPI"),
        PackageManager::Npm => Some("npm"),
        PackageManager::GoBinary => Some("Go"),
        PackageManager::Cargo => Some("crates.io"),
        PackageManager::Jar => Some("Maven"),
        PackageManager::Gemspec => Some("RubyGems"),
    }
}

/// The name and version an advisory database knows an OS package by.
fn os_key(scheme: Scheme, p: &Package) -> (String, String) {
    let name = p.source_name.clone().unwrap_or_else(|| p.name.clone());
    let version = match scheme {
        Scheme::Rpm => match p.epoch {
            Some(e) if !p.version.contains(':') => format!("{e}:{}", p.version),
            _ => p.version.clone(),
        },
        _ => p.source_version.clone().unwrap_or_else(|| p.version.clone()),
    };
    (name, version)
}

fn language_key(p: &Package) -> (String, String) {
    let version = if p.manager == PackageManager::GoBinary {
        p.version.strip_prefix('v').unwrap_or(&p.version).to_owned()
    } else {
        p.version.clone()
    };
    (p.name.clone(), version)
}

fn is_cve(id: &str) -> bool {
    id.starts_with("CVE-")
}

/// The CVE ids an advisory names (its own id, `upstream`, `aliases`), in that order, without
/// repeats; its own id when it names none.
fn vulnerability_ids(a: &Advisory) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in std::iter::once(&a.id).chain(&a.upstream).chain(&a.aliases) {
        if is_cve(id) && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        ids.push(a.id.clone());
    }
    ids
}

/// What the matcher works out once per advisory: its rating and its vulnerability ids.
struct Rated {
    severity: Severity,
    cvss: Vec<Cvss>,
    /// Each vulnerability id with the advisory's other ids.
    ids: Vec<(String, Vec<String>)>,
}

/// The advisories of one (ecosystem, package), with what is known of them so far: binary
/// packages built from one source share all of it.
struct Looked {
    advisories: Vec<Advisory>,
    rated: Vec<Option<Rated>>,
    /// By version: the advisories affecting it, with their fix.
    matches: HashMap<String, Vec<(usize, Option<String>)>>,
}

/// The advisory's ids other than `vuln`, sorted.
fn related_ids(a: &Advisory, vuln: &str) -> Vec<String> {
    let mut related: Vec<String> =
        std::iter::once(&a.id).chain(&a.aliases).chain(&a.upstream).filter(|id| *id != vuln).cloned().collect();
    related.sort();
    related.dedup();
    related
}

fn finding(
    a: &Advisory,
    r: &Rated,
    ip: &ImagePackage,
    fixed: Option<String>,
    vuln: &str,
    related: &[String],
) -> Finding {
    let (severity, cvss, related) = (r.severity, r.cvss.clone(), related.to_vec());
    let vendor_severity =
        a.vendor_severity.clone().or_else(|| a.severity.iter().find(|s| s.kind == "Ubuntu").map(|s| s.score.clone()));
    Finding {
        vulnerability_id: vuln.to_owned(),
        advisory_id: a.id.clone(),
        package: ip.package.clone(),
        layer: ip.layer,
        severity,
        cvss,
        vendor_severity,
        fixed_in: fixed,
        summary: a.summary.clone(),
        description: a.details.clone(),
        references: a.references.clone(),
        related,
        published: a.published.clone(),
        modified: a.modified.clone(),
        ecosystem: a.ecosystem.clone(),
    }
}

/// Whether `new` should replace `old` for the same vulnerability and package.
fn better(new: &Finding, old: &Finding) -> bool {
    (new.fixed_in.is_some(), &new.modified, std::cmp::Reverse(&new.advisory_id))
        > (old.fixed_in.is_some(), &old.modified, std::cmp::Reverse(&old.advisory_id))
}

type Key = (String, String, String, String);

/// Matches an image's packages against `src`.
///
/// # Errors
/// The advisory source could not be read.
pub fn match_image(inv: &ImageInventory, enhanced: bool, src: &dyn AdvisorySource) -> Result<MatchOutcome, BoxError> {
    if !inv.unsupported.is_empty() {
        let why: Vec<String> = inv.unsupported.iter().map(|(path, why)| format!("{path}: {why}")).collect();
        return Ok(MatchOutcome::Unsupported(why.join("; ")));
    }
    // Why the OS packages cannot be matched, if they cannot.
    let mut os_problem = None;
    let mut os_eco = None;
    match &inv.os {
        None => os_problem = Some("no operating system was detected (no os-release)".to_owned()),
        Some(os) => match os_ecosystem(os) {
            None => {
                let name = os.pretty_name.clone().unwrap_or_else(|| {
                    format!("{} {}", os.id, os.version_id.as_deref().unwrap_or_default()).trim().to_owned()
                });
                os_problem = Some(format!("{name} is not supported"));
            }
            Some(eco) => {
                if src.has_ecosystem(&eco)? {
                    os_eco = Some(eco);
                } else {
                    os_problem = Some(format!("the vulnerability database holds no data for {eco}"));
                }
            }
        },
    }
    let has_language = inv.packages.iter().any(|p| p.package.manager != PackageManager::Os);
    if let Some(why) = os_problem
        && (!enhanced || !has_language)
    {
        return Ok(MatchOutcome::Unsupported(why));
    }
    let os_scheme = os_eco.as_deref().and_then(Scheme::for_ecosystem);

    let mut cache: HashMap<(String, String), Looked> = HashMap::new();
    let mut found: BTreeMap<Key, Finding> = BTreeMap::new();
    for ip in &inv.packages {
        let p = &ip.package;
        let (eco, scheme, (name, version)) = if p.manager == PackageManager::Os {
            let (Some(eco), Some(scheme)) = (os_eco.as_deref(), os_scheme) else {
                continue;
            };
            (eco, scheme, os_key(scheme, p))
        } else {
            if !enhanced {
                continue;
            }
            let Some(eco) = language_ecosystem(p.manager) else {
                continue;
            };
            let Some(scheme) = Scheme::for_ecosystem(eco) else {
                continue;
            };
            (eco, scheme, language_key(p))
        };
        let looked = match cache.entry((eco.to_owned(), name)) {
            hash_map::Entry::Occupied(e) => e.into_mut(),
            hash_map::Entry::Vacant(e) => {
                let advisories = src.advisories(eco, &e.key().1)?;
                let rated = advisories.iter().map(|_| None).collect();
                e.insert(Looked { advisories, rated, matches: HashMap::new() })
            }
        };
        let Looked { advisories, rated, matches } = looked;
        let hits = matches.entry(version).or_insert_with_key(|version| {
            advisories
                .iter()
                .enumerate()
                .filter(|(_, a)| is_affected(scheme, version, &a.affected))
                .map(|(i, a)| (i, fixed_in(scheme, version, &a.affected)))
                .collect()
        });
        for (i, fixed) in hits.iter() {
            let a = &advisories[*i];
            let r = rated[*i].get_or_insert_with(|| {
                let (severity, cvss) = rate(a);
                let ids = vulnerability_ids(a)
                    .into_iter()
                    .map(|v| {
                        let related = related_ids(a, &v);
                        (v, related)
                    })
                    .collect();
                Rated { severity, cvss, ids }
            });
            for (vuln, related) in &r.ids {
                let f = finding(a, r, ip, fixed.clone(), vuln, related);
                let key = (vuln.clone(), p.name.clone(), p.version.clone(), p.path.clone());
                match found.entry(key) {
                    Entry::Vacant(e) => {
                        e.insert(f);
                    }
                    Entry::Occupied(mut e) => {
                        let old = e.get_mut();
                        let mut related: Vec<String> = old.related.iter().chain(&f.related).cloned().collect();
                        related.push(old.advisory_id.clone());
                        related.push(f.advisory_id.clone());
                        let keep = if better(&f, old) { f } else { old.clone() };
                        related.retain(|id| *id != keep.vulnerability_id);
                        related.sort();
                        related.dedup();
                        *old = Finding { related, ..keep };
                    }
                }
            }
        }
    }
    Ok(MatchOutcome::Findings(found.into_values().collect()))
}
